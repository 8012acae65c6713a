"""Real photos, offline: Tux Paint's stamps (Debian package, GPL-2) as a five-class photo task.

The stamps package holds cut-out photos of birds, flowers, fruit, mammals and vegetables, among
drawings and cartoons. :func:`stamp_photos` keeps the photos (by folder and by how few colours a
drawing has, :func:`flat_colour_share`), :func:`composite_on_background` puts each on a plain grey
square, and :func:`photos_task` splits them into a cached :class:`~tlbook.data.digits.Task`;
:func:`photos_folder` writes that task as an image-folder tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tlbook.data.debian import data_tar
from tlbook.data.digits import Split, Task
from tlbook.data.folders import cached_folder

#: The photo dataset's classes and the stamp folders each is drawn from (subfolders included).
PHOTO_CLASSES = {
    "birds": "animals/birds",
    "flowers": "plants/flowers",
    "fruit": "food/fruit",
    "mammals": "animals/mammals",
    "vegetables": "food/vegetables",
}
#: Stamp subfolders that hold drawings or objects, not photos of the class: left out by name.
NOT_PHOTO_FOLDERS = ("cartoon", "toys", "plastic")
#: The credit every figure showing these photos carries (GPL-2 asks for the licence to travel with them).
PHOTOS_CREDIT = (
    "Photos: Tux Paint stamps (Debian tuxpaint-stamps-default 2022.06.04-1), GPL-2 or later, "
    "by the Tux Paint project and its contributors"
)
#: A stamp whose 20 most common colours (5 bits per channel) cover this share of its visible
#: pixels or more is a flat-coloured drawing or silhouette, not a photo (a hedgehog drawing: 0.97,
#: a silhouette: 1.0; the darkest photos, a black yak or rose: 0.85).
DRAWING_COLOUR_SHARE = 0.9


def flat_colour_share(rgba: np.ndarray, colours: int = 20) -> float:
    """Share of the visible pixels (alpha > 128) of an RGBA image ``(h, w, 4)`` that fall into its
    ``colours`` most common colours, each channel cut to 5 bits: near 1 for flat-coloured
    drawings, lower for photos. 1.0 for an image with no visible pixel."""
    rgba = np.asarray(rgba)
    pixels = rgba[..., :3][rgba[..., 3] > 128].astype(np.int64) >> 3
    if len(pixels) == 0:
        return 1.0
    _, counts = np.unique(pixels[:, 0] << 10 | pixels[:, 1] << 5 | pixels[:, 2], return_counts=True)
    return float(np.sort(counts)[::-1][:colours].sum() / len(pixels))


def composite_on_background(rgba: np.ndarray, *, image_size: int = 224, background=(128, 128, 128)) -> np.ndarray:
    """A cut-out RGBA image centred on a square of plain ``background`` colour, then resized
    (Pillow, Lanczos) to ``image_size`` × ``image_size``. Returns ``uint8`` ``(image_size, image_size, 3)``."""
    from PIL import Image

    image = Image.fromarray(np.asarray(rgba, dtype=np.uint8), "RGBA")
    side = max(image.size)
    canvas = Image.new("RGB", (side, side), tuple(background))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2), mask=image.getchannel("A"))
    return np.asarray(canvas.resize((image_size, image_size), Image.Resampling.LANCZOS), dtype=np.uint8)


def stamp_photos(deb: str | os.PathLike) -> dict[str, list[tuple[str, np.ndarray]]]:
    """The photos among the stamps of a Tux Paint stamps ``.deb``, by class (:data:`PHOTO_CLASSES`).

    A stamp is kept when its path lies under the class's folder, no folder on the way is one of
    :data:`NOT_PHOTO_FOLDERS` (cartoons, toys, plastic flowers), and its :func:`flat_colour_share`
    is below :data:`DRAWING_COLOUR_SHARE` (drawings and silhouettes outside those folders).

    Returns:
        ``{class: [(stamp path, RGBA uint8 array (h, w, 4)), ...]}``, sorted by path.

    Raises:
        ValueError: the file is not a Debian package with a readable data archive.
    """
    import lzma
    import tarfile
    import zlib

    from PIL import Image

    found = {name: [] for name in PHOTO_CLASSES}
    deb = Path(deb)
    member = None
    try:
        with data_tar(deb) as tar:
            for member in tar:
                if not (member.isfile() and member.name.endswith(".png") and "/stamps/" in member.name):
                    continue
                stamp = member.name.split("/stamps/", 1)[1]
                folders = stamp.split("/")[:-1]
                for name, prefix in PHOTO_CLASSES.items():
                    if (stamp.startswith(prefix + "/")) and not set(folders) & set(NOT_PHOTO_FOLDERS):
                        with Image.open(tar.extractfile(member)) as image:
                            rgba = np.asarray(image.convert("RGBA"))
                        if flat_colour_share(rgba) < DRAWING_COLOUR_SHARE:
                            found[name].append((stamp, rgba))
    except (tarfile.TarError, lzma.LZMAError, zlib.error, EOFError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(deb) in str(exc):
            raise  # already names the file (a damaged ar header)
        where = f" at or after {member.name}" if member is not None else ""
        raise ValueError(f"{deb}: its data archive cannot be read{where} ({exc}); get the file again") from exc
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{deb}: its {member.name} is too large to decode ({exc})") from exc
    return {name: sorted(items, key=lambda item: item[0]) for name, items in found.items()}


def photos_task(
    *, image_size: int = 224, test_fraction: float = 0.4, seed: int = 0, download: bool = True, deb=None
) -> Task:
    """Real photos in five classes (birds, flowers, fruit, mammals, vegetables), as a :class:`~tlbook.data.digits.Task`.

    The photos are Tux Paint's stamps (Debian package ``tuxpaint-stamps-default`` 2022.06.04-1,
    GPL-2; :data:`tlbook.downloads.TUXPAINT_STAMPS`): cut-out photos, each composited on a plain
    grey background (:func:`composite_on_background`) at ``image_size`` pixels; drawings are left
    out (:func:`stamp_photos`). Each class is split into train and test by ``test_fraction`` with
    ``seed`` (stratified: every class keeps the same share in each). The result is cached (an
    ``.npz`` entry of :func:`tlbook.cache.cached`: keyed by these settings and the code, checked
    against its digest on every call), so only the first call reads the 161 MB package.

    Args:
        download: fetch the package with ``apt-get download`` if it is not cached.
        deb: the path of a ``.deb`` to use instead of the cached one (its SHA-256 is checked).

    Raises:
        tlbook.downloads.DownloadError: the package is not cached and cannot be fetched here
            (another system, offline); the message names the package, its version and SHA-256,
            and where to put the file.
        ValueError: ``deb`` is not the pinned package, or a bad ``image_size`` / ``test_fraction``.
    """
    from tlbook import downloads
    from tlbook.cache import cached
    from tlbook.files import file_digest

    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ValueError(f"image_size must be an integer of at least 8 pixels, got {image_size!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}")
    item = downloads.TUXPAINT_STAMPS
    settings = {"image_size": int(image_size), "test_fraction": test_fraction, "seed": seed, "deb": item.digest}

    def compute() -> dict:
        if deb is not None:
            if file_digest(deb, "sha256") != item.digest:
                raise ValueError(
                    f"{deb} is not {item.package} {item.version}: its SHA-256 differs from {item.digest}; "
                    "nothing was written"
                )
            source = Path(deb)
        else:
            source = downloads.debian_package(item, download=download)
        return _split_photos(stamp_photos(source), int(image_size), test_fraction, seed)

    return cached(
        "photos",
        settings,
        compute,
        write=lambda arrays, path: np.savez(path, **arrays),
        read=_read_photos,
        code=("data",),
        suffix=".npz",
    )


def _read_photos(path: Path) -> Task:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as stored:
            names = tuple(str(n) for n in stored["class_names"])
            splits = {s: Split(stored[f"{s}_x"], stored[f"{s}_y"], names) for s in ("train", "test")}
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"not a photos archive: {exc}") from exc
    return Task("photos", splits["train"], splits["test"])


def _split_photos(photos: dict, image_size: int, test_fraction: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    parts = {"train": ([], []), "test": ([], [])}
    for label, name in enumerate(photos):
        images = [composite_on_background(rgba, image_size=image_size) for _, rgba in photos[name]]
        if len(images) < 2:
            raise ValueError(f"class {name!r} has {len(images)} photos; a train/test split needs at least 2")
        order = rng.permutation(len(images))
        n_test = min(max(1, round(test_fraction * len(images))), len(images) - 1)
        for split, idx in (("test", order[:n_test]), ("train", order[n_test:])):
            parts[split][0].extend(images[i] for i in sorted(idx))
            parts[split][1].extend([label] * len(idx))
    out = {"class_names": np.array(list(photos))}
    for split, (x, y) in parts.items():
        out[f"{split}_x"] = np.stack(x).astype(np.uint8)
        out[f"{split}_y"] = np.array(y, dtype=np.int64)
    return out


def photos_folder(*, image_size: int = 224, test_fraction: float = 0.4, seed: int = 0, download: bool = True) -> Path:
    """:func:`photos_task` as an image-folder tree, ``train/<class>/`` and ``test/<class>/``, for
    Keras's folder loaders (:func:`~tlbook.data.folders.load_image_folders`). Written once into the tlbook cache
    by :func:`~tlbook.data.folders.write_image_folder` (atomic); later calls return it.

    Raises:
        tlbook.downloads.DownloadError: as :func:`photos_task`.
    """
    from tlbook import downloads

    settings = {"photos": downloads.TUXPAINT_STAMPS.digest, "image_size": image_size, "test_fraction": test_fraction}
    return cached_folder(
        {**settings, "seed": seed},
        lambda: photos_task(image_size=image_size, test_fraction=test_fraction, seed=seed, download=download),
    )
