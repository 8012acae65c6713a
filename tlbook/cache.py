"""The cache: what tlbook computes once and keeps, by one rule.

The source-pretrained backbone, extracted features, a study's results, the converted
EfficientNet-Lite0 weights, the photos and the image folders all go through :func:`cached`:

- **Keyed on what made it.** An entry is named by a hash of its kind, its settings, the code
  that computes it (:func:`tlbook.config.code_digest`: the parse tree, so a comment or docstring
  edit does not recompute), tlbook's version and ``TLBOOK_SEED_OFFSET``.
- **Checked on every read.** Beside the entry (a file or a folder) lies a side-car
  ``<key>.sidecar.json`` with the settings it was computed from and the SHA-256 of its bytes (for
  a folder, of its folders' and files' names and its files' bytes). A read checks both; an entry that is missing its
  side-car, damaged, truncated, emptied, or that holds another key's settings (a foreign entry
  copied in) is computed again, with a warning that names it.
- **Computed once across processes.** Two notebooks or test workers that need the same entry at
  once take :func:`tlbook.config.cache_lock`; the second waits and reads what the first wrote.
- **Written whole or not at all.** The value is written under a temporary name (a file, or a
  folder) and renamed into place, its side-car last (:func:`tlbook.files.atomic_write_text`), so
  an interrupted write leaves no entry that looks complete. A process killed mid-write (a kernel
  restart sends SIGTERM, then SIGKILL) can leave a temporary file; the next write of any entry of
  that kind removes it (unless that entry is being written at that moment), so such garbage does
  not last. A failed computation leaves the old entry as it was.

Entries live in ``<cache>/<kind>/`` (:func:`tlbook.config.cache_dir`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tlbook import config
from tlbook.config import COMPUTING_MODULES, cache_dir, cache_lock, seed_offset
from tlbook.files import atomic_write_text, file_digest


@dataclasses.dataclass(frozen=True)
class Entry:
    """Where one cache entry lives and what it was computed from.

    Attributes:
        kind: the folder of the cache it lives in (``"features"``, ``"source"``, a study's name, ...).
        key: 12 hexadecimal digits of the SHA-256 of ``settings``.
        path: the entry itself, a file (``<key><suffix>``) or a folder (``<key>``).
        settings: everything the key was computed from (the caller's settings, the code's digest,
            tlbook's version and the seed offset); the side-car stores it and every read compares it.
    """

    kind: str
    key: str
    path: Path
    settings: dict

    @property
    def is_folder(self) -> bool:
        """Whether the entry is a folder (it was named without a suffix)."""
        return self.path.name == self.key

    @property
    def sidecar(self) -> Path:
        """The side-car JSON file beside the entry: ``<kind>/<key>.sidecar.json``."""
        return self.path.parent / f"{self.key}.sidecar.json"


def entry(kind: str, settings: Mapping, *, code: tuple[str, ...] = COMPUTING_MODULES, suffix: str = "") -> Entry:
    """The :class:`Entry` for ``settings`` (nothing is read or written).

    Args:
        kind: a plain folder name (letters, digits, ``-`` and ``_``).
        settings: JSON-serialisable values that decide the result (another value: another entry).
        code: the tlbook modules whose code computes it (:func:`tlbook.config.code_digest`); ``()``
            for none.
        suffix: the entry file's ending (``".json"``, ``".npy"``, ``".keras"``); ``""`` for a folder.

    Raises:
        ValueError: a kind that is not a plain folder name.
        TypeError: settings that JSON cannot hold.
    """
    import tlbook

    if not kind or not all(c.isalnum() or c in "-_" for c in kind):
        raise ValueError(f"cache kind must be a plain folder name (letters, digits, - and _), got {kind!r}")
    full = {
        "kind": kind,
        "settings": json.loads(
            json.dumps(dict(settings), sort_keys=True, default=_plain)
        ),  # as the side-car holds them
        "code": config.code_digest(code) if code else None,  # looked up here: a test can patch it
        "tlbook": tlbook.__version__,
        "seed_offset": seed_offset(),  # TLBOOK_SEED_OFFSET perturbs every run: its own entries
    }
    key = hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()[:12]
    return Entry(kind, key, cache_dir() / kind / f"{key}{suffix}", full)


def _plain(value):
    """NumPy numbers and arrays in settings as the Python numbers and lists JSON holds."""
    import numpy as np

    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"a cache setting must be JSON data (numbers, strings, lists, dicts), got {type(value).__name__}")


#: Files an operating system drops into folders it shows (Finder, Explorer); a folder entry's digest
#: leaves them out, so browsing the cache does not invalidate it.
OS_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")


def tree_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, or of a folder: the relative names of its folders and files and
    its files' bytes, in sorted order (hexadecimal), so an added empty folder (to Keras, a new class)
    changes it. :data:`OS_FILES` are left out; a link inside a folder is refused.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: a folder that holds a symbolic link or something other than files and folders.
    """
    path = Path(path)
    if not path.is_dir():
        return file_digest(path)
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        for name in sorted(dirs + files):
            item = Path(root) / name
            if item.is_symlink() or not (item.is_file() or item.is_dir()):
                raise ValueError(f"{str(item)!r} is a link or a special file; a cache entry holds files only")
        for name in dirs:
            relative = (Path(root) / name).relative_to(path).as_posix()
            digest.update(b"dir\0" + relative.encode("utf-8", "surrogateescape") + b"\0")
        for name in sorted(f for f in files if f not in OS_FILES):
            item = Path(root) / name
            digest.update(item.relative_to(path).as_posix().encode("utf-8", "surrogateescape") + b"\0")
            digest.update(file_digest(item).encode() + b"\0")
    return digest.hexdigest()


def verified(entry: Entry) -> dict | None:
    """The side-car of an intact entry, else ``None`` (never an exception).

    Intact: the entry and its side-car exist, the side-car parses, holds exactly ``entry.settings``
    and the digest of the entry's bytes (:func:`tree_digest`).
    """
    try:
        meta = json.loads(entry.sidecar.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("settings") != entry.settings:
            return None
        if not entry.path.exists() or meta.get("sha256") != tree_digest(entry.path):
            return None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return meta


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _remove_leftovers(entry: Entry) -> None:
    """Delete what an earlier, killed write of this entry left: its temporary files and folders
    (``.<name>.*``), and an entry or side-car that did not verify. The caller holds the lock."""
    for name in (entry.path.name, entry.sidecar.name):
        for leftover in entry.path.parent.glob(f".{name}.*"):
            _remove(leftover)
    for stale in (entry.sidecar, entry.path):
        if stale.exists() or stale.is_symlink():
            _remove(stale)


def _sweep(entry: Entry) -> None:
    """Delete the temporary files and folders that killed writes of *other* entries of this kind
    left (``.<key>...``), each under its entry's lock, taken without waiting: a write in progress
    holds it, and its temporary file is kept. So garbage lasts only until the next write of the kind."""
    from filelock import Timeout

    for leftover in entry.path.parent.glob(".*"):
        key = leftover.name[1:13]
        if key == entry.key or len(key) != 12 or not all(c in "0123456789abcdef" for c in key):
            continue
        lock = cache_lock(f"{entry.kind}-{key}")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # that entry is being written right now
        try:
            if leftover.exists() or leftover.is_symlink():
                _remove(leftover)
        finally:
            lock.release()


def _write(entry: Entry, value, write: Callable[[Any, Path], None]) -> None:
    """``write(value, tmp)`` to a temporary file or (for a suffix-less entry) an empty folder,
    renamed into place; the side-car with its digest last."""
    folder = entry.path.parent
    if entry.is_folder:
        name = tempfile.mkdtemp(dir=folder, prefix=f".{entry.path.name}.")
    else:  # the same ending: Keras writes only to names ending in .keras or .weights.h5
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{entry.path.name}.", suffix=entry.path.name[len(entry.key) :])
        os.close(fd)
    tmp = Path(name)
    try:
        write(value, tmp)
        digest = tree_digest(tmp)
        os.replace(tmp, entry.path)
    except BaseException:
        _remove(tmp)
        raise
    meta = {"settings": entry.settings, "sha256": digest}
    atomic_write_text(entry.sidecar, json.dumps(meta, indent=1, sort_keys=True))


def cached(
    kind: str,
    settings: Mapping,
    compute: Callable[[], Any],
    *,
    write: Callable[[Any, Path], None],
    read: Callable[[Path], Any],
    code: tuple[str, ...] = COMPUTING_MODULES,
    suffix: str = "",
    use_cache: bool = True,
):
    """``compute()``'s value, computed once per ``settings`` and kept in the cache.

    Under the entry's lock (:func:`tlbook.config.cache_lock`): an intact entry (:func:`verified`) is
    read with ``read(path)``; otherwise (none yet, damaged, truncated, foreign, or ``read`` raises
    ``OSError`` or ``ValueError`` on it) ``compute()`` runs, then the old entry and any leftovers
    are removed and ``write(value, tmp)`` stores it (``tmp`` is an empty file, or an empty folder
    when ``suffix`` is ``""``); the entry is read back, so every call returns what ``read`` makes of
    the stored entry. A value that cannot be read back is not kept (``ValueError``).

    Args:
        kind, settings, code, suffix: name the entry (:func:`entry`).
        compute: makes the value (called with no arguments, only when needed).
        write: ``write(value, path)`` writes the value at ``path``.
        read: ``read(path)`` turns a stored entry back into the value.
        use_cache: ``False`` computes and stores again even when an intact entry exists.

    An exception from ``compute`` or ``write`` propagates as it is; the cache is then left
    without the entry (and without a temporary file).
    """
    item = entry(kind, settings, code=code, suffix=suffix)
    item.path.parent.mkdir(parents=True, exist_ok=True)
    with cache_lock(f"{kind}-{item.key}"):
        if use_cache and verified(item) is not None:
            try:
                return read(item.path)
            except (OSError, ValueError) as exc:
                warnings.warn(
                    f"cache entry {str(item.path)!r} cannot be read ({exc}); computing it again",
                    RuntimeWarning,
                    stacklevel=2,
                )
        elif use_cache and (item.path.exists() or item.sidecar.exists()):
            warnings.warn(
                f"cache entry {str(item.path)!r} is incomplete, damaged or not this entry's; computing it again",
                RuntimeWarning,
                stacklevel=2,
            )
        value = compute()  # a failure here leaves whatever entry there was as it was
        _remove_leftovers(item)
        _sweep(item)
        _write(item, value, write)
        try:
            return read(item.path)
        except (OSError, ValueError) as exc:
            _remove_leftovers(item)  # not kept: every later call would compute it again and fail
            raise ValueError(
                f"cache entry {str(item.path)!r} was written but cannot be read back ({exc}); nothing was kept"
            ) from exc


def write_json(value, path: Path) -> None:
    """A :func:`cached` writer for JSON values (a study's results)."""
    path.write_text(json.dumps(value), encoding="utf-8")


def read_json(path: Path):
    """A :func:`cached` reader for :func:`write_json` entries."""
    return json.loads(path.read_text(encoding="utf-8"))


#: What tlbook wrote into its cache before this module (by folder; ``""`` is the cache itself), as
#: name patterns: :func:`prune` removes these, and nothing else that is not an entry of this module.
LEGACY = {
    "": ("source-small_cnn-*.keras", "source-small_cnn-*.json"),
    "results": ("*-????????????.json",),
    "datasets": ("flowers-*",),
    "folders": ("digits-*", "photos-*"),
    "photos": ("tuxpaint-*.npz",),
    "features": ("????????????????.npy",),
    "weights": ("efficientnet_lite0_imagenet-*",),
}


@dataclasses.dataclass(frozen=True)
class Pruned:
    """What :func:`prune` removed (or, with ``dry_run``, would remove).

    Attributes:
        removed: the removed files and folders, relative to the cache, sorted.
        bytes: the bytes they held.
    """

    removed: list[str]
    bytes: int


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    return sum((Path(root) / name).lstat().st_size for root, _, files in os.walk(path) for name in files)


def _is_key(text: str) -> bool:
    return len(text) == 12 and all(c in "0123456789abcdef" for c in text)


def _prunable(folder: Path, everything: bool, *, top: bool = False) -> list[tuple[Path, str | None]]:
    """``(path, key)`` of what :func:`prune` removes in one folder of the cache; ``key`` names the
    entry whose lock to take (``None``: no entry of this tlbook, no lock needed). Names that are
    neither this module's nor :data:`LEGACY` are left alone: not tlbook's."""
    import fnmatch

    items = sorted(folder.iterdir())
    sidecars = {p.name[:12] for p in items if p.name.endswith(".sidecar.json") and _is_key(p.name[:12])}
    entries = {p.name[:12] for p in items if not p.name.endswith(".sidecar.json") and _is_key(p.name[:12])}
    legacy = LEGACY["" if top else folder.name] if top or folder.name in LEGACY else ()
    found = []
    for item in items:
        key = item.name[:12]
        if item.name.startswith(".") and _is_key(item.name[1:13]):
            found.append((item, item.name[1:13]))  # a temporary file or folder of a write
        elif _is_key(key) and key in sidecars and key in entries:
            if everything:
                found.append((item, key))
        elif _is_key(key) and (key in sidecars or key in entries) and (key in sidecars) != (key in entries):
            found.append((item, key))  # half an entry
        elif any(fnmatch.fnmatchcase(item.name, pattern) for pattern in legacy):
            found.append((item, None))  # what an earlier tlbook wrote
    return found


def prune(*, everything: bool = False, dry_run: bool = False) -> Pruned:
    """Remove from the cache what no current tlbook call reads: what an earlier version of tlbook
    wrote before this module (:data:`LEGACY`), half entries (an entry without its side-car or the
    reverse) and the temporary files of killed writes. With ``everything``, every entry too: each is
    computed again when a chapter needs it. The downloads, the locks and any file whose name is not
    tlbook's stay; an entry being written right now (its lock is held) is left alone.
    ``dry_run`` removes nothing, takes no lock and returns what would go (``python -m tlbook doctor``
    reports it; an entry being written at that moment may be listed).
    ``python -m tlbook prune [--all] [--dry-run]``.

    Returns:
        :class:`Pruned`.
    """
    from filelock import Timeout

    root = cache_dir()
    removed, size = [], 0
    folders = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name != "locks")
    for folder in folders:
        if folder.name == "downloads":
            continue
        for item, key in _prunable(folder, everything, top=folder == root):
            if item.is_dir() and folder == root:
                continue  # the kind folders themselves
            kind = folder.name
            lock = cache_lock(f"{kind}-{key}") if key and not dry_run else None  # a dry run only looks
            if lock is not None:
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    continue  # being written now
            try:
                if item.exists() or item.is_symlink():
                    size += _size(item)
                    if not dry_run:
                        _remove(item)
                    removed.append(item.relative_to(root).as_posix())
            finally:
                if lock is not None:
                    lock.release()
        if not dry_run and folder != root and folder.name in LEGACY and not any(folder.iterdir()):
            folder.rmdir()  # an earlier tlbook's folder, now empty
    return Pruned(sorted(removed), size)
