# The two commands of the README:
#   make book   build the book into _build/html
#   make test   every notebook under nbval, unit tests, the strict book build and the browser check
# Both create .venv (inside the repository) and install requirements.txt into it the first time,
# and again only when requirements.txt or pyproject.toml change: a second run needs no network.

.PHONY: book test check unit tooling notebooks notebooks-elsewhere notebooks-check build-strict site-check execute clean vendor lab doctor prefetch build-zh pdf

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Stored notebook outputs are the quick profile's; tests and re-execution always use it.
# The cache lives inside the repository unless TLBOOK_CACHE says otherwise, so a test run
# starts from what this checkout produced itself.
export TLBOOK_CACHE ?= $(CURDIR)/.cache/tlbook
export PYTHONHASHSEED := 0
# oneDNN's kernels for TensorFlow's CPU operations, on every x86 CPU. TensorFlow turns them on by
# itself only on CPUs with AVX-512 VNNI and uses Eigen's elsewhere; with this, every machine uses
# one library (oneDNN still picks kernels by instruction set). A training step of the book's small
# CNN is faster with it (2 AVX2 cores, one thread, 32 images: 0.025 s vs 0.033 s; with the earlier
# network of twice the width, 0.038 s vs 0.103 s), but whole chapters gain less, as building each
# model's graph takes seconds.
# The stored outputs were computed with them; `make TF_ENABLE_ONEDNN_OPTS=0 notebooks` checks all
# chapters with Eigen's.
export TF_ENABLE_ONEDNN_OPTS ?= 1
# No progress bars in what make runs (tests, stored outputs): their text differs on every run.
# `make lab` turns them back on for a person (tlbook/progress.py).
export TLBOOK_PROGRESS ?= 0
# One TensorFlow thread per process for the check and the stored outputs (tlbook.seed_everything
# reads it), so sums are added in one order whatever the core count; `make lab`, Colab and a plain
# `jupyter lab` leave it unset and use every core. The tolerances cover the difference (README).
CHECK_THREADS ?= 1
# The stored outputs are of the book's photos: the check ignores a TLBOOK_PHOTOS_DIR that points
# Chapter 9 at a reader's folder (make lab keeps it).
CHECK := env -u TLBOOK_PHOTOS_DIR TLBOOK_PROFILE=quick TLBOOK_THREADS=$(CHECK_THREADS)

