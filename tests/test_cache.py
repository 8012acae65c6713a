"""The one cache helper: computed once, keyed on settings and code, checked on every read."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tlbook import cache


def _counting(value):
    calls = []

    def compute():
        calls.append(1)
        return value if not callable(value) else value(len(calls))

    return compute, calls


def _json(kind, settings, compute, **kwargs):
    return cache.cached(kind, settings, compute, write=cache.write_json, read=cache.read_json, suffix=".json", **kwargs)


def test_an_entry_is_computed_once_per_settings_and_read_back(tmp_cache):
    compute, calls = _counting(lambda n: {"n": n, "pair": (1, 2)})
    first = _json("demo", {"a": 1}, compute)
    assert first == {"n": 1, "pair": [1, 2]}  # what the stored entry holds, also on the first call
    assert _json("demo", {"a": 1}, compute) == first and len(calls) == 1
    assert _json("demo", {"a": 2}, compute)["n"] == 2  # other settings: another entry
    assert _json("other", {"a": 1}, compute)["n"] == 3  # another kind too
    assert _json("demo", {"a": 1}, compute, use_cache=False)["n"] == 4
    assert _json("demo", {"a": 1}, compute)["n"] == 4 and len(calls) == 4
    item = cache.entry("demo", {"a": 1}, suffix=".json")
    assert item.path == tmp_cache / "demo" / f"{item.key}.json" and len(item.key) == 12
    meta = json.loads(item.sidecar.read_text())
    assert meta["settings"] == item.settings and meta["sha256"] == cache.tree_digest(item.path)


def test_the_key_follows_the_code_that_computes_it(tmp_cache, monkeypatch):
    from tlbook import config

    a = cache.entry("demo", {"a": 1})
    assert cache.entry("demo", {"a": 1}).key == a.key
    assert cache.entry("demo", {"a": 1}, code=("data",)).key != a.key  # other modules, other digest
    assert cache.entry("demo", {"a": 1}, code=()).settings["code"] is None
    monkeypatch.setattr(config, "code_digest", lambda modules=config.COMPUTING_MODULES: "0" * 12)
    assert cache.entry("demo", {"a": 1}).key != a.key  # as if a computing module had changed
    monkeypatch.setenv("TLBOOK_SEED_OFFSET", "7")
    assert cache.entry("demo", {"a": 1}).settings["seed_offset"] == 7


@pytest.mark.parametrize(
    "damage",
    [
        "truncated",
        "emptied",
        "flipped byte",
        "sidecar missing",
        "sidecar garbage",
        "foreign entry",
        "entry missing",
    ],
)
def test_a_damaged_truncated_empty_or_foreign_entry_is_computed_again(tmp_cache, damage):
    compute, calls = _counting(lambda n: {"n": n, "labels": ["cat", "dog"]})
    _json("demo", {"a": 1}, compute)
    item = cache.entry("demo", {"a": 1}, suffix=".json")
    other = cache.entry("demo", {"a": 2}, suffix=".json")
    data = item.path.read_bytes()
    if damage == "truncated":
        item.path.write_bytes(data[: len(data) // 2])
    elif damage == "emptied":
        item.path.write_bytes(b"")
    elif damage == "flipped byte":  # still valid JSON: only the digest can tell
        item.path.write_bytes(data.replace(b'"cat", "dog"', b'"dog", "cat"'))
    elif damage == "sidecar missing":
        item.sidecar.unlink()
    elif damage == "sidecar garbage":
        item.sidecar.write_text("{not json")
    elif damage == "foreign entry":  # another key's entry and side-car copied over this one
        _json("demo", {"a": 2}, compute)
        item.path.write_bytes(other.path.read_bytes())
        item.sidecar.write_bytes(other.sidecar.read_bytes())
    elif damage == "entry missing":
        item.path.unlink()
    before = len(calls)
    assert cache.verified(item) is None
    with pytest.warns(RuntimeWarning, match="computing it again"):
        again = _json("demo", {"a": 1}, compute)
    assert len(calls) == before + 1 and again["labels"] == ["cat", "dog"]
    assert cache.verified(item) is not None


def test_a_reader_that_fails_on_an_intact_entry_recomputes(tmp_cache):
    compute, calls = _counting(lambda n: n)
    state = {"fail": False}

    def read(path):
        if state["fail"]:
            state["fail"] = False
            raise ValueError("cannot parse")
        return cache.read_json(path)

    kwargs = {"write": cache.write_json, "read": read, "suffix": ".json"}
    assert cache.cached("demo", {}, compute, **kwargs) == 1
    state["fail"] = True
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        assert cache.cached("demo", {}, compute, **kwargs) == 2


def test_a_failed_compute_or_write_leaves_no_entry_and_no_temporary_file(tmp_cache):
    def boom():
        raise KeyboardInterrupt  # Ctrl-C while computing

    with pytest.raises(KeyboardInterrupt):
        _json("demo", {"a": 1}, boom)

    def bad_write(value, path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        cache.cached("demo", {"a": 1}, lambda: 1, write=bad_write, read=cache.read_json, suffix=".json")
    assert sorted(os.listdir(tmp_cache / "demo")) == []


def test_leftovers_of_a_killed_write_are_removed_by_the_next_write(tmp_cache):
    item = cache.entry("demo", {"a": 1}, suffix=".npy")
    item.path.parent.mkdir(parents=True)
    leftover = item.path.parent / f".{item.path.name}.abc123.npy"
    leftover.write_bytes(b"half a file")  # as a SIGKILL mid-write leaves it
    unrelated = item.path.parent / "notes.txt"
    unrelated.write_text("keep me")
    value = cache.cached(
        "demo",
        {"a": 1},
        lambda: np.arange(3.0),
        write=lambda value, path: np.save(path, value),
        read=np.load,
        suffix=".npy",
    )
    assert value.tolist() == [0.0, 1.0, 2.0]
    assert not leftover.exists() and unrelated.exists()
    assert sorted(p.name for p in item.path.parent.iterdir()) == sorted(
        [item.path.name, item.sidecar.name, "notes.txt"]
    )


def _write_folder(value, path):
    for name, text in value.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)


def test_a_folder_entry_is_checked_file_by_file(tmp_cache):
    compute, calls = _counting({"train/a/1.txt": "one", "test/a/2.txt": "two"})
    folder = cache.cached("folders", {"a": 1}, compute, write=_write_folder, read=lambda p: p, code=())
    assert folder.is_dir() and (folder / "train" / "a" / "1.txt").read_text() == "one"
    assert cache.cached("folders", {"a": 1}, compute, write=_write_folder, read=lambda p: p, code=()) == folder
    assert len(calls) == 1
    for damage in ("rename", "delete", "edit", "add"):
        if damage == "rename":
            (folder / "train" / "a").rename(folder / "train" / "b")  # a class renamed: every label wrong
        elif damage == "delete":
            (folder / "test" / "a" / "2.txt").unlink()
        elif damage == "edit":
            (folder / "train" / "a" / "1.txt").write_text("uno")
        else:
            (folder / "extra.txt").write_text("x")
        with pytest.warns(RuntimeWarning, match="computing it again"):
            cache.cached("folders", {"a": 1}, compute, write=_write_folder, read=lambda p: p, code=())
        assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*.txt")) == ["test/a/2.txt", "train/a/1.txt"]
    assert len(calls) == 5


def test_tree_digest_refuses_links_and_names_them(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("x")
    first = cache.tree_digest(tmp_path / "a")
    assert first == cache.tree_digest(tmp_path / "a") and first != cache.tree_digest(tmp_path / "a" / "f")
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a")
    with pytest.raises(ValueError, match="loop"):
        cache.tree_digest(tmp_path / "a")
    with pytest.raises(FileNotFoundError):
        cache.tree_digest(tmp_path / "nothing")


def test_bad_kind_or_settings_are_refused():
    with pytest.raises(ValueError, match="plain folder name"):
        cache.entry("../escape", {})
    with pytest.raises(TypeError):
        cache.entry("demo", {"f": object()})


RACE = """
import os, sys, time, warnings
sys.modules.update(tensorflow=None, keras=None)  # tlbook imports without them, in a fraction of a second
warnings.filterwarnings("ignore", "tlbook could not import TensorFlow", RuntimeWarning)
from tlbook import cache

