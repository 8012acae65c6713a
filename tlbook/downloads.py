"""Downloads for readers with a network: ImageNet ResNet50 weights and the flower photos, verified and atomic.

The chapters need nothing from the network. Two options of the photo pipeline do, each one file:

- :data:`RESNET50_NOTOP`, Keras's ImageNet weights for ResNet50 without its classification top
  (94,765,736 bytes, about 90 MiB), checked against the MD5 Keras itself publishes for it; what
  ``models.build_transfer_model(K, backbone="resnet50", weights="imagenet")`` loads;
- :data:`FLOWERS`, TensorFlow's flower photos (228,813,984 bytes, about 218 MiB; 3,670 JPEG photos
  of 5 kinds of flowers), checked against the SHA-256 that TensorFlow Datasets records for it;
  :func:`flowers_folder` turns it into an image-folder tree for ``data.load_image_folders``.

:func:`fetch` downloads one of them into ``<cache>/downloads/`` (see :func:`tlbook.config.cache_dir`):
it streams into a temporary file beside the target, checks the size and the hash, and only then
renames it into place. A failed, interrupted or corrupt transfer removes its temporary file and
leaves the cache as it was. ``python -m tlbook prefetch`` calls it for both files ahead of a
workshop, on a machine with a network.

Why not ``pooch``, which also downloads into a temporary file, checks a hash and renames: its HTTP
downloader writes whatever the server sends until the server stops, and checks the hash only
then, so a server that sends an endless body fills the disk first. :func:`fetch` stops one byte
past the size it expects and says so. It also needs ``requests``, one more dependency for two
files.

The quick profile's real photos (Chapters 4, 5 and 9) come from a Debian package instead,
:data:`TUXPAINT_STAMPS`, fetched by :func:`debian_package` from Debian's archive over HTTPS by its
pool path (any system with Python: macOS, Windows, Colab), else from Debian's snapshot archive by
its SHA-1, else with ``apt-get download``, and verified the same way
(``python -m tlbook prefetch --only photos``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tlbook.config import cache_dir
from tlbook.files import atomic_path, file_digest

DOWNLOADS_DIR = "downloads"


@dataclasses.dataclass(frozen=True)
class Download:
    """One file tlbook can download (``python -m tlbook prefetch``).

    Attributes:
        key: short name used on the command line (``python -m tlbook prefetch --only KEY``).
        url: where it comes from.
        filename: its name in the cache.
        size: its length in bytes.
        digest: its expected hash, hex.
        algorithm: ``"md5"`` or ``"sha256"`` (the hash its publisher records).
        description: one line for people.
    """

    key: str
    url: str
    filename: str
    size: int
    digest: str
    algorithm: str
    description: str

    @property
    def size_mib(self) -> float:
        """The size in MiB (2**20 bytes)."""
        return self.size / 2**20


#: Keras's ImageNet weights for ResNet50 without its classification top: what
#: ``models.build_transfer_model(K, backbone="resnet50", weights="imagenet")`` loads.
RESNET50_NOTOP = Download(
    key="resnet50",
    url="https://storage.googleapis.com/tensorflow/keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    filename="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    size=94_765_736,
    digest="4d473c1dd8becc155b73f8504c6f6626",
    algorithm="md5",
    description="ImageNet weights for ResNet50 without its top (Keras applications)",
)

#: TensorFlow's flower photos, an optional data set of the photo pipeline (:func:`flowers_folder` extracts them).
FLOWERS = Download(
    key="flowers",
    url="https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz",
    filename="flower_photos.tgz",
    size=228_813_984,
    digest="4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c",
    algorithm="sha256",
    description="TensorFlow's flower photos: 3,670 JPEGs of 5 classes",
)

#: Every download for readers with a network, by key (``python -m tlbook prefetch --only KEY``).
DOWNLOADS: dict[str, Download] = {d.key: d for d in (RESNET50_NOTOP, FLOWERS)}


class DownloadError(RuntimeError):
    """A download failed, was cut short, or did not match its expected size or hash."""


def verify(path: str | os.PathLike, item: Download | DebianPackage) -> bool:
    """Whether ``path`` is a complete, intact copy of ``item`` (size and hash both match)."""
    path = Path(path)
    return path.is_file() and path.stat().st_size == item.size and file_digest(path, item.algorithm) == item.digest


def download_path(item: Download) -> Path:
    """Where ``item`` lives in the tlbook cache (whether or not it is there yet)."""
    return cache_dir() / DOWNLOADS_DIR / item.filename


def cached(item: Download) -> Path | None:
    """The verified cached copy of ``item`` in the tlbook cache, or ``None``."""
    path = download_path(item)
    return path if verify(path, item) else None


def fetch(item: Download, timeout: float = 30.0, quiet: bool = False) -> Path:
    """Download ``item`` into the tlbook cache unless a verified copy is already there.

    The transfer streams into a temporary file in the same directory; after the last byte its
    length and hash are checked and only then is it renamed to its final name. On any failure
    (no network, a cut connection, a short or corrupt file) the temporary file is removed and the
    cache is left exactly as it was: a previous file of the same name, even a damaged one, is not
    touched.

    Args:
        item: what to download (:data:`RESNET50_NOTOP`, :data:`FLOWERS` or your own).
        timeout: seconds to wait for the server to connect or send the next block.
        quiet: no progress lines on stdout.

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: the message names the URL, what went wrong and what to do.
    """
    target = download_path(item)
    if verify(target, item):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.new(item.algorithm)
    received = 0
    with atomic_path(target, suffix=".partial") as tmp, open(tmp, "wb") as out:
        if not quiet:
            print(f"Downloading {item.filename} ({item.size_mib:.0f} MiB) from {item.url}", flush=True)
        try:
            with urllib.request.urlopen(item.url, timeout=timeout) as response:
                # never more than one byte past the declared size: a server that streams on and on
                # is stopped there, not when the disk is full
                while received <= item.size:
                    block = response.read(min(1 << 20, item.size + 1 - received))
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    received += len(block)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = (
                f"HTTP {exc.code} {exc.reason}"
                if isinstance(exc, urllib.error.HTTPError)
                else getattr(exc, "reason", exc)
            )
            raise DownloadError(
                f"could not download {item.url} ({reason}); received {received:,} of {item.size:,} bytes. "
                "Check the network (or proxy) and run the command again; nothing was written to the cache."
            ) from exc
        if received > item.size:
            raise DownloadError(
                f"{item.url} sent more than the {item.size:,} bytes {item.filename} has; the transfer was stopped "
                "there and nothing was written to the cache. The address serves another file: check the URL."
            )
        if received != item.size:
            raise DownloadError(
                f"the transfer of {item.url} stopped after {received:,} of {item.size:,} bytes; "
                "run the command again; nothing was written to the cache."
            )
        if digest.hexdigest() != item.digest:
            raise DownloadError(
                f"{item.url} arrived with {item.algorithm} {digest.hexdigest()}, expected {item.digest}: the file is "
                "corrupt or has changed upstream; it was discarded and nothing was written to the cache."
            )
    if not quiet:
        print(f"Verified {target} ({item.algorithm} {item.digest})", flush=True)
    return target


#: Where a Debian package's file is served over HTTPS, in the order tried: Debian's archive (its
#: redirector to a nearby mirror) by the package's pool path, then Debian's snapshot archive, which
#: keeps every file ever published, by the file's SHA-1.
DEBIAN_ARCHIVE = "https://deb.debian.org/debian/"
#: Debian's snapshot archive, which serves every file ever published by its SHA-1.
DEBIAN_SNAPSHOT = "https://snapshot.debian.org/file/"


@dataclasses.dataclass(frozen=True)
class DebianPackage:
    """A Debian package whose files tlbook uses (downloaded, never installed).

    Attributes:
        key: short name (``python -m tlbook prefetch --only KEY``).
        package, version: what ``apt-get download`` asks for.
        filename: the ``.deb`` file's name, in the cache's ``downloads/`` folder.
        pool_path: its path in Debian's archive, below the archive's root (``pool/main/...``).
        size: its length in bytes.
        digest: its SHA-256, hex (what is checked).
        sha1: its SHA-1, hex (how Debian's snapshot archive names it; not a check).
        licence: the licence of the files tlbook uses from it.
        description: one line for people.
    """

    key: str
    package: str
    version: str
    filename: str
    pool_path: str
    size: int
    digest: str
    sha1: str
    licence: str
    description: str
    algorithm: str = "sha256"

    @property
    def size_mib(self) -> float:
        """The size in MiB (2**20 bytes)."""
        return self.size / 2**20

    def urls(self, archive: str | None = None, snapshot: str | None = None) -> tuple[str, str]:
        """The HTTPS addresses of the file, in the order :func:`debian_package` tries them: below
        ``archive`` and ``snapshot`` (default: :data:`DEBIAN_ARCHIVE`, :data:`DEBIAN_SNAPSHOT`, read
        at call time)."""
        archive = DEBIAN_ARCHIVE if archive is None else archive
        snapshot = DEBIAN_SNAPSHOT if snapshot is None else snapshot
        return archive.rstrip("/") + "/" + self.pool_path, snapshot.rstrip("/") + "/" + self.sha1

    def download(self, url: str) -> Download:
        """The file at ``url`` as a :class:`Download` that :func:`fetch` verifies (size, SHA-256)."""
        return Download(
            key=self.key, url=url, filename=self.filename, size=self.size, digest=self.digest,
            algorithm=self.algorithm, description=self.description,
        )  # fmt: skip


#: Tux Paint's default stamps: cut-out photos (and drawings) on transparent backgrounds, in
#: category folders. The photos of :func:`tlbook.data.photos.photos_folder` come from here.
TUXPAINT_STAMPS = DebianPackage(
    key="photos",
    package="tuxpaint-stamps-default",
    version="2022.06.04-1",
    filename="tuxpaint-stamps-default_2022.06.04-1_all.deb",
    pool_path="pool/main/t/tuxpaint-stamps/tuxpaint-stamps-default_2022.06.04-1_all.deb",
    size=160_880_444,
    digest="6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",
    sha1="86ff15e81cc37ba8d1ea628a17d4a111d6140a42",
    licence="GPL-2 (Tux Paint's stamps, by the Tux Paint project and its contributors)",
    description="Tux Paint's stamps: cut-out photos of birds, flowers, fruit, mammals and vegetables",
)


def debian_package(
    item: DebianPackage = TUXPAINT_STAMPS, *, download: bool = True, quiet: bool = False, timeout: float = 30.0
) -> Path:
    """The verified ``.deb`` of ``item`` in the tlbook cache, downloaded if needed.

    Three sources, tried in order until one gives the pinned file: Debian's archive over HTTPS by
    the package's pool path, Debian's snapshot archive by the file's SHA-1 (:meth:`DebianPackage.urls`;
    both need only Python, so they work on macOS, Windows and Colab), then ``apt-get download``
    where it exists (Debian, Ubuntu; no root needed, nothing installed). Every download goes
    through :func:`fetch` or a temporary folder: its size and SHA-256 are checked before it is
    renamed into place, so a failed, cut or substituted download leaves nothing behind.

    Args:
        timeout: seconds to wait for a server to connect or send the next block.

    Raises:
        DownloadError: not cached and ``download`` is false, or every source failed; the message
            says what each source answered, and where to put a copy fetched elsewhere.
    """
    target = download_path(item)
    if verify(target, item):
        return target
    where = (
        f"Fetch {item.package} {item.version} ({item.size_mib:.0f} MiB, SHA-256 {item.digest}) from Debian's "
        f"archive ({item.pool_path}) on a machine with a network, or with `apt-get download "
        f"{item.package}={item.version}` on Debian or Ubuntu, and put {item.filename} into {target.parent}."
    )
    if target.exists():
        raise DownloadError(f"{target} is not {item.package} {item.version} (its size or SHA-256 differs). {where}")
    if not download:
        raise DownloadError(f"{item.filename} is not in the tlbook cache. {where}")
    failures = []
    for url in item.urls():
        try:
            return fetch(item.download(url), timeout=timeout, quiet=quiet)
        except DownloadError as error:
            failures.append(str(error))
    try:
        return _apt_get_download(item, target, quiet)
    except DownloadError as error:
        failures.append(str(error))
    tried = "; ".join(f"({i}) {failure}" for i, failure in enumerate(failures, 1))
    raise DownloadError(f"{item.filename} could not be downloaded from any source: {tried}. {where}")


def _apt_get_download(item: DebianPackage, target: Path, quiet: bool) -> Path:
    """``apt-get download`` of ``item`` into a temporary folder beside ``target``, verified, then renamed."""
    import subprocess

    apt = shutil.which("apt-get")
    if apt is None:
        raise DownloadError("this system has no apt-get")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".apt-download-") as folder:
        if not quiet:
            print(f"Fetching {item.package} {item.version} ({item.size_mib:.0f} MiB) with apt-get download", flush=True)
        run = subprocess.run(
            [apt, "download", f"{item.package}={item.version}"], cwd=folder, capture_output=True, text=True
        )
        fetched = Path(folder) / item.filename
        if run.returncode != 0 or not fetched.is_file():
            raise DownloadError(f"apt-get download failed ({(run.stderr or run.stdout).strip()[-300:]})")
        if not verify(fetched, item):
            raise DownloadError(
                f"apt-get download gave a {item.filename} whose size or SHA-256 differs from the pinned one; it was "
                "discarded"
            )
        os.replace(fetched, target)
    return target


def flowers_folder(*, download: bool = True, test_fraction: float = 0.2, seed: int = 0, quiet: bool = False) -> Path:
    """TensorFlow's flower photos as an image-folder tree with ``train/`` and ``test/`` splits.

    An option of the photo pipeline for readers with a network: the tree is what
    :func:`tlbook.data.folders.load_image_folders` (and ``keras.utils.image_dataset_from_directory``) reads,
    five classes (``daisy``, ``dandelion``, ``roses``, ``sunflowers``, ``tulips``) of JPEG photos of
    various sizes::

        root = downloads.flowers_folder()
        train_ds, val_ds, test_ds = data.load_image_folders(root, image_size=(224, 224), validation_fraction=0.2)
        model = models.build_transfer_model(len(train_ds.class_names), backbone="resnet50", weights="imagenet")

    The archive (:data:`FLOWERS`) is fetched if needed (``download=True``), then extracted once
    into a folder of the tlbook cache (:func:`tlbook.cache.cached`, kind ``flowers``, keyed on the
    archive's digest, these settings and this module's code, checked file by file on every call):
    from each class, ``test_fraction`` of its photos (drawn with ``seed``) go to ``test/<class>/``,
    the rest to ``train/<class>/``. The archive's top-level files (its licence) are not photos and
    stay out of the tree.

    Returns:
        The tree's root, holding ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``.

    Raises:
        FileNotFoundError: the archive is not cached and ``download`` is false; the message says
            to run ``python -m tlbook prefetch``.
        DownloadError: see :func:`fetch`.
        ValueError: ``test_fraction`` outside (0, 1).
    """
    from tlbook import cache

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}")

    def archive() -> Path:
        found = cached(FLOWERS)
        if found is not None:
            return found
        if not download:
            raise FileNotFoundError(
                f"the flower photos are not in the cache ({download_path(FLOWERS)}); run `python -m tlbook prefetch` "
                "on a machine with a network, or copy flower_photos.tgz there"
            )
        return fetch(FLOWERS, quiet=quiet)

    settings = {"archive": FLOWERS.digest, "test_fraction": test_fraction, "seed": seed}
    write = lambda tgz, folder: _split_flowers(tgz, folder, test_fraction, seed)  # noqa: E731
    return cache.cached("flowers", settings, archive, write=write, read=Path, code=("downloads",))


def _split_flowers(archive: Path, folder: Path, test_fraction: float, seed: int) -> None:
    """Extract the flowers archive into ``folder`` as ``train/<class>/`` and ``test/<class>/``."""
    import numpy as np

    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # refuses links and paths that leave the folder
            tar.extractall(folder / "x", filter="data")
        else:  # pragma: no cover - Python without the extraction filters
            tar.extractall(folder / "x")
    photos = folder / "x" / "flower_photos"
    rng = np.random.default_rng(seed)
    for class_dir in sorted(p for p in photos.iterdir() if p.is_dir()):
        files = sorted(class_dir.glob("*.jpg"))
        order = rng.permutation(len(files))
        n_test = max(1, round(test_fraction * len(files)))
        for rank, i in enumerate(order):
            split = "test" if rank < n_test else "train"
            (folder / split / class_dir.name).mkdir(parents=True, exist_ok=True)
            os.replace(files[i], folder / split / class_dir.name / files[i].name)
    shutil.rmtree(folder / "x")


def prefetch(keys: list[str] | None = None, timeout: float = 30.0, quiet: bool = False) -> dict[str, Path]:
    """Fetch what the chapters need, ahead of time: with no ``keys``, the Debian package of the
    photos of Chapters 4, 5 and 9 (``"photos"``, :func:`debian_package`), the one download the
    quick profile needs. ``keys`` names others: ``"resnet50"`` and ``"flowers"`` are the optional
    downloads of :data:`DOWNLOADS` (the ImageNet ResNet50 weights, the flower photos);
    :data:`EVERY_DOWNLOAD` lists all three (``python -m tlbook prefetch --all``).

    Returns:
        ``{key: verified path}``.

    Raises:
        ValueError: an unknown key (the message lists the known ones).
        DownloadError: see :func:`fetch`; files fetched before the failure stay, verified.
    """
    keys = [TUXPAINT_STAMPS.key] if not keys else keys
    known = [*DOWNLOADS, TUXPAINT_STAMPS.key]
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ValueError(f"unknown download {unknown[0]!r}; choose from {', '.join(known)}")
    return {
        k: debian_package(quiet=quiet, timeout=timeout)
        if k == TUXPAINT_STAMPS.key
        else fetch(DOWNLOADS[k], timeout=timeout, quiet=quiet)
        for k in keys
    }


#: Every key :func:`prefetch` knows: the photos the chapters need, then the optional downloads.
EVERY_DOWNLOAD = (TUXPAINT_STAMPS.key, *DOWNLOADS)


def download_table():
    """What ``python -m tlbook prefetch`` downloads: one row per file with its size and how it is verified.

    Returns:
        ``pandas.DataFrame`` indexed by key with columns ``file``, ``what``, ``bytes``,
        ``MiB`` and ``verified by``.
    """
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "key": d.key,
                "file": d.filename,
                "what": d.description,
                "bytes": d.size,
                "MiB": round(d.size_mib, 1),
                "verified by": f"{d.algorithm} {d.digest[:12]}…",
            }
            for d in DOWNLOADS.values()
        ]
    ).set_index("key")