# The longest chapters from an empty cache first (book/generated/timings.md), so the two notebook
# workers (loadscope: one chapter at a time each) do not end with one of them alone. Chapter 7's
# second page reads, near its own end, the study its first page computes: it goes third, so that it
# starts when a worker is free, after Chapter 6, not beside the first page waiting for that study.
LONGEST_NOTEBOOKS := book/ch07_does_it_pay_off.ipynb book/ch06_fine_tuning.ipynb book/ch07_when_transfer_hurts.ipynb
NOTEBOOKS := $(LONGEST_NOTEBOOKS) $(filter-out $(LONGEST_NOTEBOOKS),$(sort $(wildcard book/*.ipynb)))
# nbval compares every stored output; conftest.py adds the tolerance plugin (tests/nbval_tolerance.py),
# so a cell that declares "nbval-tolerance" in its metadata compares its decimals within it.
# The cell timeout catches a hang, not a slow machine: Chapter 7's label-budget cell alone took
# 4 to 5.5 minutes under `make test` on 2 cores, and `taskset -c 0 make notebooks` runs both
# notebook workers on one core.
CELL_TIMEOUT := 1800
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with nbval-sanitize.cfg --nbval-cell-timeout=$(CELL_TIMEOUT)

# Worker processes for the test command (pytest-xdist): each one computes with one TensorFlow
# thread (tlbook.seed_everything), so more workers change the speed, not the numbers.
# Each takes up to about 1.5 GB of memory; `make JOBS=4 test` on a machine with more cores.
JOBS ?= 2
# Unit tests go to whichever worker is free; a notebook's cells stay together in one worker.
XDIST := -n $(JOBS) --dist worksteal --durations=15
XDIST_NB := -n $(JOBS) --dist loadscope --no-loadscope-reorder

# `make test` checks every chapter once, as another machine computes, not as the machine that
# stored the outputs: from a cache of its own (CHECK_CACHE; empty on a fresh clone), so the source
# backbone, the studies and the cached features are computed again under the check's conditions
# instead of read from the cache `make execute` filled; Chapters 2 and 3 with Eigen's kernels
# instead of oneDNN's (what TensorFlow uses when TF_ENABLE_ONEDNN_OPTS is not set, on most CPUs),
# every other chapter with oneDNN limited to the kernels an AVX2-only CPU runs (most laptops of
# the last ten years). Chapters 2 and 3 are the short ones that train on the source backbone. The
# unit tests run beside the AVX2 chapters (make check, below) and share their cache: a feature or
# study that a chapter computed is read, not computed again.
# tests/tooling/test_float_conditions.py checks that each condition changes the weights of a short
# training run bit for bit here. `make notebooks` is the same check under this machine's own
# conditions and make's cache (a workshop's "check the room").
ELSEWHERE_NOTEBOOKS := book/ch02_workflow.ipynb book/ch03_math.ipynb
ELSEWHERE_ENV := TF_ENABLE_ONEDNN_OPTS=0
ELSEWHERE := env $(ELSEWHERE_ENV)
AVX2_NOTEBOOKS := $(filter-out $(ELSEWHERE_NOTEBOOKS),$(NOTEBOOKS))
AVX2 := env ONEDNN_MAX_CPU_ISA=AVX2
CHECK_CACHE ?= $(CURDIR)/.cache/tlbook-check
# The check empties its cache first (the cached backbone and studies are keyed on their settings
# and code, not on the kernels that computed them) but keeps the downloads, linked from make's
# cache (the photos' .deb that .ci/run fetched).
CHECK_DOWNLOADS := $(abspath $(TLBOOK_CACHE))/downloads
NEW_CHECK_CACHE := mkdir -p "$(CHECK_DOWNLOADS)" "$(CHECK_CACHE)/downloads" && \
	find "$(CHECK_CACHE)" -mindepth 1 -maxdepth 1 ! -name downloads -exec rm -rf {} + && \
	find "$(CHECK_DOWNLOADS)" -maxdepth 1 -type f -exec ln -sf {} "$(CHECK_CACHE)/downloads/" \;
IN_CHECK_CACHE := env TLBOOK_CACHE="$(CHECK_CACHE)"

# requirements.txt is installed with uv, itself pinned and installed by pip: the same pinned versions
# as `pip install -r requirements.txt`, in 29 s instead of 103 s on a fresh 2-core machine (uv
# downloads and compiles in parallel). uv reads its own settings (UV_INDEX_URL, ...), not pip's:
# where it cannot install, pip does, as before.
# --compile-bytecode: every module is compiled once, at install, as pip does. Without it, where
# Python may not write bytecode (PYTHONDONTWRITEBYTECODE=1, a read-only environment), each process
# compiles TensorFlow's Python again: `import tensorflow` took 14 s instead of 6.5 s here, and the
# test command starts some fifty such processes (kernels, test workers, subprocess tests).
UV_VERSION := 0.13.8

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version.split()[0]; sys.exit(f"tlbook needs Python 3.11; this is {v}. Install Python 3.11 and run: make PYTHON=python3.11 test") if sys.version_info < (3, 11) else (sys.version_info[:2] != (3, 11) and print(f"warning: Python {v} is not tested; the book supports 3.11 (make PYTHON=python3.11 ...)"))'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	{ $(BIN)/python -m pip install --quiet uv==$(UV_VERSION) && \
	  $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.txt; } || { \
	  echo "uv could not be installed or could not install requirements.txt (see above); installing with pip instead"; \
	  $(BIN)/python -m pip install --quiet --upgrade pip && $(BIN)/python -m pip install --quiet -r requirements.txt; }
	@touch $(STAMP)

# Local copies of Mermaid, MathJax and the widget manager, so the site works with no network
# (needs npm; without it the build uses the public CDN copies and says so).
vendor:
	@bash tools/vendor-js.sh

# The Chinese edition: tools/translations.py writes its sources from the English ones and
# book/translations/zh/ (every Markdown cell swapped for its translation, code and stored outputs
# copied byte for byte), Jupyter Book builds them, and the site goes under zh/ of the English one.
# BUILD_ARGS: the strict build's options, for make test.
BUILD_ARGS ?=
ZH_SRC := _build/zh-src
define build_zh
	$(BIN)/python tools/translations.py build --out $(ZH_SRC)
	$(BIN)/jupyter-book build $(ZH_SRC) $(BUILD_ARGS)
	rm -rf _build/html/zh && cp -r $(ZH_SRC)/_build/html _build/html/zh
endef

# tools/repository_url.py first: _config.yml's repository.url into the Colab cells and the guide.
book: $(STAMP) vendor
	$(BIN)/python tools/repository_url.py
	$(BIN)/jupyter-book build .
	$(build_zh)
	@echo "The book is in _build/html/index.html, its Chinese edition in _build/html/zh/"

# The strict builds of both editions read only the sources and the stored outputs, not what the check
# computes: they run in the background while the check runs (their output is printed after it), so
# they take none of the run's length but what they slow the check by (2 cores: a build
# is one process, the check two). CI on an AMD EPYC, 2026-12-04, one run each: 908 s with them
# after the check, 843 s with them beside it (the check itself 599 s, then 628 s; the builds alone
# 54 s, so about 25 s of the difference is theirs and the rest the machine's variation).
# Interrupting make test stops them too: the trap ends its whole process group (the shell runs
# without job control, so the builds are in it).
SITE_LOG := .cache/site-build.log
SITE_FAILED := .cache/site-build.failed
test: $(STAMP)
	@mkdir -p .cache && rm -f $(SITE_FAILED) && failed=""; \
	{ bash tools/vendor-js.sh; \
	  $(BIN)/jupyter-book build . -W -n --keep-going || echo book-build >> $(SITE_FAILED); \
	  $(MAKE) --no-print-directory build-zh BUILD_ARGS="-W -n --keep-going" || echo book-build-zh >> $(SITE_FAILED); \
	  exit 0; } > $(SITE_LOG) 2>&1 & site=$$!; \
	trap 'trap - INT TERM; kill 0; exit 130' INT TERM; \
	$(MAKE) --no-print-directory check || failed="$$failed notebooks-or-unit-tests"; \
	wait $$site || failed="$$failed book-builds-stopped"; trap - INT TERM; \
	echo "--- the book builds (run beside the check) ---"; cat $(SITE_LOG); \
	if [ -f $(SITE_FAILED) ]; then failed="$$failed $$(tr '\n' ' ' < $(SITE_FAILED))"; fi; \
	$(BIN)/python -m pytest tests -m browser -rs || failed="$$failed browser"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; \
	echo "make test: notebooks, unit tests, the strict book build and the browser check all passed"

# The unit tests alone, as a developer runs them (make check runs them beside the notebooks, with
# AVX2 kernels): a test that asserts a chapter's claim reads the chapter's study from the check's
# cache, or computes it when it is missing. `make tooling`: the tests of the tools around the
# package (tests/tooling/: the book's structure, the notebook check, linter, workflow, JupyterLab).
unit: $(STAMP)
	$(CHECK) $(IN_CHECK_CACHE) $(BIN)/python -m pytest $(XDIST) tests --ignore=tests/tooling -m "not browser"

tooling: $(STAMP)
	$(CHECK) $(IN_CHECK_CACHE) $(BIN)/python -m pytest $(XDIST) tests/tooling -m "not browser"

notebooks: $(STAMP)
	$(CHECK) $(BIN)/python -m pytest $(XDIST_NB) $(NBVAL) $(NOTEBOOKS)

notebooks-elsewhere: $(STAMP)
	$(CHECK) $(ELSEWHERE) $(BIN)/python -m pytest $(XDIST_NB) $(NBVAL) $(ELSEWHERE_NOTEBOOKS)

# The notebook check of `make test` (above): every chapter once, under another machine's kernels,
# from the check's own cache, emptied first. The chapters that train the backbone and the studies
# go first; the two Eigen chapters read the backbone Chapter 1 pretrained under AVX2.
notebooks-check: $(STAMP)
	@$(NEW_CHECK_CACHE)
	@failed=0; \
	$(CHECK) $(IN_CHECK_CACHE) $(AVX2) $(BIN)/python -m pytest $(XDIST_NB) $(NBVAL) $(AVX2_NOTEBOOKS) || failed=1; \
	$(CHECK) $(IN_CHECK_CACHE) $(ELSEWHERE) $(BIN)/python -m pytest $(XDIST_NB) $(NBVAL) $(ELSEWHERE_NOTEBOOKS) || failed=1; \
	exit $$failed

# What `make test` runs first: the AVX2 pass of notebooks-check and the unit tests in one pytest run,
# then the Eigen pass. Two separate runs each ended with one worker alone on its longest item (a
# chapter, a slow test module) while the other core idled; in one run the unit tests fill those
# gaps. Each notebook and each test module goes whole to one worker, in the order given: the
# notebooks first (the longest first), then the test modules that take longest (measured in CI),
# then the rest. The unit tests compute with AVX2 kernels here, which none of them depends on.
# The tests of the chapters' claims (CLAIM_TESTS) read the studies that Chapters 6 and 7 compute,
# so they go last: a worker that reached them early waited for Chapter 7's studies
# (tlbook.config.cache_lock) with its core idle, 170 s in one CI run. Were one not cached yet, the
# test would compute it and the notebook would wait: the same result once, either way.
# TLBOOK_JOBS=1: each study runs in its notebook's own process instead of starting worker processes
# (the same bits, tests/test_label_budget.py): each worker would import TensorFlow (about 9 s of CPU
# here) and build and trace each kind of model again (about 3 s each), and the other core is kept
# busy by the rest of the run.
CLAIM_TESTS := tests/test_label_budget.py tests/test_pitfalls.py
SLOW_UNIT_TESTS := tests/tooling/test_float_conditions.py \
	tests/test_transfer.py tests/test_source.py tests/test_resnet50.py tests/test_pool.py tests/test_config.py \
	tests/test_photos.py tests/test_training.py tests/test_checks.py tests/test_experiments.py tests/tooling/test_lab.py \
	tests/tooling/test_article_listing.py tests/test_photo_folder.py
# tests/test_<module>.py test tlbook's modules; tests/tooling/ the tools around it (its README.md)
UNIT_TESTS := $(SLOW_UNIT_TESTS) \
	$(filter-out $(SLOW_UNIT_TESTS) $(CLAIM_TESTS),$(sort $(wildcard tests/test_*.py tests/tooling/test_*.py))) $(CLAIM_TESTS)
TEST_DIST := -n $(JOBS) --dist loadscope --no-loadscope-reorder --durations=25
check: $(STAMP)
	@$(NEW_CHECK_CACHE)
	@failed=0; \
	$(CHECK) $(IN_CHECK_CACHE) $(AVX2) TLBOOK_JOBS=1 $(BIN)/python -m pytest $(TEST_DIST) $(NBVAL) \
	  $(AVX2_NOTEBOOKS) $(UNIT_TESTS) -m "not browser" || failed=1; \
	$(CHECK) $(IN_CHECK_CACHE) $(ELSEWHERE) $(BIN)/python -m pytest $(XDIST_NB) $(NBVAL) $(ELSEWHERE_NOTEBOOKS) || failed=1; \
	exit $$failed

build-strict: $(STAMP) vendor
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(MAKE) --no-print-directory build-zh BUILD_ARGS="-W -n --keep-going"

# The Chinese edition alone, into _build/html/zh (after the English build).
build-zh: $(STAMP)
	$(build_zh)

# The book as PDF, one per edition (_build/pdf/tlbook-en.pdf, tlbook-zh.pdf), offline: Jupyter
# Book's single-page build printed by the system's Chromium (tools/pdf.py), with Mermaid and the
# formulas drawn, each chapter on a new page and an outline of the headings.
pdf: $(STAMP) vendor
	$(BIN)/jupyter-book build . --builder singlehtml $(BUILD_ARGS)
	$(BIN)/python tools/translations.py build --out $(ZH_SRC)
	$(BIN)/jupyter-book build $(ZH_SRC) --builder singlehtml $(BUILD_ARGS)
	$(BIN)/python tools/pdf.py _build/singlehtml _build/pdf/tlbook-en.pdf
	$(BIN)/python tools/pdf.py $(ZH_SRC)/_build/singlehtml _build/pdf/tlbook-zh.pdf

# JupyterLab on the reader's own copies of the chapters (LAB_DIR, git ignores it), with this
# environment's kernel (it imports tlbook) and the variables above (cache, kernels). A chapter is
# copied from book/ only when LAB_DIR has no copy of it, so a reader's edits and outputs stay, and
# the tracked notebooks never change (JupyterLab autosaves whatever it has open).
# Extra options: make lab LAB_ARGS="--no-browser --port=8890".
LAB_ARGS ?=
LAB_DIR ?= lab
lab: $(STAMP)
	@mkdir -p "$(LAB_DIR)"
	@for nb in book/ch*.ipynb; do test -e "$(LAB_DIR)/$${nb##*/}" || cp "$$nb" "$(LAB_DIR)/"; done
	@echo "make lab: your copies of the chapters are in $(LAB_DIR)/; your edits and outputs stay there and"
	@echo "  book/ is not changed. Delete a copy (or $(LAB_DIR)/ itself) to start that chapter afresh."
	TLBOOK_PROGRESS=1 $(BIN)/jupyter lab --notebook-dir="$(LAB_DIR)" $(LAB_ARGS)

# The machine check and the downloads, in make's cache (TLBOOK_CACHE above, .cache/tlbook in the
# repository): the folder make notebooks, make lab and make test read, so a workshop copies that one.
# make prefetch PREFETCH_ARGS=--all adds the optional ImageNet ResNet50 weights and flower photos.
PREFETCH_ARGS ?=
doctor: $(STAMP)
	$(BIN)/python -m tlbook doctor
prefetch: $(STAMP)
	$(BIN)/python -m tlbook prefetch $(PREFETCH_ARGS)

# Open every built page in Chromium with the network cut (screenshots in _build/screenshots).
site-check: $(STAMP)
	$(BIN)/python -m pytest tests -m browser -rs

# Re-execute every notebook in place (after changing a chapter or tlbook), storing fresh outputs.
execute: $(STAMP)
	$(CHECK) $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=$(CELL_TIMEOUT) $(NOTEBOOKS)

clean:
	rm -rf _build .cache .pytest_cache
