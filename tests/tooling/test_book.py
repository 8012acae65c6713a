"""The book's notebooks as files: the Colab cell, exercises, and the table of contents; the API page."""

import importlib
import inspect
import re
from pathlib import Path

import nbformat
import pytest
import yaml
from book_toc import toc_files  # tools/ is on sys.path (pyproject.toml)
from public_api import defined_here

from tlbook.diagnostics import article_log

ROOT = Path(__file__).resolve().parents[2]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = [f for f in toc_files(ROOT) if (ROOT / f"{f}.ipynb").is_file()]  # chapter notebooks and their sections


def test_every_notebook_in_book_is_in_the_toc():
    on_disk = {f"book/{p.stem}" for p in (ROOT / "book").glob("*.ipynb")}
    assert on_disk == set(CHAPTERS) and len(CHAPTERS) == 10  # 9 chapters, Chapter 7 on two pages


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_first_cell_installs_tlbook_only_in_colab(chapter):
    first = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4).cells[0]
    assert first.cell_type == "code" and "remove-cell" in first.metadata.get("tags", [])
    lines = first.source.splitlines()
    guard = lines.index('if "google.colab" in sys.modules:')
    assert lines[guard + 1].strip().startswith("%pip install") and "tlbook" in lines[guard + 1]
    # nothing runs outside Colab (blank lines, as a formatter leaves them, run nothing either)
    assert all(not line or line.startswith(("#", "import sys", "if ", "    ")) for line in lines)


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


def _opening(chapter) -> str:
    return _opening_of(ROOT / f"{chapter}.ipynb")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_opens_with_objectives_and_its_measured_run_time(chapter):
    import time_notebooks

    opening = _opening(chapter)
    objectives = re.search(r"Learning objectives[^\n]*\n\n((?:\d+\. .*\n(?: {3}.*\n)*)+)", opening + "\n")
    assert objectives, "no numbered list after 'Learning objectives'"
    assert len(re.findall(r"^\d+\. ", objectives.group(1), re.M)) >= 3, "fewer than 3 objectives"
    times = time_notebooks.read()
    name = Path(chapter).name
    assert name in times, f"{name} is not in book/generated/timings.md: run tools/time_notebooks.py"
    assert time_notebooks.run_time_line(*times[name]) in opening, "run: tools/time_notebooks.py --stamp"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_has_three_graded_exercises_one_of_them_predict_then_run(chapter):
    cells = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4).cells
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Exercises" in c.source)
    headings = [
        (i, m.group(1), m.group(2))
        for i, c in enumerate(cells[start:], start)
        if c.cell_type == "markdown"
        for m in re.finditer(r"\*\*Exercise (\d+)(?: \(([^)]*)\))?\.\*\*", c.source)
    ]
    assert [int(n) for _, n, _ in headings] == list(range(1, len(headings) + 1)) and len(headings) >= 3
    assert any(kind == "predict, then run" for _, _, kind in headings), "no 'predict, then run' exercise"
    for k, (i, n, kind) in enumerate(headings):
        end = headings[k + 1][0] if k + 1 < len(headings) else len(cells)
        solutions = [
            c for c in cells[i + 1 : end] if c.cell_type == "code" and "exercise-data" not in c.metadata.get("tags", [])
        ]
        if kind != "your own data":  # an exercise for the reader's own data has no solution to check
            assert solutions and all(c.outputs for c in solutions), f"exercise {n}: no executed, checked solution"


PAGE_WIDTH = 88  # characters the theme's column shows in a code block without scrolling


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_code_and_printed_text_fit_the_page_column(chapter):
    cells = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4).cells
    too_long = []
    for i, c in enumerate(cells):
        if c.cell_type != "code" or "remove-cell" in c.metadata.get("tags", []):
            continue
        too_long += [f"cell {i} code: {line}" for line in c.source.splitlines() if len(line) > PAGE_WIDTH]
        for out in c.outputs:
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            too_long += [f"cell {i} output: {line}" for line in text.splitlines() if len(line) > PAGE_WIDTH]
    assert not too_long, f"{len(too_long)} lines over {PAGE_WIDTH} characters:\n" + "\n".join(too_long[:20])


# The API reference (book/api.md) is generated by autodoc from tlbook's docstrings. Its directives
# are read here as autodoc reads them, so a module or function left off the page fails without a build.
API_PAGE = ROOT / "book" / "api.md"
AUTODOC = re.compile(r"^(?:\.\. |```\{)(auto\w+)(?:::|\})[ \t]*(\S+)[ \t]*\n((?:[ \t]*:[\w-]+:.*\n)*)", re.M)


