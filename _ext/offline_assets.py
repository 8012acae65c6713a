"""Sphinx extension: serve Mermaid, MathJax and the Jupyter widget manager from the site itself.

``tools/vendor-js.sh`` (run by ``make book`` and ``make test``) puts local copies of the three
JavaScript packages into ``.cache/vendor-static/vendor/``. When all of them are there, this
extension adds that folder to the static files and points sphinxcontrib-mermaid
(``mermaid_use_local``), Sphinx's MathJax (``mathjax_path``) and MyST-NB's widget manager
(``nb_ipywidgets_js``) at the copies, so a page renders with no network. When they are not there,
it leaves the CDN defaults alone and says so in the build log.

It also fixes three things that would otherwise log JavaScript errors in every reader's browser:
``static/tlbook-mathjax-hub.js`` lets the widget manager's MathJax 2 call (``MathJax.Hub.Queue``)
work with the MathJax 3 that Sphinx loads; ``static/tlbook-theme-mode.js`` gives the theme a valid
colour mode on a first visit; and repeated script tags (sphinx-thebe's configuration, added twice
under Sphinx 7) are dropped.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

VENDOR_STATIC = Path(".cache") / "vendor-static"
FILES = {
    "Mermaid": "vendor/mermaid/mermaid.esm.min.mjs",
    "MathJax": "vendor/mathjax/tex-mml-chtml.js",
    "the widget manager": "vendor/html-manager/embed.js",
}


def _use_local_copies(app, config) -> None:
    static = Path(app.srcdir) / VENDOR_STATIC
    missing = [name for name, rel in FILES.items() if not (static / rel).is_file()]
    if missing:
        logger.info(
            "offline_assets: no local copies of %s (run tools/vendor-js.sh, which needs npm); the pages load "
            "Mermaid, MathJax and the widget manager from public CDNs and need a network to render them.",
            ", ".join(missing),
            color="red",
        )
        config.offline_assets_local = False
        return
    config.html_static_path = [*config.html_static_path, str(static)]
    config.mermaid_use_local = FILES["Mermaid"]
    config.mathjax_path = FILES["MathJax"]
    config.nb_ipywidgets_js = {FILES["the widget manager"]: {}}
    config.offline_assets_local = True
    logger.info(
        "offline_assets: Mermaid, MathJax and the widget manager are served from the site itself", color="green"
    )


def _add_static(app, config) -> None:
    config.html_static_path = [*config.html_static_path, str(Path(__file__).parent / "static")]


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated script tags: sphinx-thebe adds its inline configuration twice under Sphinx 7,
    and the second copy throws "Identifier 'THEBE_JS_URL' has already been declared"."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        # an inline script's filename is None or "" depending on how it was added; priority aside
        key = (str(getattr(js, "filename", js) or ""), repr(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    app.add_config_value("offline_assets_local", False, "html")
    app.connect("config-inited", _add_static, priority=899)
    app.connect("config-inited", _use_local_copies, priority=900)
    # After MathJax (priority 500, deferred): lets the widget manager's MathJax 2 call work with MathJax 3.
    app.add_js_file("tlbook-mathjax-hub.js", priority=600, defer="defer")
    app.add_js_file("tlbook-theme-mode.js", priority=100)
    app.connect("html-page-context", _dedupe_scripts, priority=1000)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
