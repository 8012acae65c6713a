#!/usr/bin/env bash
# Fetch local copies of the JavaScript the book's pages need (Mermaid, MathJax, the Jupyter widget
# manager) from the npm registry into .cache/vendor-static/vendor/, so the built site renders
# diagrams, math and widgets with no network. Called by `make book` and `make test`.
#
# Without npm, or without access to the registry, it says so and exits 0: the build then falls
# back to the public CDN copies (see _ext/offline_assets.py).
set -u
cd "$(dirname "$0")/.."

MERMAID=11.12.1          # the version sphinxcontrib-mermaid 2.1.1 loads from its CDN by default
MATHJAX=3.2.2            # MathJax 3, what Sphinx's default mathjax_path points to
HTML_MANAGER=1.0.15      # @jupyter-widgets/html-manager for ipywidgets 8
DEST=.cache/vendor-static
STAMP="$DEST/.complete-mermaid-$MERMAID-mathjax-$MATHJAX-html-manager-$HTML_MANAGER"

if [ -f "$STAMP" ]; then
    exit 0
fi
fallback() {
    echo "NOTE: $1" >&2
    echo "NOTE: the book will be built with Mermaid, MathJax and the widget manager loaded from public CDNs;" >&2
    echo "NOTE: its pages then need a network to render diagrams, formulas and widgets." >&2
    exit 0
}
command -v npm >/dev/null 2>&1 || fallback "npm is not installed (Debian/Ubuntu: apt-get install npm), so no local JavaScript copies."

mkdir -p .cache
work=$(mktemp -d .cache/.npm-XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "Fetching mermaid@$MERMAID, mathjax@$MATHJAX, @jupyter-widgets/html-manager@$HTML_MANAGER from the npm registry"
if ! npm install --prefix "$work" --no-audit --no-fund --no-save --loglevel=error \
        "mermaid@$MERMAID" "mathjax@$MATHJAX" "@jupyter-widgets/html-manager@$HTML_MANAGER" >&2; then
    fallback "npm could not fetch the packages (no access to the registry?)."
fi
modules="$work/node_modules"
new="$work/static"
mkdir -p "$new/vendor/mermaid/chunks" "$new/vendor/html-manager"
cp "$modules/mermaid/dist/mermaid.esm.min.mjs" "$new/vendor/mermaid/"
cp -r "$modules/mermaid/dist/chunks/mermaid.esm.min" "$new/vendor/mermaid/chunks/"
cp -r "$modules/mathjax/es5" "$new/vendor/mathjax"
for f in "$modules/@jupyter-widgets/html-manager/dist/"*; do
    case "$f" in *.map|*-amd.js) ;; *) cp "$f" "$new/vendor/html-manager/" ;; esac
done
touch "$new/$(basename "$STAMP")"
rm -rf "$DEST"
mv "$new" "$DEST"        # complete or not there at all
echo "Local JavaScript copies are in $DEST/vendor"