def _documented(obj) -> bool:
    # autodoc_inherit_docstrings is off (_config.yml): a class's own docstring, not its base's
    return bool(vars(obj).get("__doc__") if inspect.isclass(obj) else inspect.getdoc(obj))


def _public(module, *, undocumented: bool = False) -> set[str]:
    """The public functions and classes defined in ``module`` (with a docstring unless ``undocumented``)."""
    return {
        f"{module.__name__}.{name}"
        for name in defined_here(module)
        if undocumented or _documented(getattr(module, name))
    }


def _api_page() -> tuple[list[str], set[str], list[dict]]:
    """The modules book/api.md documents in order, the functions and classes it shows, and the options."""
    modules, shown, options = [], set(), []
    for kind, target, block in AUTODOC.findall(API_PAGE.read_text()):
        opts = {k: v.strip() for k, v in re.findall(r":([\w-]+):(.*)", block)}
        options.append(opts)
        if kind != "automodule":
            shown.add(target)
            continue
        modules.append(target)
        module = importlib.import_module(target)
        if "members" not in opts:
            continue
        listed = [n.strip() for n in opts["members"].split(",") if n.strip()]
        excluded = {n.strip() for n in opts.get("exclude-members", "").split(",")}
        members = {f"{target}.{n}" for n in listed} or _public(module, undocumented="undoc-members" in opts)
        shown |= {m for m in members if m.rsplit(".", 1)[1] not in excluded}
    return modules, shown, options


def test_api_page_is_in_the_toc_under_reference():
    reference = [part for part in TOC["parts"] if part.get("caption") == "Reference"]
    assert reference and "book/api" in [c["file"] for c in reference[0]["chapters"]]
    assert API_PAGE.is_file()


def test_api_page_documents_every_public_function_of_every_module():
    from test_api import MODULES  # the modules tlbook's docstring lists, in its order

    modules, shown, options = _api_page()
    public = set().union(*(_public(importlib.import_module(f"tlbook.{m}"), undocumented=True) for m in MODULES))
    missing = sorted(public - shown)
    assert not missing, f"not on book/api.md (left out, excluded, or without a docstring): {missing}"
    assert modules == [f"tlbook.{m}" for m in MODULES], "one automodule per module, in tlbook's order"
    assert not any("private-members" in o for o in options) and not any("._" in n for n in shown)


def test_timing_one_chapter_again_keeps_the_other_rows(tmp_path, monkeypatch):
    import time_notebooks

    monkeypatch.setattr(time_notebooks, "TABLE", tmp_path / "timings.md")
    names = [p.stem for p in time_notebooks.chapters()]
    time_notebooks.write({name: (10.0, 2.0) for name in names})
    time_notebooks.write({names[-1]: (30.0, 4.0)})  # what --only writes
    times = time_notebooks.read()
    assert times[names[-1]] == (30.0, 4.0) and times[names[0]] == (10.0, 2.0) and len(times) == len(names)
    assert f"**{10 * (len(names) - 1) + 30}**" in (tmp_path / "timings.md").read_text()  # the total


def test_a_new_page_timed_alone_takes_its_place_in_book_order(tmp_path, monkeypatch):
    import time_notebooks

    monkeypatch.setattr(time_notebooks, "TABLE", tmp_path / "timings.md")
    names = [p.stem for p in time_notebooks.chapters()]
    time_notebooks.write({name: (10.0, 2.0) for name in names if name != "ch07_when_transfer_hurts"})
    time_notebooks.write({"ch07_when_transfer_hurts": (30.0, 4.0)})  # a page the table had no row for
    assert list(time_notebooks.read()) == names


