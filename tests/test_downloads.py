"""prefetch against a local HTTP server on loopback: the cache ends complete and verified, or untouched."""

import dataclasses
import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlbook import downloads
from tlbook.__main__ import main

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Handler(BaseHTTPRequestHandler):
    files: dict = {}
    requests: list = []  # the paths asked for, in order
    sent: list = []  # the blocks of an endless answer the server could write

    def do_GET(self):  # noqa: N802 (http.server's name)
        name = self.path.lstrip("/")
        self.requests.append(name)
        if name not in self.files:
            self.send_error(404)
            return
        body, mode = self.files[name]
        if mode == "endless":  # no length, and bytes for as long as the client reads (at most 64 MiB)
            self.send_response(200)
            self.end_headers()
            for _ in range(64):
                try:
                    self.wfile.write(body)
                except OSError:  # the client stopped reading and closed the connection
                    return
                self.sent.append(len(body))
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":  # an interrupted transfer: half the promised bytes, then the connection drops
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    corrupt = bytearray(PAYLOAD)
    corrupt[1000] ^= 0xFF
    _Handler.requests, _Handler.sent = [], []
    _Handler.files = {
        "good.bin": (PAYLOAD, "ok"),
        "corrupt.bin": (bytes(corrupt), "ok"),
        "cut.bin": (PAYLOAD, "cut"),
        "endless.bin": (PAYLOAD, "endless"),
    }
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _item(base, name, algorithm="sha256", payload=PAYLOAD):
    return downloads.Download(
        key="test",
        url=f"{base}/{name}",
        filename="payload.bin",
        size=len(payload),
        digest=hashlib.new(algorithm, payload).hexdigest(),
        algorithm=algorithm,
        description="test payload",
    )


def _cache_files(tmp_cache):
    folder = tmp_cache / downloads.DOWNLOADS_DIR
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_good_file_is_downloaded_and_verified(server, tmp_cache, algorithm, capsys):
    path = downloads.fetch(_item(server[1], "good.bin", algorithm))
    assert path.read_bytes() == PAYLOAD and _cache_files(tmp_cache) == ["payload.bin"]
    assert "Verified" in capsys.readouterr().out
    # a second call finds the verified copy and does not download again
    _Handler.files.clear()
    assert downloads.fetch(_item(server[1], "good.bin", algorithm), quiet=True) == path


def test_corrupt_file_is_discarded(server, tmp_cache):
    item = dataclasses.replace(_item(server[1], "good.bin"), url=f"{server[1]}/corrupt.bin")
    with pytest.raises(downloads.DownloadError, match=r"corrupt.bin arrived with sha256 .*expected"):
        downloads.fetch(item, quiet=True)
    assert _cache_files(tmp_cache) == []


def test_interrupted_transfer_leaves_nothing(server, tmp_cache):
    with pytest.raises(downloads.DownloadError, match=r"cut.bin.*(received|stopped after) 524,288 of 1,048,576"):
        downloads.fetch(_item(server[1], "cut.bin"), quiet=True)
    assert _cache_files(tmp_cache) == []


def test_a_server_that_sends_more_than_the_declared_size_is_stopped_at_the_size(server, tmp_cache):
    """An answer with no length that never ends: the download stops one byte past the size the item
    declares (1 MiB), instead of filling the disk, and leaves nothing in the cache."""
    item = dataclasses.replace(_item(server[1], "good.bin"), url=f"{server[1]}/endless.bin")
    with pytest.raises(downloads.DownloadError, match=r"endless.bin sent more than the 1,048,576 bytes"):
        downloads.fetch(item, quiet=True)
    assert _cache_files(tmp_cache) == []
    # the server wrote at most a few MiB (what the sockets buffered) of the 64 it would have sent
    assert sum(_Handler.sent) < 16 * len(PAYLOAD)


def test_failed_download_leaves_an_existing_file_untouched(server, tmp_cache):
    folder = tmp_cache / downloads.DOWNLOADS_DIR
    folder.mkdir(parents=True)
    (folder / "payload.bin").write_bytes(b"old, damaged copy")
    with pytest.raises(downloads.DownloadError):
        downloads.fetch(_item(server[1], "cut.bin"), quiet=True)
    assert (folder / "payload.bin").read_bytes() == b"old, damaged copy" and _cache_files(tmp_cache) == ["payload.bin"]
    # a good transfer replaces it with the verified file
    downloads.fetch(_item(server[1], "good.bin"), quiet=True)
    assert (folder / "payload.bin").read_bytes() == PAYLOAD


