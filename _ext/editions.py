"""Sphinx extension: a link on every page to the same page in the book's other edition.

The English site is the root of the published site and the Chinese edition lives under ``zh/``
(``make book`` puts it there; ``tools/translations.py`` writes its sources from the English ones,
so the two have the same pages under the same names). ``tlbook_edition`` (``en`` or ``zh``, set in
the edition's configuration) says which one is being built; the link is the theme's announcement
bar, with a relative URL computed for each page, so it works on a web server and from files alike.
"""

from __future__ import annotations

import html

#: For each edition: where the other one lives, relative to this one's root, and the link's text.
OTHER = {
    "en": ("zh/", "中文版", "zh-Hans"),
    "zh": ("../", "English edition", "en"),
}


def _announce(app, pagename, templatename, context, doctree) -> None:
    prefix, label, lang = OTHER[app.config.tlbook_edition]
    root = context["pathto"]("index").rsplit("index", 1)[0]  # "" or "../" ...: this page to the root
    href = f"{root}{prefix}{pagename}.html"
    context["theme_announcement"] = (
        f'<a class="tlbook-edition" href="{html.escape(href)}" hreflang="{lang}" lang="{lang}">{label}</a>'
    )


def setup(app):
    app.add_config_value("tlbook_edition", "en", "html")
    app.connect("html-page-context", _announce)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