def test_a_section_page_follows_its_chapter_and_is_timed_after_it(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import time_notebooks
    from book_toc import parent_pages

    assert parent_pages(ROOT) == {"ch07_when_transfer_hurts": "ch07_does_it_pay_off"}
    assert CHAPTERS.index("book/ch07_when_transfer_hurts") == CHAPTERS.index("book/ch07_does_it_pay_off") + 1
    ran = []
    monkeypatch.setattr(time_notebooks, "run", lambda path, cache: ran.append(path.stem) or 1.0)
    monkeypatch.setattr(time_notebooks, "subprocess", SimpleNamespace(run=lambda *a, **k: None))  # no pretraining
    monkeypatch.setenv("TLBOOK_CACHE", str(tmp_path))
    times = time_notebooks.measure(["ch07_when_transfer_hurts"])
    assert ran == ["ch07_does_it_pay_off", "ch07_when_transfer_hurts"] * 2  # first passes, then second
    assert list(times) == ["ch07_does_it_pay_off", "ch07_when_transfer_hurts"]


def test_stamping_run_times_keeps_the_chinese_opening_current(tmp_path, monkeypatch):
    import shutil

    import time_notebooks
    import translations

    page = "ch02_workflow"  # its translation says "也是" where both times are equal: rewritten whole
    for name in ("_toc.yml", f"book/{page}.ipynb", f"book/translations/zh/{page}.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    monkeypatch.setattr(time_notebooks, "ROOT", tmp_path)
    assert time_notebooks.stamp({page: (123.4, 45.6)}) == [f"{page}.ipynb"]
    notebook = tmp_path / "book" / f"{page}.ipynb"
    opening = next(c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown")
    assert time_notebooks.run_time_line(123.4, 45.6) in opening.source
    entries = translations.read_translations(notebook, "zh", tmp_path)
    entry = entries[opening.id]
    assert entry["sha"] == translations.sha(opening.source) and entry["en"] == opening.source  # current
    assert "**运行时间：** 缓存已预热时 46 s，缓存为空时 123 s（" in entry["zh"]
    assert entry["zh"].count("运行时间") == 1
    # a translation that was stale already is left for a translator to revise whole
    entries[opening.id]["sha"] = "0" * 16
    translations.write_translations(notebook, "zh", entries, tmp_path)
    assert time_notebooks.stamp({page: (200.0, 50.0)}) == [f"{page}.ipynb"]
    assert translations.read_translations(notebook, "zh", tmp_path)[opening.id]["sha"] == "0" * 16


def _opening_of(notebook: Path) -> str:
    return next(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown")


def test_the_toc_reader_skips_entries_without_a_file(tmp_path):
    from book_toc import parent_pages, toc_files

    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - chapters:\n      - file: a\n        sections:\n"
        "          - file: a2\n          - url: https://example.org\n      - glob: extra/*\n      - file: b\n"
    )
    assert toc_files(tmp_path) == ["intro", "a", "a2", "b"]
    assert parent_pages(tmp_path) == {"a2": "a"}


def _assignments(page: str) -> dict[str, str]:
    """``{name: the expression assigned to it}`` over a notebook's code cells (those Python parses)."""
    import ast

    found = {}
    for cell in nbformat.read(ROOT / f"book/{page}.ipynb", as_version=4).cells:
        try:
            tree = ast.parse(cell.source) if cell.cell_type == "code" else None
        except SyntaxError:  # the Colab cell's %pip
            continue
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                found[node.targets[0].id] = ast.dump(node.value)
    return found


def test_chapter7_second_page_reads_the_first_pages_study_with_its_very_arguments():
    # page 2 reads page 1's tuning and study from the cache: other arguments would compute another
    first, second = _assignments("ch07_does_it_pay_off"), _assignments("ch07_when_transfer_hurts")
    for name in ("tuning", "rates", "study"):
        assert second[name] == first[name], name


def _cell_text(page: str, cell_id: str) -> str:
    """The plain-text outputs of one code cell of a stored notebook."""
    cell = next(c for c in nbformat.read(ROOT / f"book/{page}.ipynb", as_version=4).cells if c.get("id") == cell_id)
    return "".join(
        o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
        for o in cell.outputs
    )


def test_chapter7_fixed_choices_are_what_the_rule_picked_on_the_stored_run():
    # studies.BOOK_CHOICES claims to be the rule's choices on the run the pages show: on that run,
    # the rule's pick and the rate each arm trains with are the same, line by line
    import tlbook.studies as studies

    scratch = _cell_text("ch07_does_it_pay_off", "59b8419c").splitlines()
    rate, steps = studies.BOOK_CHOICES["scratch"]
    assert scratch[:2] == [
        f"scratch, fixed: learning rate {rate}, {steps} steps",
        f"the rule, on this grid: learning rate {rate}",
    ]
    for page, cell_id, target in (
        ("ch07_does_it_pay_off", "c7-rates", "original"),
        ("ch07_when_transfer_hurts", "c7h-rates", "inverted"),
    ):
        lines = _cell_text(page, cell_id).splitlines()
        assert lines[0].split()[-2:] == ["rule", "chosen"], lines[0]
        for arm, fixed in studies.BOOK_CHOICES[target].items():
            row = next(line for line in lines if re.match(rf"{re.escape(arm)} +[\dN]", line))
            assert [float(x) for x in row.split()[-2:]] == [fixed, fixed], (page, row)