def test_unreachable_server_fails_fast_with_advice(tmp_cache, server):
    # fast: one request, no retries or back-off (a wall-clock bound would fail on a loaded machine)
    item = _item(server[1], "missing.bin")
    with pytest.raises(
        downloads.DownloadError, match=r"could not download .*missing.bin.*Not Found.*run the command again"
    ):
        downloads.fetch(item, quiet=True)
    assert _Handler.requests == ["missing.bin"] and _cache_files(tmp_cache) == []


def _flowers_archive():
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for cls in ("daisy", "roses"):
            for i in range(5):
                img = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(img, format="JPEG")
                info = tarfile.TarInfo(f"flower_photos/{cls}/{i}.jpg")
                info.size = img.tell()
                img.seek(0)
                tar.addfile(info, img)
        lic = tarfile.TarInfo("flower_photos/LICENSE.txt")
        lic.size = 3
        tar.addfile(lic, io.BytesIO(b"C-C"))
    return buf.getvalue()


def test_prefetch_command_fetches_and_splits_flowers(server, tmp_cache, monkeypatch, capsys):
    archive = _flowers_archive()
    _Handler.files["flower_photos.tgz"] = (archive, "ok")
    item = dataclasses.replace(
        _item(server[1], "flower_photos.tgz", payload=archive), key="flowers", filename="flower_photos.tgz"
    )
    monkeypatch.setattr(downloads, "FLOWERS", item)
    monkeypatch.setitem(downloads.DOWNLOADS, "flowers", item)
    assert main(["prefetch", "--only", "flowers", "--quiet"]) == 0
    assert "flowers:" in capsys.readouterr().out
    root = downloads.flowers_folder(download=False, test_fraction=0.2)
    for cls in ("daisy", "roses"):
        assert (
            len(list((root / "train" / cls).glob("*.jpg"))) == 4 and len(list((root / "test" / cls).glob("*.jpg"))) == 1
        )
    assert sorted(p.name for p in root.parent.iterdir()) == [root.name, f"{root.name}.sidecar.json"]  # no partial tree


def test_flowers_folder_offline_without_archive_says_prefetch(tmp_cache):
    with pytest.raises(FileNotFoundError, match=r"python -m tlbook prefetch"):
        downloads.flowers_folder(download=False)


