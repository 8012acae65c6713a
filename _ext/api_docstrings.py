"""Sphinx extension: two corrections to how napoleon reads tlbook's docstrings for book/api.md.

napoleon turns the Google-style sections of tlbook's docstrings (Args, Returns, Raises) into
Sphinx fields. Two of its readings do not fit tlbook's docstrings, and both make the strict build
(``-W -n``) fail:

- A constant's or a property's docstring (tlbook's ``#:`` comments) is prose, but napoleon reads
  a first line ``words: more words`` as ``type: description`` and turns the words before the colon
  into a cross-reference to a type that does not exist. Those docstrings are kept as written.
- napoleon splits a field (``name: description``) at the first colon outside a literal, but sees
  a literal only when it closes on the same line: in a Returns section whose literal spans two
  lines (``{"grid": [...],`` then ``"steps"}``), it splits inside the literal and leaves it unclosed.
  A line with an unclosed inline literal (an odd number of double backquotes) is joined with the
  line that closes it before napoleon reads it: reStructuredText reads a line break inside a
  paragraph as a space, so the text shown is the same.
"""

from __future__ import annotations

# napoleon connects its autodoc-process-docstring handler at the default priority (500).
BEFORE_NAPOLEON = 400
AFTER_NAPOLEON = 600
PROSE_ONLY = ("data", "attribute", "property")


def _join_split_literals(lines: list[str]) -> list[str]:
    joined: list[str] = []
    for line in lines:
        if joined and joined[-1].count("``") % 2 == 1 and line.strip():
            joined[-1] = f"{joined[-1]} {line.strip()}"
        else:
            joined.append(line)
    return joined


def _before_napoleon(app, what, name, obj, options, lines) -> None:
    lines[:] = _join_split_literals(lines)
    if what in PROSE_ONLY:
        app.env.temp_data.setdefault("api_docstrings_prose", {})[name] = list(lines)


def _after_napoleon(app, what, name, obj, options, lines) -> None:
    kept = app.env.temp_data.get("api_docstrings_prose", {}).pop(name, None)
    if what in PROSE_ONLY and kept is not None:
        lines[:] = kept


def setup(app):
    app.setup_extension("sphinx.ext.napoleon")
    app.connect("autodoc-process-docstring", _before_napoleon, priority=BEFORE_NAPOLEON)
    app.connect("autodoc-process-docstring", _after_napoleon, priority=AFTER_NAPOLEON)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
