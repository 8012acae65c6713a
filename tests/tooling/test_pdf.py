"""The PDF editions (`make pdf`, tools/pdf.py): each holds every chapter, in its language, with the
numbers the pages glue, and an outline a PDF reader shows as the table of contents."""

import json
import re
import unicodedata
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser  # made by Chromium, after the book build
ROOT = Path(__file__).resolve().parents[2]
PDFS = ROOT / "_build" / "pdf"


def _chapter_titles(lang: str) -> list[str]:
    """Each chapter's title as its page shows it: the first heading of its first Markdown cell."""
    titles = []
    for notebook in sorted((ROOT / "book").glob("ch*.ipynb")):
        cell = next(c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "markdown")
        text = "".join(cell["source"])
        if lang == "zh":
            text = json.loads((ROOT / "book" / "translations" / "zh" / f"{notebook.stem}.json").read_text())[
                cell["id"]
            ]["zh"]
        titles.append(re.match(r"# (.+)", text).group(1).strip())
    return titles


def _read(pdf: Path, last_chapter: str) -> tuple[list[str], str]:
    """The outline's entries, and the text of the last chapter's pages (from where the outline
    points to it; reading every page takes pypdf half a minute)."""
    import pypdf

    reader = pypdf.PdfReader(pdf)
    entries = []

    def walk(items):
        for item in items:
            walk(item) if isinstance(item, list) else entries.append(item)

    walk(reader.outline)
    start = next(reader.get_destination_page_number(e) for e in entries if last_chapter in _plain(e.title))
    text = "\n".join(page.extract_text() or "" for page in reader.pages[start : start + 25])
    return [_plain(e.title) for e in entries], _plain(text)


def _plain(text: str) -> str:
    """Text compared without white space, typographic ligatures (a PDF stores "fl" as one glyph) or
    the curly quotes Sphinx prints for straight ones."""
    text = unicodedata.normalize("NFKC", text).translate(str.maketrans("‘’", "''"))
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_each_edition_is_a_pdf_with_every_chapter_and_its_glued_numbers(lang):
    pdf = PDFS / f"tlbook-{lang}.pdf"
    if not pdf.is_file():  # make test does not print them (time); the Pages workflow does, then this
        pytest.skip(f"NO PDF CHECKED: {pdf.relative_to(ROOT)} is missing; `make pdf` prints it")
    titles = [_plain(title) for title in _chapter_titles(lang)]
    outline, text = _read(pdf, titles[-1])
    for title in titles:
        assert any(title in entry for entry in outline), title  # the outline: a table of contents
    # the last chapter's text: its title, and a text its prose glues from a cell (its verdict on
    # the paired comparison)
    assert titles[-1] in text
    assert "thesephotoscannottellthetwomodelsapart" in text or "excludeszero" in text