def test_prefetch_command_reports_failure(server, tmp_cache, monkeypatch, capsys):
    item = dataclasses.replace(_item(server[1], "cut.bin"), key="resnet50")
    monkeypatch.setitem(downloads.DOWNLOADS, "resnet50", item)
    assert main(["prefetch", "--only", "resnet50", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("prefetch failed: ") and "cut.bin" in err and "nothing was written" in err
    assert _cache_files(tmp_cache) == []


def test_prefetch_with_no_key_fetches_what_the_chapters_need_and_all_adds_the_options(monkeypatch, capsys):
    fetched = []
    monkeypatch.setattr(downloads, "debian_package", lambda **kw: fetched.append("photos") or Path("photos.deb"))
    monkeypatch.setattr(downloads, "fetch", lambda item, **kw: fetched.append(item.key) or Path(item.filename))
    assert downloads.prefetch(quiet=True) == {"photos": Path("photos.deb")} and fetched == ["photos"]
    fetched.clear()
    assert main(["prefetch", "--all", "--quiet"]) == 0
    assert fetched == ["photos", "resnet50", "flowers"]
    assert capsys.readouterr().out.splitlines()[0] == "photos: photos.deb"
    with pytest.raises(SystemExit):
        main(["prefetch", "--all", "--only", "photos"])  # one or the other


def test_prefetch_rejects_unknown_key():
    with pytest.raises(ValueError, match=r"unknown download 'vgg'.*resnet50, flowers"):
        downloads.prefetch(["vgg"])


def test_download_table_lists_sizes_and_hashes():
    table = downloads.download_table()
    assert list(table.index) == ["resnet50", "flowers"]
    assert table.loc["resnet50", "bytes"] == 94_765_736 and table.loc["flowers", "MiB"] == round(228_813_984 / 2**20, 1)
    assert table.loc["flowers", "verified by"].startswith("sha256 4c54ace7911a")


def test_ci_fetches_the_photos_package_that_tlbook_pins():
    """.ci/run provides the photos' .deb before the test command, as it provides Chromium: the
    file name, version and SHA-256 it checks are tlbook's own."""
    script = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    item = downloads.TUXPAINT_STAMPS
    assert f'photos_deb="{item.filename}"' in script
    assert f'photos_sha256="{item.digest}"' in script
    assert f"apt-get download -qq {item.package}={item.version}" in script
    assert script.index("sha256sum") < script.index("make test")


# --- The photos' Debian package: HTTPS from Debian's archive, then its snapshot archive, then apt-get


def _package(payload=PAYLOAD):
    return dataclasses.replace(
        downloads.TUXPAINT_STAMPS,
        filename="stamps_1_all.deb",
        pool_path="pool/main/s/stamps/stamps_1_all.deb",
        size=len(payload),
        digest=hashlib.sha256(payload).hexdigest(),
        sha1=hashlib.sha1(payload).hexdigest(),
    )


def _serve_debian(monkeypatch, base):
    """Debian's archive and snapshot archive, as the local server."""
    monkeypatch.setattr(downloads, "DEBIAN_ARCHIVE", f"{base}/debian/")
    monkeypatch.setattr(downloads, "DEBIAN_SNAPSHOT", f"{base}/snapshot/")


def test_the_published_pool_path_and_sha1_name_the_pinned_file():
    item = downloads.TUXPAINT_STAMPS
    archive, snapshot = item.urls()
    assert archive.startswith("https://") and archive.endswith(f"/debian/{item.pool_path}")
    assert item.pool_path.endswith("/" + item.filename) and f"/{item.package.split('-')[0]}" in item.pool_path
    assert snapshot.startswith("https://") and snapshot.endswith("/file/" + item.sha1) and len(item.sha1) == 40


def test_the_package_comes_from_the_archive_over_https_without_apt_get(server, tmp_cache, monkeypatch):
    httpd, base = server
    item = _package()
    _Handler.files[f"debian/{item.pool_path}"] = (PAYLOAD, "ok")
    _serve_debian(monkeypatch, base)
    monkeypatch.setattr(downloads.shutil, "which", lambda name: None)  # macOS, Windows: no apt-get
    path = downloads.debian_package(item, quiet=True)
    assert path.read_bytes() == PAYLOAD and _cache_files(tmp_cache) == [item.filename]
    assert _Handler.requests == [f"debian/{item.pool_path}"]
    assert downloads.debian_package(item, download=False) == path  # verified in the cache: no request
    assert len(_Handler.requests) == 1


def test_a_corrupt_archive_copy_falls_back_to_the_snapshot_archive(server, tmp_cache, monkeypatch):
    httpd, base = server
    item = _package()
    corrupt = bytearray(PAYLOAD)
    corrupt[7] ^= 0xFF
    _Handler.files[f"debian/{item.pool_path}"] = (bytes(corrupt), "ok")
    _Handler.files[f"snapshot/{item.sha1}"] = (PAYLOAD, "ok")
    _serve_debian(monkeypatch, base)
    monkeypatch.setattr(downloads.shutil, "which", lambda name: None)
    assert downloads.debian_package(item, quiet=True).read_bytes() == PAYLOAD
    assert _Handler.requests == [f"debian/{item.pool_path}", f"snapshot/{item.sha1}"]
    assert _cache_files(tmp_cache) == [item.filename]  # the corrupt copy left nothing behind


def test_every_source_failing_says_what_each_answered_and_leaves_nothing(server, tmp_cache, monkeypatch):
    httpd, base = server
    item = _package()
    _Handler.files[f"debian/{item.pool_path}"] = (PAYLOAD, "cut")
    _serve_debian(monkeypatch, base)
    monkeypatch.setattr(downloads.shutil, "which", lambda name: None)
    with pytest.raises(downloads.DownloadError) as raised:
        downloads.debian_package(item, quiet=True, timeout=5)
    message = str(raised.value)
    assert "stopped after" in message and "404" in message and "no apt-get" in message
    assert item.pool_path in message and str(downloads.download_path(item).parent) in message
    assert _cache_files(tmp_cache) == []


def test_apt_get_is_the_last_resort(server, tmp_cache, monkeypatch):
    """Both HTTPS sources unreachable: a stand-in apt-get (a script writing the file) is used."""
    httpd, base = server
    item = _package()
    _serve_debian(monkeypatch, base)
    fake = tmp_cache.parent / "bin" / "apt-get"
    fake.parent.mkdir()
    source = tmp_cache.parent / "payload"
    source.write_bytes(PAYLOAD)
    fake.write_text(f"#!/bin/sh\ncp '{source}' '{item.filename}'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(downloads.shutil, "which", lambda name: str(fake) if name == "apt-get" else None)
    assert downloads.debian_package(item, quiet=True).read_bytes() == PAYLOAD
    assert len(_Handler.requests) == 2  # the archive and the snapshot were asked first
