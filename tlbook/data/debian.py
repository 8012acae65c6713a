"""Reading a Debian package (``.deb``) without ``dpkg``: its ``ar`` archive and the data tar inside.

tlbook's real photos ship in a Debian package (:mod:`tlbook.data.photos`). A ``.deb`` is an ``ar``
archive whose ``data.tar.*`` member holds the files; :func:`data_tar` opens that member as a tar
stream, checking every ``ar`` header before following it, so a damaged or crafted file fails at
once with a ``ValueError`` that names it, instead of seeking backwards forever or reading past its end.
"""

from __future__ import annotations

import contextlib
from pathlib import Path


@contextlib.contextmanager
def data_tar(deb: Path):
    """The ``data.tar.*`` member of a ``.deb`` (an ``ar`` archive), opened as a tar stream (a
    context manager: the file is closed on leaving it).

    Each ``ar`` header is checked before it is followed: its end marker, a size of decimal digits
    that fits in what is left of the file, a name in ASCII. A damaged or crafted header (a
    negative size would seek backwards, forever) raises ``ValueError`` naming the file and the
    header's offset.

    Args:
        deb: the package's path, a :class:`~pathlib.Path`.

    Yields:
        the member as a ``tarfile.TarFile`` read as a stream (``r|xz``, ``r|gz`` or ``r|bz2``): its
        members come once, in order, as a ``for`` loop over it reads them.

    Raises:
        ValueError: the file is not an ``ar`` archive, has no ``data.tar`` member, has a damaged
            header, or its data archive is compressed in a way tlbook does not read or cannot be
            opened; the message names the file.
    """
    import tarfile

    total = deb.stat().st_size
    handle = open(deb, "rb")
    try:
        if handle.read(8) != b"!<arch>\n":
            raise ValueError(f"{deb} is not a Debian package (no ar archive header)")
        while True:
            offset = handle.tell()
            header = handle.read(60)
            if len(header) < 60:
                raise ValueError(f"{deb} holds no data.tar member")
            size_field = header[48:58].rstrip(b" ")
            if header[58:60] != b"`\n" or not size_field.isdigit() or not header[:16].isascii():
                raise ValueError(
                    f"{deb}: the ar header at byte {offset} is damaged (bad end marker, size or name); "
                    "the file is not a readable Debian package: get it again"
                )
            name, size = header[:16].decode("ascii").strip().rstrip("/"), int(size_field)
            if size > total - offset - 60:
                raise ValueError(
                    f"{deb}: the ar member {name!r} at byte {offset} claims {size:,} bytes, more than the file "
                    "holds after it; the file is truncated or damaged: get it again"
                )
            if name.startswith("data.tar"):
                mode = {".xz": "r|xz", ".gz": "r|gz", ".bz2": "r|bz2"}.get(Path(name).suffix)
                if mode is None:
                    raise ValueError(f"{deb}: its {name} is compressed in a way tlbook does not read")
                break
            handle.seek(size + size % 2, 1)
        try:
            tar = tarfile.open(fileobj=_Limited(handle, size), mode=mode)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ValueError(f"{deb}: its data archive cannot be read ({exc}); get the file again") from exc
        with tar:
            yield tar
    finally:
        handle.close()


class _Limited:
    """A read-only view of the next ``size`` bytes of a file (one ``ar`` member)."""

    def __init__(self, handle, size):
        self.handle, self.left = handle, size

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.handle.read(n)
        self.left -= len(data)
        return data

    def close(self):
        self.handle.close()
