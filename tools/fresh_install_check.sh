#!/usr/bin/env bash
# What a Colab user gets (issue 29): tlbook installed non-editable from a freshly built wheel into a
# new virtual environment of another Python (default python3.12, Colab's), with whatever versions of
# TensorFlow, Keras and NumPy pip resolves today from pyproject.toml (not requirements.txt's pins),
# and TensorFlow on every core, as in Colab; then Chapters 3 and 9 checked against their stored
# outputs, within the tolerances, from an empty cache (the photos' .deb linked from make's cache).
# Not part of make test: it downloads TensorFlow for that Python (about 600 MB the first time).
#   bash tools/fresh_install_check.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
python="${1:-python3.12}"
work="$(mktemp -d "${TMPDIR:-/tmp}/tlbook-fresh-XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip wheel --quiet --no-deps -w "$work/wheel" .
pins="$(grep -E '^(myst-nb|pytest|nbval|ipykernel|nbclient)==' requirements.txt)"
# shellcheck disable=SC2086
"$work/venv/bin/python" -m pip install --quiet "$work"/wheel/tlbook-*.whl $pins
mkdir -p "$work/check/book" "$work/cache/downloads"
cp book/ch03_math.ipynb book/ch09_your_own_photos.ipynb "$work/check/book/"
cp nbval-sanitize.cfg conftest.py tests/nbval_tolerance.py "$work/check/"
printf '[pytest]\npythonpath = .\n' > "$work/check/pytest.ini"
find "${TLBOOK_CACHE:-$PWD/.cache/tlbook}/downloads" -maxdepth 1 -name '*.deb' -exec ln -s {} "$work/cache/downloads/" \; 2>/dev/null || true
cd "$work/check"  # away from the checkout: tlbook is imported from the installed wheel
"$work/venv/bin/python" -c "import sys, tensorflow as tf, keras, numpy, tlbook; print('Python', sys.version.split()[0], '| TensorFlow', tf.__version__, '| Keras', keras.__version__, '| NumPy', numpy.__version__, '| tlbook from', tlbook.__file__)"
env -u TLBOOK_PHOTOS_DIR -u TLBOOK_THREADS TLBOOK_CACHE="$work/cache" TLBOOK_PROFILE=quick TLBOOK_PROGRESS=0 \
  PYTHONHASHSEED=0 "$work/venv/bin/python" -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
  --nbval-sanitize-with nbval-sanitize.cfg --nbval-cell-timeout=1800 book/ch03_math.ipynb book/ch09_your_own_photos.ipynb
