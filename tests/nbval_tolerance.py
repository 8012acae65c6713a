"""nbval with declared numeric tolerances: a pytest plugin (loaded by the repository's conftest.py).

nbval compares every output of a re-executed notebook with the stored one, character for
character. TensorFlow's CPU results change in the last digits with the CPU and its kernels, and
training amplifies that, so an exact comparison fails on every machine but the one that stored
the outputs. This plugin keeps nbval's check and changes one thing, for the cells that declare a
tolerance in their metadata:

.. code-block:: json

    {"nbval-tolerance": {"atol": 0.03, "reason": "one training run; spread between machines 0.018"}}

In such a cell:

- the *text* must still match exactly: every word, every integer (counts, sizes, epochs), the
  number of numbers and their order; runs of spaces count as one (table columns widen with
  their numbers);
- every *decimal* number (one with a point or an exponent) may differ from the stored one by
  ``atol + rtol * |stored|``. ``rtol`` defaults to 0; ``reason`` is required;
- with ``"integers": true`` whole numbers get the same tolerance, for a cell that prints a rounded
  measurement as a whole number (``-43 points``); otherwise whole numbers must be equal;
- ``"spread"`` says what the tolerance was measured against (``tools/seed_spread.py``): ``"seeds"``
  (the default, numbers from training) or ``"kernels"`` (numbers that do not train);
- a table that an output carries both as HTML and as plain text is compared once, in its HTML,
  the form the page shows (pandas re-wraps the plain text when a column widens).

Cells without the key are compared exactly, as nbval does. ``--nbval-tolerance-report FILE``
writes, for every compared cell, the largest deviation of its decimal numbers as JSON lines; the
tolerances in the book were chosen from such reports (see the README).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

METADATA_KEY = "nbval-tolerance"
#: What a cell's tolerance was measured against (tools/seed_spread.py): a change of seed, for numbers
#: that come from training; the CPU conditions themselves (other kernels, thread counts), for numbers
#: that do not train but depend on the seed through the data or the initial weights, which no CPU
#: changes.
SPREADS = {"seeds", "kernels"}

# A number on its own, optionally signed (ASCII or Unicode minus), with an optional fraction and
# exponent; not part of a word such as conv3, ch01 or float32 (a trailing "x", as in "255x", is a
# unit; 32x32 is a size and stays text).
NUMBER = re.compile(r"(?<![\w.])[-+\u2212]?(?:\d+\.\d+|\.\d+|\d+)(?:[eE][-+]?\d+)?(?:(?=x(?!\w))|(?!\w))")
PLACEHOLDER = "\u27e8n\u27e9"  # ⟨n⟩
SPACES = re.compile(r"[ \t]+")


class ToleranceError(ValueError):
    """A cell's ``nbval-tolerance`` metadata is malformed."""


def split_numbers(text: str) -> tuple[str, list[str]]:
    """Return ``text`` with every number replaced by a placeholder, and the numbers in order.

    Runs of spaces and tabs are folded to one space, so a table whose column widened still has
    the same skeleton.
    """
    numbers = [m.group(0) for m in NUMBER.finditer(text)]
    skeleton = SPACES.sub(" ", NUMBER.sub(PLACEHOLDER, text))
    return skeleton, numbers


def _value(token: str) -> float:
    return float(token.replace("\u2212", "-"))


def is_decimal(token: str) -> bool:
    """True for numbers written with a fraction or an exponent (compared with the tolerance)."""
    return "." in token or "e" in token.lower()


