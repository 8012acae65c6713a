"""The workshop guide's offline room (book/workshop.md), followed as written: the downloads of one
copy's make cache, copied into another copy's, are all the photo chapters need with no network."""

import re
import shutil
from pathlib import Path

import pytest

from tlbook import doctor, downloads

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "book" / "workshop.md").read_text(encoding="utf-8")


def test_the_guide_names_the_cache_every_make_command_uses():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "export TLBOOK_CACHE ?= $(CURDIR)/.cache/tlbook" in makefile
    for target in ("doctor", "prefetch", "notebooks", "lab"):
        assert re.search(rf"^{target}: ", makefile, re.M), target
        assert f"make {target}" in GUIDE
    assert "`.cache/tlbook/downloads/` folder to\n`.cache/tlbook/downloads/`" in GUIDE


def test_the_offline_room_reads_the_photos_from_the_copied_downloads(tmp_path, monkeypatch):
    made = ROOT / ".cache" / "tlbook" / "downloads" / downloads.TUXPAINT_STAMPS.filename
    if not made.is_file():
        pytest.skip(f"the photos' package is not in make's cache ({made}); `make prefetch` fetches it")
    room = tmp_path / "participant" / ".cache" / "tlbook"
    shutil.copytree(made.parent, room / "downloads")  # the guide's copy, whole folder
    monkeypatch.setenv("TLBOOK_CACHE", str(room))
    # the network cut: Debian's archives refuse at once (a closed local port), no apt-get
    monkeypatch.setattr(downloads, "DEBIAN_ARCHIVE", "http://127.0.0.1:9/debian/")
    monkeypatch.setattr(downloads, "DEBIAN_SNAPSHOT", "http://127.0.0.1:9/file/")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    checks = {c.name: c for c in doctor.run_checks("quick")}
    assert checks["Photos (Chapters 4, 5, 9)"].status == "ok", checks["Photos (Chapters 4, 5, 9)"]
    # what photos_task (Chapters 4, 5 and 9) calls first: the package from the cache, verified
    assert downloads.debian_package() == room / "downloads" / downloads.TUXPAINT_STAMPS.filename
