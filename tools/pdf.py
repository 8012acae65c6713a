#!/usr/bin/env python3
"""Print one edition of the book as a PDF, offline, with the system's Chromium (``make pdf``).

    .venv/bin/python tools/pdf.py _build/singlehtml _build/pdf/tlbook-en.pdf

The input is Jupyter Book's ``singlehtml`` build: the whole book as one page, glued numbers and
figures included. Chromium (driven by Playwright, as the browser check drives it; no browser
download) opens it with the outside network cut, waits until every Mermaid diagram is drawn and
every formula typeset, and prints it to A4: each chapter starts a new page, code wraps to the
page's width instead of being cut, the site's navigation is left out, and the PDF carries an
outline (its table of contents in a reader's side panel) made from the headings.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # site_check: serve, the network cut

import site_check  # noqa: E402

#: Drawn and typeset: every Mermaid diagram an SVG, every formula typeset by MathJax. (Saved
#: widgets are not waited for: a PDF cannot hold a live widget, and the single page loads no
#: widget manager.)
READY = """
() => Array.from(document.querySelectorAll('pre.mermaid, div.mermaid')).every(x => x.querySelector('svg'))
   && Array.from(document.querySelectorAll('.math')).every(x => x.querySelector('mjx-container'))
"""

PRINT_CSS = """
@media print {
  span[id^="document-"] + section { break-before: page; }
  .bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-header-announcement,
  .header-article, .prev-next-area, .bd-footer, .bd-footer-content, .bd-footer-article { display: none !important; }
  .bd-main, .bd-content, .bd-article-container, .bd-page-width { max-width: 100% !important; }
  pre, .highlight pre, .output pre { white-space: pre-wrap !important; word-break: break-word; }
  img { max-width: 100% !important; break-inside: avoid; }
  h1, h2, h3 { break-after: avoid; }
}
"""


def print_pdf(html_dir: Path, out: Path, chromium: str, timeout_ms: int = 60_000) -> Path:
    """Print the single page of the ``singlehtml`` build in ``html_dir`` to ``out``; returns ``out``."""
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    # The single page is written as book/intro.html, but its links to _static/ and _images/ are
    # relative to the build's root: a copy at the root finds them.
    (single,) = (html_dir / "book").glob("*.html")
    printable = html_dir / "print.html"
    printable.write_bytes(single.read_bytes())
    with site_check.serve(html_dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, args=[site_check.CUT_NETWORK, "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.goto(f"{base}/print.html", wait_until="load")
        page.wait_for_function(READY, timeout=timeout_ms)
        page.add_style_tag(content=PRINT_CSS)
        page.emulate_media(media="print")
        page.pdf(
            path=str(out),
            format="A4",
            print_background=True,
            outline=True,
            tagged=True,
            margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"},
        )
        browser.close()
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    chromium = site_check.find_chromium()
    if chromium is None:
        print("Chromium not found; install it (apt-get install chromium) or set TLBOOK_CHROMIUM", file=sys.stderr)
        return 2
    print(print_pdf(Path(argv[1]), Path(argv[2]), chromium))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
