"""The book's pages as _toc.yml lists them, in book order: the root, then each part's chapters,
each followed by its sections (a chapter may have pages of its own, as Chapter 7 has)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml


def _pages(root: Path) -> Iterator[tuple[str, str | None]]:
    """``(file, the file it is a section of, or None)`` for every page of the parts, in book order;
    ``url:`` and ``glob:`` entries, which name no file, are skipped."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))

    def walk(entries, parent):
        for entry in entries:
            if "file" in entry:
                yield entry["file"], parent
            yield from walk(entry.get("sections", []), entry.get("file", parent))

    for part in toc.get("parts", []):
        yield from walk(part.get("chapters", []), None)


def toc_files(root: Path) -> list[str]:
    """Every file of ``root``'s _toc.yml (paths without suffix), in book order, the root page first."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    return [toc["root"], *(file for file, _ in _pages(root))]


def parent_pages(root: Path) -> dict[str, str]:
    """``{section page: the page it is a section of}``, by file name (``"ch07_when_transfer_hurts":
    "ch07_does_it_pay_off"``): a section may read what its chapter's first page computed."""
    return {Path(file).name: Path(parent).name for file, parent in _pages(root) if parent}
