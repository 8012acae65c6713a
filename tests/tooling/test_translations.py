"""The Chinese edition (tools/translations.py): every Markdown unit of the book has a current
translation that keeps its glue roles, cross-references, math and code; an edited English cell
makes exactly its translation stale; the translated notebooks carry the English code and outputs
byte for byte."""

import json
import re
import shutil
from pathlib import Path

import translations

ROOT = Path(__file__).resolve().parents[2]


def test_every_unit_of_the_book_has_a_current_intact_translation():
    found = translations.problems("zh")
    assert not found, (
        f"{len(found)} units of the Chinese edition need a translation "
        "(tools/translations.py extract, then fill in zh; see CONTRIBUTING.md):\n" + "\n".join(found[:40])
    )


def _small_book(root: Path) -> Path:
    (root / "book").mkdir(parents=True)
    toc = "format: jb-book\nroot: book/intro\nparts:\n  - chapters:\n      - file: book/ch01\n"
    (root / "_toc.yml").write_text(toc)
    (root / "_config.yml").write_text("title: A book\nsphinx:\n  config:\n    language: en\n")
    (root / "book" / "intro.md").write_text(
        "# Title\n\nA paragraph with `code` and {doc}`a link <ch01>`.\n\n```python\nx = 1\n\ny = 2\n```\n"
    )
    cells = [
        {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": ["# One\n\n", "Accuracy {glue:text}`acc`."]},
        {
            "cell_type": "code",
            "id": "c1",
            "metadata": {"nbval-tolerance": {"atol": 0.1}, "mystnb": {"image": {"alt": "A line plot of accuracy."}}},
            "execution_count": 1,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["0.91\n"]}],
            "source": ["print(0.91)  # a comment"],
        },
        {"cell_type": "markdown", "id": "m2", "metadata": {}, "source": ["Math $\\ln K$ and more."]},
    ]
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (root / "book" / "ch01.ipynb").write_text(json.dumps(notebook, indent=1))
    return root


def _translate_all(root: Path) -> None:
    translations.extract("zh", root)
    for page in translations.pages(root):
        entries = translations.read_translations(page, "zh", root)
        for entry in entries.values():
            if not entry["zh"]:
                entry["zh"] = "译文：" + entry["en"]  # keeps every protected span
        translations.write_translations(page, "zh", entries, root)


def test_a_changed_english_cell_makes_exactly_its_translation_stale(tmp_path):
    root = _small_book(tmp_path)
    # 3 units of the page (the code fence is its own translation), 2 Markdown cells, 1 figure's alt text
    assert len(translations.problems("zh", root)) == 6
    _translate_all(root)
    assert translations.problems("zh", root) == []
    notebook = json.loads((root / "book" / "ch01.ipynb").read_text())
    notebook["cells"][2]["source"] = ["Math $\\ln K$ and a changed sentence."]
    (root / "book" / "ch01.ipynb").write_text(json.dumps(notebook))
    found = translations.problems("zh", root)
    assert len(found) == 1 and found[0].startswith("book/ch01.ipynb [m2] stale")
    entries = translations.read_translations(root / "book" / "ch01.ipynb", "zh", root)
    entries["m2"]["zh"] = "数学 $\\ln K$，和一句改过的话。"
    translations.write_translations(root / "book" / "ch01.ipynb", "zh", entries, root)
    translations.accept("ch01", "m2", "zh", root)  # the maintainer marks the revised translation current
    assert translations.problems("zh", root) == []


def test_an_edited_paragraph_of_a_page_keeps_its_translation_as_a_stale_draft(tmp_path):
    root = _small_book(tmp_path)
    _translate_all(root)
    page = root / "book" / "intro.md"
    page.write_text(page.read_text().replace("A paragraph with", "A revised paragraph with"))
    translations.extract("zh", root)
    found = translations.problems("zh", root)
    assert len(found) == 1 and found[0].startswith("book/intro.md [") and "stale" in found[0]
    key = found[0].split("[")[1].split("]")[0]
    draft = translations.read_translations(page, "zh", root)[key]
    assert draft["zh"].startswith("译文：A paragraph with")  # the old translation, to revise
    translations.accept("intro", key, "zh", root)
    assert translations.problems("zh", root) == []


