"""The Sphinx extension that points Mermaid, MathJax and the widget manager at local copies."""

import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "_ext"))
import offline_assets  # noqa: E402


def _config():
    return types.SimpleNamespace(
        html_static_path=["_static"],
        mermaid_use_local="",
        mathjax_path="cdn",
        nb_ipywidgets_js={"cdn": {}},
        offline_assets_local=None,
    )


def test_without_local_copies_the_cdn_defaults_stay(tmp_path):
    config = _config()
    offline_assets._use_local_copies(types.SimpleNamespace(srcdir=str(tmp_path)), config)
    assert config.offline_assets_local is False
    assert (config.mermaid_use_local, config.mathjax_path, config.nb_ipywidgets_js) == ("", "cdn", {"cdn": {}})


def test_with_local_copies_everything_points_at_them(tmp_path):
    static = tmp_path / offline_assets.VENDOR_STATIC
    for rel in offline_assets.FILES.values():
        (static / rel).parent.mkdir(parents=True, exist_ok=True)
        (static / rel).write_text("// stub")
    config = _config()
    offline_assets._use_local_copies(types.SimpleNamespace(srcdir=str(tmp_path)), config)
    assert config.offline_assets_local is True and config.html_static_path == ["_static", str(static)]
    assert config.mermaid_use_local == "vendor/mermaid/mermaid.esm.min.mjs"
    assert config.mathjax_path == "vendor/mathjax/tex-mml-chtml.js"
    assert list(config.nb_ipywidgets_js) == ["vendor/html-manager/embed.js"]


def test_partial_copies_are_not_used(tmp_path):
    static = tmp_path / offline_assets.VENDOR_STATIC
    rel = offline_assets.FILES["Mermaid"]
    (static / rel).parent.mkdir(parents=True)
    (static / rel).write_text("// stub")
    config = _config()
    offline_assets._use_local_copies(types.SimpleNamespace(srcdir=str(tmp_path)), config)
    assert config.offline_assets_local is False and config.mermaid_use_local == ""


def test_repeated_scripts_are_dropped():
    class Js:
        def __init__(self, filename, **attributes):
            self.filename, self.attributes = filename, attributes

    scripts = [Js(None, body="const A = 1"), Js("a.js"), Js("", body="const A = 1"), Js("a.js", defer="defer")]
    context = {"script_files": scripts}
    offline_assets._dedupe_scripts(None, "page", "page.html", context, None)
    assert [(s.filename, s.attributes) for s in context["script_files"]] == [
        (None, {"body": "const A = 1"}),
        ("a.js", {}),
        ("a.js", {"defer": "defer"}),
    ]
