"""The Makefile's lists of files: a renamed test module or chapter must not drop out of `make test`."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_file_the_makefile_names_exists():
    # pytest given a missing path collects nothing at all: the whole combined run would be lost
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w/*])((?:tests|book)/[\w/.-]+\.(?:py|ipynb))\b", text))
    assert named, "the pattern found no file in the Makefile"
    assert {"tests/test_transfer.py", "book/ch07_does_it_pay_off.ipynb"} <= named
    assert sorted(name for name in named if not (ROOT / name).is_file()) == []
