"""Image folders: the ``train/<class>/*.png`` trees Keras's folder loaders read, written, checked and loaded.

A reader's own photos arrive as such a tree. :func:`write_image_folder` writes a task as one
(atomically, and never over a folder tlbook did not write); :func:`validate_image_folder` checks a
tree before training, so a stray file, a corrupt image or a format Keras cannot decode fails with
a message naming the path (:class:`ImageFolderError`) instead of mid-epoch; :func:`load_image_folder`
and :func:`load_image_folders` read it as ``tf.data`` datasets (Keras is imported only then).
:func:`profile_image_folder` is the quick profile's target task as such a tree, written once into
the cache by :func:`cached_folder`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tlbook.config import Profile, get_profile
from tlbook.data.digits import Task, require_digits, target_task

#: The file suffixes read as images in an image folder (those Keras's image loader reads).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


#: tree is tlbook's to replace.
IMAGE_FOLDER_MARK = ".tlbook-image-folder"


def _check_class_name(name) -> None:
    """A class name must be one visible folder name: anything else would write outside the tree
    (``../x``, ``a/b``) or make a folder Keras's loader does not read (``.x``)."""
    separators = {"/", "\\", os.sep, os.altsep} - {None}
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or name.startswith(".")
        or "\0" in name
        or any(sep in name for sep in separators)
    ):
        raise ValueError(
            f"class name {name!r} cannot be a folder name of an image-folder tree (it is empty, hidden, or holds a "
            "path separator); rename the class"
        )


