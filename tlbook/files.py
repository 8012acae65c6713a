"""Files written whole or not at all, and files checked against their digest.

A download, a cache entry's side-car (:mod:`tlbook.cache`) and every other file tlbook writes is
written under a temporary name in the same folder and renamed over the target when complete
(``os.replace``, atomic on one file system): a reader, another process or an interrupted run sees
the old file or the new one, never half of one, and an error leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
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
