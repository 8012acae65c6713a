"""tlbook.files: atomic writes, digests and verified reads."""

import hashlib

import pytest

from tlbook import files


def test_atomic_write_text_writes_and_replaces_leaving_no_temporary_file(tmp_path):
    target = tmp_path / "notes.txt"
    files.atomic_write_text(target, "first\r\n")
    files.atomic_write_text(target, "second\n")
    assert target.read_bytes() == b"second\n"  # newlines kept as given
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_failure_inside_atomic_path_leaves_the_old_file_and_nothing_else(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="interrupted"), files.atomic_path(target, suffix=".keras") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".keras") and tmp.exists()
        tmp.write_text("half of the new")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_atomic_path_needs_the_folder_to_exist(tmp_path):
    with pytest.raises(FileNotFoundError), files.atomic_path(tmp_path / "missing" / "x.txt"):
        pass


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_file_digest_is_hashlibs(tmp_path, algorithm):
    data = bytes(range(256)) * 5000  # more than one 1 MiB block
    (tmp_path / "f").write_bytes(data)
    assert files.file_digest(tmp_path / "f", algorithm) == hashlib.new(algorithm, data).hexdigest()
    with pytest.raises(ValueError):
        files.file_digest(tmp_path / "f", "no-such-hash")


def test_readme_and_the_package_docstring_list_every_module():
    import re
    from pathlib import Path

    import tlbook

    root = Path(__file__).resolve().parents[1]
    modules = {p.stem for p in (root / "tlbook").glob("*.py") if not p.stem.startswith("_")}
    modules |= {p.parent.name for p in (root / "tlbook").glob("*/__init__.py")}  # the sub-packages
    layout = (root / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = {name for cell in re.findall(r"^\| (`[^|]+) \|", layout, re.M) for name in re.findall(r"`(\w+)`", cell)}
    assert modules <= listed, f"README's layout does not list {sorted(modules - listed)}"
    assert modules <= set(re.findall(r":mod:`tlbook\.(\w+)`", tlbook.__doc__))
