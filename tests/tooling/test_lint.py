"""The linter runs in the test command: ruff, configured in pyproject.toml ([tool.ruff])."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = ["tlbook", "tests", "tools", "_ext"]


def ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff is not installed; it is in requirements.txt: pip install -r requirements.txt")
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_code_and_the_chapters_pass_the_linter():
    done = ruff("check", "--no-cache", *CODE, "book")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_code_is_formatted_as_ruff_formats_it():
    done = ruff("format", "--check", "--no-cache", *CODE)
    assert done.returncode == 0, "run `.venv/bin/ruff format " + " ".join(CODE) + "`:\n" + done.stdout + done.stderr


def test_the_linter_fails_on_a_broken_file(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import os\n\n\ndef f(items):\n    return [x for x in items if x == undefined_name]\n")
    done = ruff("check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(broken))
    assert done.returncode == 1
    assert "F401" in done.stdout and "F821" in done.stdout, done.stdout
