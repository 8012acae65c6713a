"""Files written whole or not at all, and files checked against their digest.

Every file tlbook keeps (a pretrained backbone, a study's results, a download) is written under a
temporary name in the same folder and renamed over the target when complete (``os.replace``, atomic
on one file system): a reader, another process or an interrupted run sees the old file or the new
one, never half of one, and an error leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces ``path`` when the ``with`` block succeeds.

    Write the file at the yielded path (it exists, empty). When the block ends without an
    exception, it is renamed to ``path``; when the block raises (a failed download, Ctrl-C), it is
    deleted and ``path`` is left as it was.

    Args:
        path: the file to write; its folder must exist.
        suffix: the temporary name's ending (``".keras"`` where a library checks the extension).

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` whole or not at all (see :func:`atomic_path`); newlines as given."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding=encoding, newline="") as out:
        out.write(text)


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hexadecimal digest of a file's bytes (``"sha256"``, ``"md5"``, any :mod:`hashlib` name).

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown algorithm.
    """
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def read_verified(path: str | os.PathLike, *, algorithm: str = "sha256") -> dict | None:
    """The side-car metadata of a cache entry, if the entry is complete and intact, else ``None``.

    An entry is a file ``path`` and a JSON file beside it (``path`` with the suffix ``.json``)
    whose key ``algorithm`` holds the file's digest. ``None`` when either file is missing, the JSON
    does not parse, or the digest differs (a damaged or half-copied file): never an exception.
    """
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get(algorithm) != file_digest(path, algorithm):
        return None
    return meta
