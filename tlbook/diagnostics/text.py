"""Printed advice wrapped to the page: the width of the book's text column, and :func:`wrap`.

A finding or a check prints long sentences; wrapped to the column, they read on the page (and in a
notebook) without scrolling sideways.
"""

from __future__ import annotations

import textwrap

#: Printed text is wrapped to this many characters: the width of the book's text column, so a
#: finding reads on the page without scrolling sideways.
TEXT_WIDTH = 88


def wrap(text: str, width: int = TEXT_WIDTH) -> str:
    """``text`` wrapped at spaces to lines of at most ``width`` characters (longer words stay
    whole), continuation lines indented by two spaces. Each line of a multi-line text (a pasted
    training log) is wrapped on its own, so its line breaks stay where they were."""
    return "\n".join(
        textwrap.fill(line, width=width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
        for line in text.split("\n")
    )