def compute():
    with open(os.environ["RACE_LOG"], "a") as fh:
        fh.write(str(os.getpid()) + "\\n")
    time.sleep(2)  # the other process asks meanwhile
    return {"pid": os.getpid()}

print(cache.cached("race", {"a": 1}, compute, write=cache.write_json, read=cache.read_json, suffix=".json")["pid"])
"""


def test_two_processes_compute_an_entry_once(tmp_cache, tmp_path):
    log = tmp_path / "computed.txt"
    env = {**os.environ, "TLBOOK_CACHE": str(tmp_cache), "RACE_LOG": str(log)}
    runs = [subprocess.Popen([sys.executable, "-c", RACE], env=env, stdout=subprocess.PIPE, text=True) for _ in "ab"]
    pids = {run.communicate(timeout=120)[0].strip() for run in runs}
    assert all(run.returncode == 0 for run in runs)
    assert len(log.read_text().splitlines()) == 1 and len(pids) == 1  # computed once, read by the other


def test_leftovers_of_other_entries_go_unless_their_write_is_in_progress(tmp_cache):
    from tlbook.config import cache_lock

    folder = tmp_cache / "demo"
    folder.mkdir(parents=True)
    dead = folder / ".0123456789ab.json.k1ll3d.json"  # a write killed long ago
    busy = folder / ".ba9876543210.json.w0rk1n.json"  # a write going on in another process
    for path in (dead, busy):
        path.write_text("half")
    with cache_lock("demo-ba9876543210"):
        _json("demo", {"a": 1}, lambda: 1)
    assert not dead.exists() and busy.exists()
    _json("demo", {"a": 2}, lambda: 2)  # the next write, with that write over: nothing is left
    assert not busy.exists()


def test_a_failed_recompute_keeps_the_entry_there_was(tmp_cache):
    assert _json("demo", {"a": 1}, lambda: {"v": 1}) == {"v": 1}

    def boom():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        _json("demo", {"a": 1}, boom, use_cache=False)  # a retrain that fails
    assert cache.verified(cache.entry("demo", {"a": 1}, suffix=".json")) is not None
    assert _json("demo", {"a": 1}, boom) == {"v": 1}  # still there, not computed


def test_a_value_that_cannot_be_read_back_is_not_kept(tmp_cache):
    def unreadable(path):
        raise ValueError("bad format")

    with pytest.raises(ValueError, match="cannot be read back .*bad format.*nothing was kept"):
        cache.cached("demo", {}, lambda: 1, write=cache.write_json, read=unreadable, suffix=".json")
    assert list((tmp_cache / "demo").iterdir()) == []


def test_numpy_numbers_in_settings_are_the_numbers_they_hold(tmp_cache):
    plain = cache.entry("demo", {"seeds": [0, 1, 2], "rate": 0.5})
    assert cache.entry("demo", {"seeds": np.arange(3), "rate": np.float64(0.5)}).key == plain.key
    assert cache.entry("demo", {"seeds": [np.int64(0), 1, 2], "rate": 0.5}).key == plain.key


def test_a_folder_digest_sees_empty_folders_and_ignores_what_file_browsers_drop(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("x")
    first = cache.tree_digest(tmp_path)
    (tmp_path / "a" / ".DS_Store").write_bytes(b"Finder")
    (tmp_path / "Thumbs.db").write_bytes(b"Explorer")
    assert cache.tree_digest(tmp_path) == first
    (tmp_path / "b").mkdir()  # an empty class folder
    assert cache.tree_digest(tmp_path) != first


def test_a_killed_folder_write_leaves_nothing_behind_once_the_entry_is_written(tmp_cache):
    item = cache.entry("folders", {"a": 1}, code=())
    item.path.parent.mkdir(parents=True)
    half = item.path.parent / f".{item.key}.x7k2"  # the temporary folder a SIGKILL left
    (half / "train").mkdir(parents=True)
    (half / "train" / "0.png").write_bytes(b"half")
    folder = cache.cached("folders", {"a": 1}, lambda: {"train/1.txt": "one"}, write=_write_folder, read=Path, code=())
    assert sorted(p.name for p in folder.parent.iterdir()) == sorted([item.path.name, item.sidecar.name])


def test_prune_removes_what_an_earlier_tlbook_left_and_half_entries_and_nothing_else(tmp_cache, capsys):
    from tlbook.__main__ import main

    _json("label-budget", {"a": 1}, lambda: {"v": 1})  # an entry of this tlbook
    kept = cache.entry("label-budget", {"a": 1}, suffix=".json")
    half = cache.entry("label-budget", {"a": 2}, suffix=".json")
    half.sidecar.write_text("{}")  # its entry never written
    leftover = kept.path.parent / f".{half.key}.json.k1ll3d.json"
    leftover.write_text("half")
    old = {
        "source-small_cnn-0123456789ab.keras": b"model",
        "source-small_cnn-0123456789ab.json": b"{}",
        "results/label-budget-0123456789ab.json": b"{}",
        "features/0123456789abcdef.npy": b"npy",
        "folders/digits-32-12-24/train/0.png": b"png",
        "photos/tuxpaint-2022.06.04-1-0123456789ab.npz": b"npz",
    }
    mine = {"downloads/tuxpaint.deb": b"deb", "notes.txt": b"a reader's", "photos/holiday.jpg": b"jpg"}
    for name, content in {**old, **mine}.items():
        (tmp_cache / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_cache / name).write_bytes(content)
    pruned = cache.prune()
    expected = [
        "features/0123456789abcdef.npy",
        "folders/digits-32-12-24",
        f"label-budget/.{half.key}.json.k1ll3d.json",
        f"label-budget/{half.key}.sidecar.json",
        "photos/tuxpaint-2022.06.04-1-0123456789ab.npz",
        "results/label-budget-0123456789ab.json",
        "source-small_cnn-0123456789ab.json",
        "source-small_cnn-0123456789ab.keras",
    ]
    assert pruned.removed == expected and pruned.bytes == sum(map(len, old.values())) + 2 + 4
    assert all((tmp_cache / name).read_bytes() == content for name, content in mine.items())
    assert cache.verified(kept) is not None and not (tmp_cache / "results").exists()
    assert main(["prune", "--all"]) == 0
    out = capsys.readouterr().out
    assert f"removed label-budget/{kept.key}.json" in out and "2 removed" in out
    assert all((tmp_cache / name).read_bytes() == content for name, content in mine.items())