def read_tolerance(metadata) -> dict | None:
    """The tolerance a cell declares, checked: ``{"atol", "rtol", "reason"}``, or None."""
    spec = metadata.get(METADATA_KEY)
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ToleranceError(f"{METADATA_KEY} must be a mapping, got {spec!r}")
    unknown = set(spec) - {"atol", "rtol", "integers", "spread", "reason"}
    if unknown:
        raise ToleranceError(
            f"{METADATA_KEY} has unknown keys {sorted(unknown)}; use atol, rtol, integers, spread and reason"
        )
    if not isinstance(spec.get("integers", False), bool):
        raise ToleranceError(f"{METADATA_KEY}.integers must be true or false, got {spec['integers']!r}")
    if spec.get("spread", "seeds") not in SPREADS:
        raise ToleranceError(f"{METADATA_KEY}.spread must be one of {sorted(SPREADS)}, got {spec['spread']!r}")
    atol, rtol = spec.get("atol", 0.0), spec.get("rtol", 0.0)
    for name, value in (("atol", atol), ("rtol", rtol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ToleranceError(f"{METADATA_KEY}.{name} must be a number >= 0, got {value!r}")
    if not isinstance(spec.get("reason"), str) or not spec["reason"].strip():
        raise ToleranceError(
            f"{METADATA_KEY} needs a 'reason': why this cell's numbers may differ, and the measured spread"
        )
    return {
        "atol": float(atol),
        "rtol": float(rtol),
        "integers": spec.get("integers", False),
        "spread": spec.get("spread", "seeds"),
        "reason": spec["reason"],
    }


def compare_numbers(
    stored: list[str], fresh: list[str], atol: float, rtol: float = 0.0, integers: bool = False
) -> list[str]:
    """Problems between two equally long lists of numbers; an empty list means they agree.

    Decimals must satisfy ``|fresh - stored| <= atol + rtol * |stored|``; integers must be equal,
    unless ``integers`` is true, when they are compared like decimals.
    """
    problems = []
    for i, (a, b) in enumerate(zip(stored, fresh, strict=True)):
        if not (integers or is_decimal(a) or is_decimal(b)):
            if _value(a) != _value(b):
                problems.append(f"number {i + 1}: integer {b} differs from the stored {a} (integers must match)")
            continue
        x, y = _value(a), _value(b)
        if math.isnan(x) and math.isnan(y):
            continue
        limit = atol + rtol * abs(x)
        if not abs(y - x) <= limit:
            problems.append(
                f"number {i + 1}: {b} differs from the stored {a} by {abs(y - x):.4g}, more than the tolerance "
                f"{limit:.4g}"
            )
    return problems


def deviation(stored: list[str], fresh: list[str], integers: bool = False) -> dict:
    """The largest absolute and relative difference between two lists of decimal numbers (and of
    whole numbers too, with ``integers``, as for a cell that declares ``"integers": true``).

    Lists of different lengths (a cell that printed more or less than it stored) have no
    deviation to measure: ``max_abs`` and ``max_rel`` are then ``None`` and ``integers_equal`` false.
    """
    if len(stored) != len(fresh):
        return {"max_abs": None, "max_rel": None, "integers_equal": False}
    largest_abs = largest_rel = 0.0
    integers_equal = True
    for a, b in zip(stored, fresh, strict=True):
        if not (is_decimal(a) or is_decimal(b)):
            integers_equal &= _value(a) == _value(b)
            if not integers:
                continue
        x, y = _value(a), _value(b)
        if math.isnan(x) or math.isnan(y):
            continue
        largest_abs = max(largest_abs, abs(y - x))
        if x != 0:
            largest_rel = max(largest_rel, abs(y - x) / abs(x))
    return {"max_abs": largest_abs, "max_rel": largest_rel, "integers_equal": integers_equal}


def _strings(outputs, skip) -> dict[str, list[str]]:
    """nbval's view of a cell's outputs: for each key (stream name or MIME type), its texts in order."""
    flat: dict[str, list[str]] = {}
    for out in outputs:
        if out.get("output_type") == "stream":
            flat.setdefault(out["name"], []).append(out["text"])
            continue
        data = out.get("data", {})
        keys = [k for k in data if k not in skip]
        if "text/html" in keys and "text/plain" in keys:
            keys.remove("text/plain")  # the same table twice: compare the form the page shows
        for key in keys:
            if isinstance(data[key], str):
                flat.setdefault(key, []).append(data[key])
    return flat


def _masked(outputs, skip, sanitize):
    """Copies of ``outputs`` whose texts are sanitized, with numbers masked, and the numbers."""
    import copy

    masked, numbers = [], []
    for out in outputs:
        out = copy.deepcopy(out)
        if out.get("output_type") == "stream":
            skeleton, found = split_numbers(sanitize(out["text"]))
            out["text"] = skeleton
            numbers.extend(found)
        else:
            data = out.get("data", {})
            if "text/html" in data and "text/plain" in data and "text/plain" not in skip:
                del data["text/plain"]
            for key in list(data):
                if key in skip or not isinstance(data[key], str):
                    continue
                skeleton, found = split_numbers(sanitize(data[key]))
                data[key] = skeleton
                numbers.extend(found)
        masked.append(out)
    return masked, numbers


def pytest_addoption(parser):
    parser.getgroup("nbval").addoption(
        "--nbval-tolerance-report",
        metavar="FILE",
        default=None,
        help="append, for every compared notebook cell, its largest numeric deviation as a JSON line",
    )


def pytest_configure(config):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: nothing to extend
        return
    if getattr(IPyNbCell.compare_outputs, "_tolerant", False):
        return
    exact = IPyNbCell.compare_outputs
    report = config.getoption("--nbval-tolerance-report", default=None)

    def compare_outputs(self, test, ref, skip_compare=None):
        skip = skip_compare or self.parent.skip_compare
        try:
            tolerance = read_tolerance(self.cell.metadata)
        except ToleranceError as error:
            self.comparison_traceback = [f"cell {self.cell_num}: {error}"]
            return False
        test_masked, test_numbers = _masked(test, skip, self.sanitize)
        ref_masked, ref_numbers = _masked(ref, skip, self.sanitize)
        if report:
            record = {
                "notebook": Path(str(self.fspath)).name,
                "cell": self.cell_num,
                "tolerance": tolerance,
                "text_equal": _strings(test_masked, skip) == _strings(ref_masked, skip)
                and len(test_numbers) == len(ref_numbers),
                "numbers": len(ref_numbers),
            }
            record.update(deviation(ref_numbers, test_numbers, bool(tolerance and tolerance["integers"])))
            with open(report, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        if tolerance is None:
            return exact(self, test, ref, skip_compare)
        # The words and integers: nbval's own comparison, on the outputs with the numbers masked.
        if not exact(self, test_masked, ref_masked, skip_compare):
            self.comparison_traceback.insert(
                0, "text differs (numbers masked as \u27e8n\u27e9; words and layout must match exactly):"
            )
            return False
        problems = compare_numbers(
            ref_numbers, test_numbers, tolerance["atol"], tolerance["rtol"], tolerance["integers"]
        )
        if problems:
            self.comparison_traceback = [
                f"numbers outside the declared tolerance (atol {tolerance['atol']}, rtol {tolerance['rtol']}; "
                f"reason: {tolerance['reason']}):",
                *problems,
            ]
            return False
        return True

    compare_outputs._tolerant = True
    compare_outputs._exact = exact
    IPyNbCell.compare_outputs = compare_outputs


def pytest_unconfigure(config):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:
        return
    exact = getattr(IPyNbCell.compare_outputs, "_exact", None)
    if exact is not None:
        IPyNbCell.compare_outputs = exact


@pytest.hookimpl(trylast=True)
def pytest_report_header(config):
    if config.getoption("--nbval", default=False) or config.getoption("--nbval-lax", default=False):
        return "nbval-tolerance: decimal numbers compared within each cell's declared 'nbval-tolerance'"
    return None