def test_a_translation_that_loses_a_glue_role_math_or_code_is_named(tmp_path):
    root = _small_book(tmp_path)
    _translate_all(root)
    page = root / "book" / "ch01.ipynb"
    entries = translations.read_translations(page, "zh", root)
    entries["m1"]["zh"] = "# 一\n\n准确率 {glue:text}`accuracy`。"  # the key renamed by mistake
    entries["m2"]["zh"] = "数学 ln K。"
    translations.write_translations(page, "zh", entries, root)
    found = translations.problems("zh", root)
    assert any("[m1] lost from the English text: {glue:text}`acc`" in line for line in found)
    assert any("[m2] lost from the English text: $\\ln K$" in line for line in found)


def test_the_built_edition_swaps_markdown_and_copies_code_and_outputs_byte_for_byte(tmp_path):
    root = _small_book(tmp_path / "src")
    _translate_all(root)
    out = translations.build(tmp_path / "zh", "zh", root)
    english = json.loads((root / "book" / "ch01.ipynb").read_text())
    chinese = json.loads((out / "book" / "ch01.ipynb").read_text())
    assert "".join(chinese["cells"][0]["source"]).startswith("译文：# One")
    assert chinese["cells"][1]["metadata"]["mystnb"]["image"]["alt"] == "译文：A line plot of accuracy."
    chinese["cells"][1]["metadata"]["mystnb"]["image"]["alt"] = "A line plot of accuracy."
    assert chinese["cells"][1] == english["cells"][1]  # otherwise byte for byte: code, outputs, tolerance
    page = (out / "book" / "intro.md").read_text()
    assert "译文：A paragraph" in page and "```python\nx = 1\n\ny = 2\n```" in page
    config = (out / "_config.yml").read_text(encoding="utf-8")
    assert "language: zh_CN" in config and "tlbook_edition: zh" in config


def test_the_books_two_editions_share_every_code_cell_output_and_glue_role(tmp_path):
    out = translations.build(tmp_path / "zh", "zh")
    for page in translations.pages():
        if page.suffix != ".ipynb":
            continue
        english = json.loads(page.read_text(encoding="utf-8"))
        chinese = json.loads((out / page.relative_to(ROOT)).read_text(encoding="utf-8"))
        for en, zh in zip(english["cells"], chinese["cells"], strict=True):
            if en["cell_type"] == "code":  # the same cell, but for its figure's description
                assert {**zh, "metadata": {}} == {**en, "metadata": {}}, (page.name, en["id"])
                if translations.alt_text(en):
                    assert translations.alt_text(zh) != translations.alt_text(en)
                    zh["metadata"]["mystnb"]["image"]["alt"] = translations.alt_text(en)
                assert zh["metadata"] == en["metadata"], (page.name, en["id"])
        assert [c["id"] for c in chinese["cells"]] == [c["id"] for c in english["cells"]]
        for en, zh in zip(english["cells"], chinese["cells"], strict=True):
            if en["cell_type"] == "markdown":
                text = "".join(en["source"])
                assert translations.protected(text) <= translations.protected("".join(zh["source"])), en["id"]


def test_markdown_blocks_never_split_a_code_fence():
    text = "# T\n\npara one\nline two\n\n```{note}\nA note\n\nwith two paragraphs\n```\n\n~~~\na\n\nb\n~~~\n"
    assert translations.markdown_blocks(text) == [
        "# T",
        "para one\nline two",
        "```{note}\nA note\n\nwith two paragraphs\n```",
        "~~~\na\n\nb\n~~~",
    ]
    assert translations.verbatim("```python\nx = 1\n```") and translations.verbatim("## `tlbook.config`")
    assert not translations.verbatim("```{note}\nA note\n```") and not translations.verbatim("Some words.")


def test_the_translations_folder_holds_one_file_per_page():
    files = {p.stem for p in (ROOT / "book" / "translations" / "zh").glob("*.json")}
    assert files == {p.stem for p in translations.pages()}
    assert shutil.which("python3")  # the tool runs on the system Python too (no tlbook import)


def test_the_glossary_reads_both_ways_with_the_same_pairs():
    text = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    defined = set(re.findall(r"^(\S[^\n]*)\n  \*\*([^*]+)\*\*", text, re.M))
    table = set(re.findall(r"^\| ([^|{]+?) \| \{term\}`([^`]+)` \|$", text, re.M))
    assert len(defined) >= 15 and {(zh, en) for en, zh in table} == defined