def write_image_folder(task: Task, root: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a task as the image-folder tree Keras's folder loaders read.

    Layout: ``root/train/<class>/<index>.png`` and ``root/test/<class>/<index>.png``, plus the
    mark file :data:`IMAGE_FOLDER_MARK`. The tree is written into a temporary sibling directory and
    renamed into place when complete, so an interrupted write never leaves a half-filled ``root``.
    Processes that write the same ``root`` at once take turns (a lock in the tlbook cache).

    Args:
        task: the task to write.
        root: the directory to create.
        overwrite: replace ``root`` if it exists. Only an empty directory or a tree this function
            wrote (it holds the mark file) is replaced: the old tree is renamed aside, the new one
            renamed into place, then the old one deleted, so ``root`` is missing only between two
            renames, never while images are written.

    Returns:
        ``root`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: ``root`` exists and ``overwrite`` is false, or ``root`` is not empty and
            was not written by this function (nothing is deleted; the message says what to do).
        ValueError: a class name that is not one visible folder name (``../x``, ``a/b``, ``.x``).
    """
    import hashlib
    import uuid

    from tlbook.config import cache_lock

    _check_class_names(task)  # before anything is written
    root = Path(root)
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    with cache_lock(f"image-folder-{key}"):
        if root.exists():
            if not overwrite:
                raise FileExistsError(
                    f"image folder {str(root)!r} already exists; pass overwrite=True or choose another path"
                )
            if not root.is_dir() or (any(root.iterdir()) and not (root / IMAGE_FOLDER_MARK).is_file()):
                raise FileExistsError(
                    f"{str(root)!r} exists and was not written by tlbook (it has no {IMAGE_FOLDER_MARK} file), so "
                    "overwrite=True will not delete it; choose another path, or delete it yourself if it holds "
                    "nothing you need"
                )
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
        old = None
        try:
            write_image_tree(task, tmp)
            if root.exists():
                old = root.parent / f".{root.name}.old-{uuid.uuid4().hex}"
                os.replace(root, old)  # a rename: nothing is deleted before the new tree is in place
            os.replace(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if old is not None and not root.exists():
                os.replace(old, root)  # put the old tree back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return root


def _check_class_names(task: Task) -> None:
    for split in (task.train, task.test):
        for name in split.class_names:
            _check_class_name(name)


def write_image_tree(task: Task, folder: Path) -> None:
    """Write ``task``'s images into the existing, empty ``folder``: ``train/<class>/<index>.png``,
    ``test/<class>/<index>.png`` and the mark file :data:`IMAGE_FOLDER_MARK`. Nothing atomic here:
    :func:`write_image_folder` (and the cache, :func:`cached_folder`) call it on a temporary folder
    and rename that into place.

    Raises:
        ValueError: a class name that is not one visible folder name.
    """
    from PIL import Image

    _check_class_names(task)
    for split_name, split in (("train", task.train), ("test", task.test)):
        for name in split.class_names:
            (folder / split_name / name).mkdir(parents=True)
        for i, (img, label) in enumerate(zip(split.x, split.y, strict=True)):
            Image.fromarray(img).save(folder / split_name / split.class_names[label] / f"{i:05d}.png")
    (folder / IMAGE_FOLDER_MARK).write_text(f"written by tlbook.data.write_image_folder from task {task.name!r}\n")


class ImageFolderError(ValueError):
    """An image-folder tree that Keras's loader would misread or choke on; the message names the path."""


#: Image formats ``keras.utils.image_dataset_from_directory`` decodes (as Pillow names them).
KERAS_IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF")


def class_folders(directory: str | os.PathLike) -> list[str]:
    """The class names of an image-folder split (its sub-directories, sorted as Keras sorts them).

    Raises:
        FileNotFoundError: ``directory`` does not exist or is not a directory.
        ImageFolderError: it holds no class folder, or a class folder holds no image.
    """
    directory = Path(directory)
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise FileNotFoundError(
            f"image folder {str(directory)!r} {what}; expected one sub-folder per class, "
            "for example train/cat/*.jpg and train/dog/*.jpg"
        )
    names = sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise ImageFolderError(
            f"image folder {str(directory)!r} has no class sub-folders; put each class's images in a folder named "
            "after the class"
        )
    for name in names:
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in _class_files(directory / name)):
            raise ImageFolderError(
                f"class folder {str(directory / name)!r} holds no image ({', '.join(IMAGE_SUFFIXES)}); "
                "add images or remove the folder"
            )
    return names


def _class_files(folder: Path) -> list[Path]:
    """The files under a class folder that matter to Keras's loader, sub-folders included.

    Walked as ``image_dataset_from_directory`` walks it (``follow_links=False``): a link to a folder
    is not entered, so a link loop ends the walk instead of repeating it, and hidden folders are
    entered. Every file with an image suffix is listed, hidden ones too (Keras reads ``._cat.jpg``,
    the AppleDouble file macOS leaves beside a copy); of the other files only the visible ones
    (Keras skips them, :func:`check_image_file` says so), not ``.DS_Store`` and the like.
    """
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        out.extend(
            Path(dirpath) / f for f in sorted(filenames) if f.lower().endswith(IMAGE_SUFFIXES) or not f.startswith(".")
        )
    return out


def check_image_file(path: str | os.PathLike) -> str:
    """Open and decode one image file completely, the way a training run will.

    Returns:
        Pillow's mode of the image (``"RGB"``, ``"L"`` grayscale, ``"P"`` palette, ``"RGBA"``...).
        Every mode is fine: the loader converts them all to 3-channel RGB.

    Raises:
        ImageFolderError: the file's suffix is not an image suffix, its name is not UTF-8, it is
            an AppleDouble ``._`` file or a link to nothing, it is not an image, it is truncated or
            corrupt, it has more pixels than Pillow's ``MAX_IMAGE_PIXELS`` (a decompression bomb is
            refused before it is decoded), it is a palette or 1-bit BMP (TensorFlow reads those
            as grey indices), or its format is one Keras cannot decode (the message names the
            file and says what to do).
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise ImageFolderError(
            f"{str(path)!r} has a name that is not UTF-8, which TensorFlow cannot open; rename it"
        ) from None
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageFolderError(
            f"{str(path)!r} is not an image file ({', '.join(IMAGE_SUFFIXES)}); Keras would skip it silently. "
            "Move it out of the class folder."
        )
    if path.name.startswith("._"):
        raise ImageFolderError(
            f"{str(path)!r} is an AppleDouble file (macOS writes one beside each file it copies to another disk), "
            "not an image, and Keras would read it as one; delete it (find <folder> -name '._*' -delete)"
        )
    if path.is_symlink() and not path.exists():
        raise ImageFolderError(f"{str(path)!r} is a link to nothing (or a loop of links); delete it")
    try:
        with warnings.catch_warnings():
            # an image over Pillow's pixel limit (MAX_IMAGE_PIXELS) is refused before it is decoded
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt = im.format
                if fmt == "JPEG":
                    im.draft("RGB", (64, 64))  # decode at reduced size: the whole stream is still read
                im.load()
                mode = im.mode
    except UnidentifiedImageError:
        raise ImageFolderError(
            f"{str(path)!r} is not an image (Pillow cannot identify it); delete it or replace it with the real image"
        ) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageFolderError(
            f"{str(path)!r} is too large to decode safely ({exc}); resize it, or raise PIL.Image.MAX_IMAGE_PIXELS "
            "if you trust the file"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageFolderError(
            f"{str(path)!r} is corrupt or truncated ({exc}); delete it or replace it with an intact copy"
        ) from None
    if fmt == "BMP" and mode in ("P", "1"):
        problem = (
            "TensorFlow cannot decode those (training would stop at this file)"
            if mode == "1"
            else "TensorFlow would read its palette indices as grey levels, not its colours"
        )
        raise ImageFolderError(
            f"{str(path)!r} is a {'1-bit' if mode == '1' else 'palette'} BMP: {problem}. Convert it (for example "
            "with Pillow: Image.open(p).convert('RGB').save(p_as_png))."
        )
    if fmt not in KERAS_IMAGE_FORMATS:
        raise ImageFolderError(
            f"{str(path)!r} is a {fmt} image behind a {path.suffix} name; Keras decodes only "
            f"{', '.join(KERAS_IMAGE_FORMATS)}. "
            "Convert it (for example with Pillow: Image.open(p).convert('RGB').save(p_as_png))."
        )
    return mode


def validate_image_folder(
    directory: str | os.PathLike, num_classes: int | None = None, class_names: Sequence[str] | None = None
) -> dict[str, int]:
    """Check an image-folder split before training on it, so a bad tree fails here and not mid-epoch.

    Checks: the folder exists and has class sub-folders, none of them empty; every file in them is
    an intact image in a format Keras decodes (:func:`check_image_file`); the number of classes is
    ``num_classes`` (if given); the classes are exactly ``class_names`` (if given; pass the training
    split's to check a test split).

    Returns:
        ``{class name: number of images}`` in Keras's (sorted) class order.

    Raises:
        FileNotFoundError: the folder is missing.
        ImageFolderError: any other problem above; the message names the path or the classes.
    """
    directory = Path(directory)
    names = class_folders(directory)
    counts = {}
    for name in names:
        files = _class_files(directory / name)
        for f in files:
            check_image_file(f)
        counts[name] = len(files)
    if num_classes is not None and num_classes != len(names):
        raise ImageFolderError(
            f"num_classes={num_classes!r}, but {str(directory)!r} has {len(names)} class folders ({', '.join(names)}); "
            "derive num_classes from the folders (len(dataset.class_names)) instead of typing it"
        )
    if class_names is not None and list(class_names) != names:
        missing = sorted(set(class_names) - set(names))
        extra = sorted(set(names) - set(class_names))
        detail = "; ".join(
            p
            for p in (
                f"missing here: {', '.join(missing)}" if missing else "",
                f"only here: {', '.join(extra)}" if extra else "",
            )
            if p
        )
        raise ImageFolderError(
            f"the classes of {str(directory)!r} differ from the training split's ({detail or 'different order'}); "
            "every split needs the same class folders, or label k means different things in each"
        )
    return counts


def image_size_pair(image_size) -> tuple[int, int]:
    """``(height, width)`` from Keras's ``image_size=(h, w)`` or a single side ``n`` (``(n, n)``).

    Raises:
        ValueError: not a positive integer nor a pair of them; the message names the value.
    """

    def side(v):
        return not isinstance(v, bool) and isinstance(v, (int, np.integer)) and v > 0

    if side(image_size):
        return (int(image_size), int(image_size))
    if isinstance(image_size, (tuple, list)) and len(image_size) == 2 and all(map(side, image_size)):
        return (int(image_size[0]), int(image_size[1]))
    raise ValueError(
        f"image_size must be (height, width) in pixels, as Keras takes it, or one side; got {image_size!r}"
    )


def load_image_folder(
    directory: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] = 32,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    label_mode: str = "int",
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
):
    """Read one split of an image-folder tree as a batched ``tf.data.Dataset``, after validating it.

    The tree is checked first with :func:`validate_image_folder` (with ``num_classes`` and
    ``class_names`` if given), then read with ``keras.utils.image_dataset_from_directory``, the
    replacement of the deprecated ``ImageDataGenerator.flow_from_directory``. Every image,
    grayscale, palette or RGBA included, comes as 3-channel RGB (alpha dropped), resized to
    ``image_size`` (``(height, width)`` as in Keras, or one side for a square): ``float32``
    tensors ``(batch, height, width, 3)`` with values 0..255, not rescaled (the model preprocesses). Labels are integers
    (``label_mode="int"``) or one-hot (``"categorical"``). The dataset's ``class_names``
    attribute lists the classes in label order.

    Raises:
        FileNotFoundError, ImageFolderError: see :func:`validate_image_folder`.
        ValueError: a bad ``image_size`` (see :func:`image_size_pair`).
    """
    size = image_size_pair(image_size)
    counts = validate_image_folder(directory, num_classes, class_names)
    return _keras_dataset(directory, counts, size, batch_size, label_mode, shuffle, seed)


def _keras_dataset(directory, counts, size, batch_size, label_mode, shuffle, seed, **split):
    """Keras's ``image_dataset_from_directory`` on a validated folder, RGB, classes in ``counts`` order."""
    import keras

    return keras.utils.image_dataset_from_directory(
        directory,
        labels="inferred",
        label_mode=label_mode,
        class_names=list(counts),
        color_mode="rgb",
        batch_size=batch_size,
        image_size=size,
        shuffle=shuffle,
        seed=seed,
        verbose=False,
        **split,
    )


def load_image_folders(
    root: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] = 32,
    batch_size: int = 32,
    label_mode: str = "int",
    seed: int = 0,
    num_classes: int | None = None,
    validation_fraction: float | None = None,
):
    """The splits of a tree ``root/train/<class>/...`` and ``root/test/<class>/...``.

    The training split is shuffled (with ``seed``), the test split is not; the test split must
    have exactly the training split's classes. With ``validation_fraction`` a share of the
    training folder is held out for validation (Keras's ``validation_split`` with
    ``subset="both"``, the same seeded draw every time), so the test split is touched once, at the
    end, and never steers training. See :func:`load_image_folder` for the validation and formats.

    Returns:
        ``(train_ds, test_ds)``, or ``(train_ds, val_ds, test_ds)`` with ``validation_fraction``.

    Raises:
        FileNotFoundError, ImageFolderError: see :func:`validate_image_folder`.
        ValueError: ``validation_fraction`` outside (0, 1), or a bad ``image_size``.
    """

    root = Path(root)
    size = image_size_pair(image_size)
    common = {
        "image_size": size,
        "batch_size": batch_size,
        "seed": seed,
        "label_mode": label_mode,
        "num_classes": num_classes,
    }
    if validation_fraction is None:
        train = load_image_folder(root / "train", shuffle=True, **common)
        test = load_image_folder(root / "test", shuffle=False, class_names=train.class_names, **common)
        return train, test
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction!r}")
    counts = validate_image_folder(root / "train", num_classes)
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints "Using N files for ..." even with verbose=False
        train, val = _keras_dataset(
            root / "train",
            counts,
            size,
            batch_size,
            label_mode,
            True,
            seed,
            validation_split=validation_fraction,
            subset="both",
        )
    test = load_image_folder(root / "test", shuffle=False, class_names=train.class_names, **common)
    return train, val, test


def profile_image_folder(profile: Profile | None = None) -> Path:
    """The image-folder tree (``train/`` and ``test/``) a profile's chapters read.

    The quick profile's target task (digits 5-9), written once into the cache by
    :func:`write_image_folder`. Real photos come as trees of the same layout from
    :func:`~tlbook.data.photos.photos_folder` (Tux Paint's stamps) and :func:`tlbook.downloads.flowers_folder`
    (TensorFlow's flowers).

    Raises:
        ValueError: a profile that does not use the digits.
    """
    profile = profile or get_profile()
    require_digits(profile)
    # every field of the profile: over-keying costs a rewrite, a missed field would serve another task
    return cached_folder({"digits target": dataclasses.asdict(profile)}, lambda: target_task(profile))


def cached_folder(settings: Mapping, make_task) -> Path:
    """An image-folder tree in the cache (:func:`tlbook.cache.cached`, kind ``folders``), written
    once by :func:`write_image_tree` from ``make_task()``; two processes that ask at once (two
    notebooks) write it once. The entry is keyed on ``settings`` and on the code of
    :mod:`tlbook.data`, and checked file by file on every call: a tree with a file or folder changed,
    added, removed or renamed (a class folder renamed would change every label) is written again,
    with a warning.

    Args:
        settings: JSON-serialisable values that decide the task (another value: another tree).
        make_task: a function of no arguments returning the :class:`~tlbook.data.digits.Task` to
            write; called only when the tree is not there yet (or damaged).

    Returns:
        the root of the tree, holding ``train/<class>/`` and ``test/<class>/``.
    """
    from tlbook.cache import cached

    return cached("folders", settings, make_task, write=write_image_tree, read=Path, code=("data",))
