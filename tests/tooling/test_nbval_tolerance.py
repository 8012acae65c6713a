"""The notebook check's tolerance plugin (tests/nbval_tolerance.py): its parts, then the real thing
on a small notebook with one stored number and one stored word changed."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbval_tolerance import ToleranceError, compare_numbers, deviation, read_tolerance, split_numbers

ROOT = Path(__file__).resolve().parents[2]


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
    assert not deviation(["3"], ["4"])["integers_equal"] and deviation(["3"], ["4"])["max_abs"] == 0
    # a cell printed in whole points measures them too
    assert deviation(["-43", "0.5"], ["-38", "0.5"], integers=True)["max_abs"] == 5
    # a cell that printed another count of numbers (an extra warning, say): nothing to measure, no crash
    assert deviation(["0.5"], ["0.5", "2"]) == {"max_abs": None, "max_rel": None, "integers_equal": False}


def test_read_tolerance_accepts_a_declared_tolerance():
    spec = read_tolerance({"nbval-tolerance": {"atol": 0.03, "reason": "one training run"}})
    assert spec == {"atol": 0.03, "rtol": 0.0, "integers": False, "spread": "seeds", "reason": "one training run"}
    kernels = read_tolerance({"nbval-tolerance": {"atol": 0.01, "spread": "kernels", "reason": "a forward pass"}})
    assert kernels["spread"] == "kernels"
    assert read_tolerance({}) is None


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"atol": 0.03}, "needs a 'reason'"),
        ({"atol": -1, "reason": "x"}, "atol must be a number >= 0"),
        ({"atol": "0.1", "reason": "x"}, "atol must be a number >= 0"),
        ({"abs": 0.1, "reason": "x"}, "unknown keys"),
        ({"atol": 1, "integers": "yes", "reason": "x"}, "integers must be true or false"),
        ({"atol": 1, "spread": "machines", "reason": "x"}, "spread must be one of"),
        (0.1, "must be a mapping"),
    ],
)
def test_read_tolerance_rejects_malformed_metadata(bad, message):
    with pytest.raises(ToleranceError, match=message):
        read_tolerance({"nbval-tolerance": bad})


# --- the real notebook check, on a small notebook made here ----------------------------------
# Its cells compute in plain Python, so the stored outputs hold on every machine and the only
# thing that can fail is what each variant changed.


def _notebook(accuracy_stored: str, difference_word: str):
    """Three code cells and their stored outputs: an accuracy within atol 0.02, a worded number
    within atol 0.1, and a count compared exactly."""
    cells = [
        ("print(f'test accuracy {3 / 4:.3f} on {4} images')", f"test accuracy {accuracy_stored} on 4 images\n", 0.02),
        ("print('largest difference', 0.5)", f"{difference_word} 0.5\n", 0.1),
        ("print('images:', 4)", "images: 4\n", None),
    ]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for count, (source, stored, atol) in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(source, execution_count=count)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
        if atol is not None:
            cell.metadata["nbval-tolerance"] = {"atol": atol, "reason": "made-up numbers for this test"}
        nb.cells.append(cell)
    return nb


def _run_nbval(notebooks, tmp_path):
    """Run the README's notebook check on ``notebooks``; return {notebook stem: {cell: outcome}}."""
    env = {
        **os.environ,
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
        timeout=300,
    )
    outcomes = {}
    for outcome, stem, cell in re.findall(r"^(PASSED|FAILED) \S*?(\w+)\.ipynb::(Cell \d+)", run.stdout, re.M):
        outcomes.setdefault(stem, {})[cell] = outcome.lower()
    assert outcomes, run.stdout[-3000:] + run.stderr[-3000:]
    return outcomes


def test_notebook_check_fails_on_a_number_beyond_its_tolerance_and_on_a_changed_word(tmp_path):
    """Three notebooks, checked by nbval with the plugin. In the first the stored accuracy is moved
    by three times its tolerance and one stored word is changed in another cell that compares its
    numbers within a tolerance: both cells, and only they, must fail. In the second the accuracy
    is moved by less than its tolerance, and in the third it is as computed: every cell passes."""
    variants = {
        "changed": _notebook("0.690", "largest distance"),
        "number_within": _notebook("0.742", "largest difference"),
        "as_computed": _notebook("0.750", "largest difference"),
    }
    paths = []
    for name, nb in variants.items():
        paths.append(tmp_path / f"{name}.ipynb")
        nbformat.write(nb, paths[-1])
    outcomes = _run_nbval(paths, tmp_path)

    assert outcomes["changed"] == {"Cell 0": "failed", "Cell 1": "failed", "Cell 2": "passed"}, outcomes
    assert set(outcomes["number_within"].values()) == {"passed"}, outcomes["number_within"]
    assert set(outcomes["as_computed"].values()) == {"passed"} and len(outcomes["as_computed"]) == 3


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
