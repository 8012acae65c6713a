# The two commands of the README:
#   make book   build the book into _build/html
#   make test   unit tests, every notebook under nbval, and the strict book build
# Both create .venv (inside the repository) and install requirements.txt into it the first time,
# and again only when requirements.txt or pyproject.toml change: a second run needs no network.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Stored notebook outputs are the quick profile's; tests and re-execution always use it.
# The cache lives inside the repository unless TLBOOK_CACHE says otherwise, so a test run
# starts from what this checkout produced itself.
export TLBOOK_CACHE ?= $(CURDIR)/.cache/tlbook
export PYTHONHASHSEED := 0

NOTEBOOKS := $(sort $(wildcard book/*.ipynb))
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with nbval-sanitize.cfg --nbval-cell-timeout=600

.PHONY: book test unit notebooks build-strict execute clean

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "tlbook needs Python 3.10 or newer; this is " + sys.version.split()[0] + ". Install a newer Python or run: make PYTHON=python3.12 test")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build .
	@echo "The book is in _build/html/index.html"

test: $(STAMP)
	@failed=""; \
	TLBOOK_PROFILE=quick $(BIN)/python -m pytest tests || failed="$$failed unit-tests"; \
	TLBOOK_PROFILE=quick $(BIN)/python -m pytest $(NBVAL) $(NOTEBOOKS) || failed="$$failed notebooks"; \
	$(BIN)/jupyter-book build . -W -n --keep-going || failed="$$failed book-build"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; \
	echo "make test: unit tests, notebooks and the strict book build all passed"

unit: $(STAMP)
	TLBOOK_PROFILE=quick $(BIN)/python -m pytest tests

notebooks: $(STAMP)
	TLBOOK_PROFILE=quick $(BIN)/python -m pytest $(NBVAL) $(NOTEBOOKS)

build-strict: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

# Re-execute every notebook in place (after changing a chapter or tlbook), storing fresh outputs.
execute: $(STAMP)
	TLBOOK_PROFILE=quick $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=600 $(NOTEBOOKS)

clean:
	rm -rf _build .cache .pytest_cache
