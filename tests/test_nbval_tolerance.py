"""The notebook check's tolerance plugin (tests/nbval_tolerance.py): its parts, then the real thing
on a copy of a chapter with one stored number and one stored word changed."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbval_tolerance import ToleranceError, compare_numbers, deviation, read_tolerance, split_numbers

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "text, skeleton, numbers",
    [
        ("test accuracy 0.777 on 448 images", "test accuracy ⟨n⟩ on ⟨n⟩ images", ["0.777", "448"]),
        ("lr 1e-2: −43.5 points", "lr ⟨n⟩: ⟨n⟩ points", ["1e-2", "−43.5"]),
        ("conv3, ch01, float32 and 32x32 pixels", "conv3, ch01, float32 and 32x32 pixels", []),
        ("ratio: 618x", "ratio: ⟨n⟩x", ["618"]),
        ("end of a sentence 3. Next", "end of a sentence ⟨n⟩. Next", ["3"]),
        ("<td>0.757</td><td>-1.190</td>", "<td>⟨n⟩</td><td>⟨n⟩</td>", ["0.757", "-1.190"]),
    ],
)
def test_split_numbers_finds_numbers_and_keeps_words(text, skeleton, numbers):
    assert split_numbers(text) == (skeleton, numbers)


def test_split_numbers_folds_column_padding():
    narrow = split_numbers("right way     0.757  0.008")
    wide = split_numbers("right way    -0.757  0.008")
    assert narrow[0] == wide[0] == "right way ⟨n⟩ ⟨n⟩"


def test_decimals_compare_within_atol_and_rtol():
    assert compare_numbers(["0.777"], ["0.759"], atol=0.02) == []
    assert compare_numbers(["0.777"], ["0.750"], atol=0.02) != []
    assert compare_numbers(["100.0"], ["104.0"], atol=0, rtol=0.05) == []
    assert compare_numbers(["100.0"], ["106.0"], atol=0, rtol=0.05) != []


def test_integers_must_match_whatever_the_tolerance():
    problems = compare_numbers(["448"], ["449"], atol=10)
    assert problems and "integers must match" in problems[0]
    assert compare_numbers(["448", "0.5"], ["448", "0.51"], atol=0.05) == []


def test_integers_can_opt_in_to_the_tolerance():
    assert compare_numbers(["-43"], ["-38"], atol=6, integers=True) == []
    assert compare_numbers(["-43"], ["-36"], atol=6, integers=True) != []


def test_a_decimal_compared_with_an_integer_uses_the_tolerance():
    assert compare_numbers(["1.0"], ["1"], atol=0.01) == []


def test_deviation_reports_largest_differences():
    d = deviation(["0.5", "10", "2.0"], ["0.52", "10", "1.9"])
    assert math.isclose(d["max_abs"], 0.1) and math.isclose(d["max_rel"], 0.05) and d["integers_equal"]
    assert not deviation(["3"], ["4"])["integers_equal"]
    # a cell that printed another count of numbers (an extra warning, say): nothing to measure, no crash
    assert deviation(["0.5"], ["0.5", "2"]) == {"max_abs": None, "max_rel": None, "integers_equal": False}


def test_read_tolerance_accepts_a_declared_tolerance():
    spec = read_tolerance({"nbval-tolerance": {"atol": 0.03, "reason": "one training run"}})
    assert spec == {"atol": 0.03, "rtol": 0.0, "integers": False, "reason": "one training run"}
    assert read_tolerance({}) is None


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"atol": 0.03}, "needs a 'reason'"),
        ({"atol": -1, "reason": "x"}, "atol must be a number >= 0"),
        ({"atol": "0.1", "reason": "x"}, "atol must be a number >= 0"),
        ({"abs": 0.1, "reason": "x"}, "unknown keys"),
        ({"atol": 1, "integers": "yes", "reason": "x"}, "integers must be true or false"),
        (0.1, "must be a mapping"),
    ],
)
def test_read_tolerance_rejects_malformed_metadata(bad, message):
    with pytest.raises(ToleranceError, match=message):
        read_tolerance({"nbval-tolerance": bad})


# --- the real notebook check on a copy of a chapter -------------------------------------------

CHAPTER = ROOT / "book" / "ch03_math.ipynb"


def _first_cell(nb, predicate):
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and predicate(cell):
            return i
    raise AssertionError("no such cell in the chapter")


def _stream_text(cell):
    return "".join(o["text"] for o in cell.outputs if o.get("output_type") == "stream")


def _replace_in_stream(cell, old, new):
    for output in cell.outputs:
        if output.get("output_type") == "stream" and old in output["text"]:
            output["text"] = output["text"].replace(old, new, 1)
            return
    raise AssertionError(f"{old!r} not in the stored output")


def _run_nbval(notebooks, tmp_path):
    """Run the README's notebook check on ``notebooks``; return {notebook stem: {cell: outcome}}."""
    env = {
        **os.environ,
        "TLBOOK_PROFILE": "quick",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")])),
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "-p",
            "nbval_tolerance",
            "-p",
            "no:cacheprovider",
            "--nbval",
            "--nbval-current-env",
            "--nbval-sanitize-with",
            str(ROOT / "nbval-sanitize.cfg"),
            "-rA",
            "-q",
            *map(str, notebooks),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    outcomes = {}
    for outcome, stem, cell in re.findall(r"^(PASSED|FAILED) \S*?(\w+)\.ipynb::(Cell \d+)", run.stdout, re.M):
        outcomes.setdefault(stem, {})[cell] = outcome.lower()
    assert outcomes, run.stdout[-3000:] + run.stderr[-3000:]
    return outcomes


@pytest.mark.slow
def test_notebook_check_fails_on_a_number_beyond_its_tolerance_and_on_a_changed_word(tmp_path):
    """Two copies of Chapter 3, checked by nbval with the plugin. The first has the stored accuracy
    of one cell moved by more than its tolerance, and one stored word changed in another cell that
    also compares its numbers within a tolerance: both cells, and only they, must fail. The second,
    a control, has the accuracy moved by less than its tolerance: every cell must pass."""
    nb = nbformat.read(CHAPTER, as_version=4)
    index = _first_cell(nb, lambda c: "nbval-tolerance" in c.metadata and "accuracy" in _stream_text(c))
    worded = _first_cell(nb, lambda c: "nbval-tolerance" in c.metadata and "largest difference" in _stream_text(c))
    assert worded != index
    tolerance = nb.cells[index].metadata["nbval-tolerance"]["atol"]
    text = _stream_text(nb.cells[index])
    stored = text.split("accuracy ")[1].split()[0].rstrip(",")
    decimals = len(stored.split(".")[1])

    def variant(name, *changes):
        copy = nbformat.read(CHAPTER, as_version=4)
        for cell, old, new in changes:
            _replace_in_stream(copy.cells[cell], old, new)
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(copy, path)
        return path

    beyond = f"{float(stored) - 3 * tolerance:.{decimals}f}"
    within = f"{float(stored) - 0.4 * tolerance:.{decimals}f}"
    paths = [
        variant(
            "changed",
            (index, f"accuracy {stored}", f"accuracy {beyond}"),
            (worded, "largest difference", "largest distance"),
        ),
        variant("number_within", (index, f"accuracy {stored}", f"accuracy {within}")),
    ]
    outcomes = _run_nbval(paths, tmp_path)

    def nbval_cell(i):
        return f"Cell {sum(c.cell_type == 'code' for c in nb.cells[:i])}"  # nbval counts code cells

    failed = sorted(c for c, o in outcomes["changed"].items() if o == "failed")
    assert failed == sorted([nbval_cell(index), nbval_cell(worded)]), outcomes["changed"]
    assert set(outcomes["number_within"].values()) == {"passed"}, outcomes["number_within"]


def test_every_tolerance_in_the_book_is_declared_with_a_reason():
    declared = 0
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if "nbval-tolerance" in cell.metadata:
                assert read_tolerance(cell.metadata)["reason"], path
                declared += 1
            source = cell.source if cell.cell_type == "code" else ""
            if "NBVAL_IGNORE_OUTPUT" in source:  # only wall-clock cells, and they say so
                assert "wall-clock" in source, f"{path.name}: an ignored cell that is not a timing"
    assert declared > 0
