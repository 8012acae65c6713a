"""The book's pages as _toc.yml lists them, in book order: the root, then each part's chapters,
each followed by its sections (a chapter may have pages of its own, as Chapter 7 has)."""

from __future__ import annotations

from pathlib import Path

import yaml


def toc_files(root: Path) -> list[str]:
    """Every file of ``root``'s _toc.yml (paths without suffix), in book order, the root page first."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))

    def walk(entries):
        for entry in entries:
            if "file" in entry:  # not a url: or glob: entry
                yield entry["file"]
            yield from walk(entry.get("sections", []))

    return [toc["root"], *(f for part in toc.get("parts", []) for f in walk(part.get("chapters", [])))]


def parent_pages(root: Path) -> dict[str, str]:
    """``{section page: the page it is a section of}``, by file name (``"ch07_when_transfer_hurts":
    "ch07_does_it_pay_off"``): a section may read what its chapter's first page computed."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    parents = {}

    def walk(entries):
        for entry in entries:
            for section in entry.get("sections", []):
                if "file" in entry and "file" in section:
                    parents[Path(section["file"]).name] = Path(entry["file"]).name
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return parents
