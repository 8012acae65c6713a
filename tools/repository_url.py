"""One place for the repository's address: `_config.yml` (`repository.url`).

Jupyter Book builds the repository, Colab and Binder buttons from it. Two places cannot read it at
build time, because they are used outside the built site: the Colab install cell of every chapter
notebook (Colab runs the notebook file from GitHub) and the clone command of the workshop guide.
This tool writes the address from `_config.yml` into them. The Colab cells install the release
tag `v<version>` (`tlbook/__init__.py`'s `__version__`, the one place the version is written), not
the tip of the default branch, so a page and the code it installs are the same release.

    python tools/repository_url.py          # write it where it differs (make book runs this)
    python tools/repository_url.py --check  # exit 1 and name the files that differ

A fork sets `repository.url` once, runs `make book` (or this tool), and commits the result.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from tlbook.files import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
URL = re.compile(r"^https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# where the address is written: the pip line of each Colab cell, and the guide's clone command
NOTEBOOK_PLACE = re.compile(r"(tlbook @ git\+)([^\"\\\s]+)")
GUIDE_PLACE = re.compile(r"(git clone )(\S+)( tlbook)")
VERSION = re.compile(r'^__version__ = "([0-9A-Za-z.+-]+)"$', re.MULTILINE)


def release_tag(root: Path = ROOT) -> str:
    """``v`` and the version in ``root/tlbook/__init__.py``: the tag a release of that version gets.

    Raises:
        ValueError: the file has no ``__version__ = "..."`` line; the message names the file.
    """
    path = root / "tlbook" / "__init__.py"
    found = VERSION.search(path.read_text(encoding="utf-8"))
    if not found:
        raise ValueError(f'{path}: found no line __version__ = "X.Y.Z"')
    return f"v{found.group(1)}"


def configured_url(root: Path = ROOT) -> str:
    """The ``repository.url`` of ``root/_config.yml``, checked.

    Raises:
        ValueError: it is missing or not ``https://github.com/OWNER/REPO`` (Colab and Binder open
            notebooks from GitHub); the message names the file and the value.
    """
    path = root / "_config.yml"
    url = ((yaml.safe_load(path.read_text()) or {}).get("repository") or {}).get("url")
    if not isinstance(url, str) or not URL.match(url.rstrip("/")):
        raise ValueError(
            f"{path}: repository.url must look like https://github.com/OWNER/REPO (Colab and Binder "
            f"open notebooks from GitHub), got {url!r}"
        )
    return url.rstrip("/")


def _targets(root: Path) -> list[tuple[Path, re.Pattern, str]]:
    """Each file, the place in it, and what belongs there: the notebooks pip-install the release tag."""
    url = configured_url(root)
    pinned = f"{url}@{release_tag(root)}"
    return [(p, NOTEBOOK_PLACE, pinned) for p in sorted((root / "book").glob("*.ipynb"))] + [
        (root / "book" / "workshop.md", GUIDE_PLACE, url)
    ]


def stale_files(root: Path = ROOT) -> list[Path]:
    """The files whose written address (and, in a Colab cell, release tag) differs from the
    configured one, or that hold none."""
    stale = []
    for path, place, value in _targets(root):
        found = [m.group(2) for m in place.finditer(path.read_text(encoding="utf-8"))]
        if not found or any(f != value for f in found):
            stale.append(path)
    return stale


def write_url(root: Path = ROOT) -> list[Path]:
    """Write ``_config.yml``'s address into every place; return the files changed.

    Each file is replaced atomically (a temporary file, then a rename), so an interruption leaves
    it whole.

    Raises:
        ValueError: a bad ``repository.url`` (see :func:`configured_url`), no version
            (:func:`release_tag`), or a file that has no place for the address (its Colab cell or
            clone command was removed).
    """
    changed = []
    for path, place, value in _targets(root):
        text = path.read_text(encoding="utf-8")
        if not place.search(text):
            raise ValueError(f"{path}: found no place for the repository address (pattern {place.pattern!r})")
        new = place.sub(lambda m, v=value: m.group(1) + v + (m.group(3) if m.re is GUIDE_PLACE else ""), text)
        if new != text:
            atomic_write_text(path, new)  # a file is never left half-written
            changed.append(path)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a file differs from _config.yml"
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_files(ROOT)
            for path in stale:
                print(
                    f"{path.relative_to(ROOT)}: not {configured_url(ROOT)} (release {release_tag(ROOT)}); "
                    "run python tools/repository_url.py"
                )
            return 1 if stale else 0
        for path in write_url(ROOT):
            print(f"wrote the repository address into {path.relative_to(ROOT)}")
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
