"""The book's notebooks as files: the Colab cell, exercises, and the table of contents."""
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = [c["file"] for part in TOC["parts"] for c in part["chapters"] if (ROOT / f"{c['file']}.ipynb").is_file()]


def test_every_notebook_in_book_is_in_the_toc():
    on_disk = {f"book/{p.stem}" for p in (ROOT / "book").glob("*.ipynb")}
    assert on_disk == set(CHAPTERS) and len(CHAPTERS) == 8


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_first_cell_installs_tlbook_only_in_colab(chapter):
    first = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4).cells[0]
    assert first.cell_type == "code" and "remove-cell" in first.metadata.get("tags", [])
    lines = first.source.splitlines()
    guard = lines.index('if "google.colab" in sys.modules:')
    assert lines[guard + 1].strip().startswith("%pip install") and "tlbook" in lines[guard + 1]
    assert all(line.startswith(("#", "import sys", "if ", "    ")) for line in lines)  # nothing runs outside Colab


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_has_exercises_with_hidden_solutions(chapter):
    cells = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4).cells
    titles = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Exercises" in c.source]
    assert titles, "no Exercises section"
    solutions = [c for c in cells[titles[0]:] if c.cell_type == "code"]
    assert solutions and all("hide-cell" in c.metadata.get("tags", []) for c in solutions)
