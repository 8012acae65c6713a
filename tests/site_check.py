"""Open every page of the built book in a real browser with the outside network cut, and report
what did not render. Used by tests/tooling/test_site.py; run it by hand with

    .venv/bin/python tests/site_check.py _build/html

It needs Chromium (Debian: ``apt-get install chromium``) and the ``playwright`` package, which
drives the system's Chromium (no browser download).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Chromium resolves every host name to nothing except the loopback address: nothing can leave.
CUT_NETWORK = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


def find_chromium() -> str | None:
    """The Chromium executable: ``$TLBOOK_CHROMIUM``, else the first of the usual names on PATH."""
    explicit = os.environ.get("TLBOOK_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` over HTTP on a free loopback port; yields the base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def site_pages(html_dir: Path) -> list[str]:
    """Every HTML page of the site (static assets excluded), relative to ``html_dir``."""
    return sorted(
        str(p.relative_to(html_dir))
        for p in html_dir.rglob("*.html")
        if "_static" not in p.parts and "_sources" not in p.parts
    )


RENDER_CHECKS = """
() => {
  const mermaid = Array.from(document.querySelectorAll('pre.mermaid, div.mermaid'));
  const math = Array.from(document.querySelectorAll('.math'));
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
  return {
    mermaid: mermaid.length,
    mermaid_svg: mermaid.filter(m => m.querySelector('svg')).length,
    math: math.length,
    math_typeset: math.filter(m => m.querySelector('mjx-container')).length,
    math_errors: document.querySelectorAll('mjx-merror').length,
    widget_views: views.length,
    widgets_shown: document.querySelectorAll('.jupyter-widgets.widget-image, .widget-image, .jupyter-widgets').length,
    broken_images: Array.from(document.images)
      .filter(i => !i.complete || i.naturalWidth === 0)
      .map(i => i.currentSrc || i.src),
    cjk_boxes: cjkBoxes(),
  };
  // On a Chinese page: are Chinese characters drawn as glyphs, or as the empty boxes ("tofu") a
  // browser draws for characters no font has? Two different characters drawn as boxes are
  // identical pixel for pixel; drawn as glyphs they differ.
  function cjkBoxes() {
    if (!document.documentElement.lang.startsWith('zh')) return false;
    const font = '32px ' + getComputedStyle(document.body).fontFamily;
    const pixels = (ch) => {
      const canvas = document.createElement('canvas');
      canvas.width = canvas.height = 40;
      const ctx = canvas.getContext('2d');
      ctx.font = font;
      ctx.fillText(ch, 2, 32);
      return Array.from(ctx.getImageData(0, 0, 40, 40).data).join(',');
    };
    return pixels('迁') === pixels('移');
  }
}
"""

READY = """
() => {
  const m = Array.from(document.querySelectorAll('pre.mermaid, div.mermaid'));
  const math = Array.from(document.querySelectorAll('.math'));
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
  return m.every(x => x.querySelector('svg')) && math.every(x => x.querySelector('mjx-container'))
      && (views === 0 || document.querySelectorAll('.jupyter-widgets').length > 0);
}
"""


def check_site(
    html_dir: Path,
    chromium: str,
    screenshots: Path | None = None,
    pages: list[str] | None = None,
    timeout_ms: int = 20000,
) -> dict[str, list[str]]:
    """Open each page with the network cut and return ``{page: [problems]}`` (empty lists: all good).

    A page has a problem when: a request tried to leave the machine (it is blocked and recorded),
    a local file failed to load (HTTP >= 400), the browser console logged an error or the page
    threw, a Mermaid diagram did not become an SVG, a formula was not typeset (or MathJax
    reported an error), saved widgets were not displayed, an image did not load, or (on a page whose
    language is Chinese) Chinese characters are drawn as empty boxes for want of a font. A screenshot
    of every page goes to ``screenshots`` (if given).
    """
    from playwright.sync_api import sync_playwright

    html_dir = Path(html_dir)
    pages = pages or site_pages(html_dir)
    results: dict[str, list[str]] = {}
    with serve(html_dir) as base, sync_playwright() as pw:
        local_host = urlparse(base).netloc
        browser = pw.chromium.launch(executable_path=chromium, args=[CUT_NETWORK, "--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
        for rel in pages:
            problems: list[str] = []
            page = context.new_page()

            def route(r, problems=problems):
                url = r.request.url
                if urlparse(url).netloc == local_host or url.startswith(("data:", "blob:")):
                    r.continue_()
                else:
                    problems.append(f"request left the machine (blocked): {url}")
                    r.abort()

            page.route("**/*", route)
            page.on(
                "console",
                lambda msg, problems=problems: (
                    problems.append(f"console error: {msg.text}") if msg.type == "error" else None
                ),
            )
            page.on("pageerror", lambda exc, problems=problems: problems.append(f"page error: {exc}"))
            page.on(
                "response",
                lambda resp, problems=problems: (
                    problems.append(f"HTTP {resp.status}: {resp.url}")
                    if resp.status >= 400 and not resp.url.endswith("/favicon.ico")
                    else None
                ),
            )  # the book has no favicon
            page.goto(f"{base}/{rel}", wait_until="load")
            try:
                page.wait_for_function(READY, timeout=timeout_ms)
            except Exception:  # noqa: BLE001 - what did not render is reported below
                pass
            page.wait_for_timeout(300)
            state = page.evaluate(RENDER_CHECKS)
            if state["mermaid_svg"] < state["mermaid"]:
                problems.append(
                    f"{state['mermaid'] - state['mermaid_svg']} of {state['mermaid']} Mermaid diagrams did not "
                    "become an SVG"
                )
            if state["math_typeset"] < state["math"]:
                problems.append(f"{state['math'] - state['math_typeset']} of {state['math']} formulas were not typeset")
            if state["math_errors"]:
                problems.append(f"{state['math_errors']} MathJax errors")
            if state["widget_views"] and not state["widgets_shown"]:
                problems.append(f"{state['widget_views']} saved widgets were not displayed")
            if state["cjk_boxes"]:
                problems.append("Chinese characters are drawn as empty boxes: no Chinese font (install one)")
            for src in state["broken_images"]:
                problems.append(f"image did not load: {src}")
            if screenshots is not None:
                target = Path(screenshots) / (rel.replace("/", "__").removesuffix(".html") + ".png")
                target.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(target), full_page=True)
            results[rel] = problems
            page.close()
        browser.close()
    return results


def main(argv: list[str]) -> int:
    html_dir = Path(argv[1] if len(argv) > 1 else "_build/html")
    chromium = find_chromium()
    if chromium is None:
        print("Chromium not found; install it (apt-get install chromium) or set TLBOOK_CHROMIUM", file=sys.stderr)
        return 2
    results = check_site(html_dir, chromium, html_dir.parent / "screenshots")
    for page, problems in results.items():
        print(f"{'ok ' if not problems else 'BAD'} {page}")
        for problem in problems:
            print(f"    {problem}")
    return 1 if any(results.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
