"""The book's notebooks as files: the Colab cell, exercises, and the table of contents."""

import re
from pathlib import Path

import nbformat
import pytest
import yaml

from tlbook.diagnostics import article_log

ROOT = Path(__file__).resolve().parents[1]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = [c["file"] for part in TOC["parts"] for c in part["chapters"] if (ROOT / f"{c['file']}.ipynb").is_file()]


def test_every_notebook_in_book_is_in_the_toc():
    on_disk = {f"book/{p.stem}" for p in (ROOT / "book").glob("*.ipynb")}
    assert on_disk == set(CHAPTERS) and len(CHAPTERS) == 9


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
    code = [c for c in cells[titles[0] :] if c.cell_type == "code"]
    data = [c for c in code if "exercise-data" in c.metadata.get("tags", [])]  # what an exercise hands out, shown
    solutions = [c for c in code if c not in data]
    assert solutions and all("hide-cell" in c.metadata.get("tags", []) for c in solutions)
    assert all(c.outputs for c in data), "an exercise-data cell shows its data"


def _prose(cells) -> str:
    return "\n".join(c.source for c in cells if c.cell_type == "markdown")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_number_glued_into_the_prose_is_stored_in_the_chapter(chapter):
    cells = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4).cells
    quoted = set(re.findall(r"\{glue:[a-z]+\}`([^`:]+)", _prose(cells)))
    stored = {
        o.get("metadata", {}).get("scrapbook", {}).get("name")
        for c in cells
        if c.cell_type == "code"
        for o in c.outputs
    }
    assert quoted <= stored, f"glued in the text but no cell stores it: {sorted(quoted - stored)}"


def test_numbers_with_four_decimals_in_the_prose_are_the_articles_own():
    # The prose quotes the article's printed log (2.3026, 0.1875, ...); any other precise number
    # comes from a cell through glue, so that it cannot drift from the code.
    article = set(re.findall(r"\d+\.\d{4,}", article_log()))
    typed = {
        n
        for chapter in CHAPTERS
        for n in re.findall(
            r"(?<![\w.])\d+\.\d{4,}", _prose(nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4).cells)
        )
    }
    assert typed and typed <= article, sorted(typed - article)
