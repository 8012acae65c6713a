"""Data for the book: the digits source and target tasks, few-shot sampling and image folders.

The quick profile uses scikit-learn's copy of the UCI handwritten digits: 1,797 real 8x8 grayscale
scans (intensities 0..16) that ship inside scikit-learn, so nothing is downloaded. They are drawn
as RGB images in 0..255 at the profile's size, each digit at a random size and position (as the
subject of a photo is), and split into two tasks on disjoint classes: a *source* task (digits 0-4,
in four orientations) that tlbook pretrains a backbone on, and a *target* task (digits 5-9) that
the chapters transfer to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tlbook.config import Profile, get_profile

#: The file suffixes read as images in an image folder (those Keras's image loader reads).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclasses.dataclass(frozen=True)
class Split:
    """Images and labels of one split.

    Attributes:
        x: ``uint8`` array of shape ``(n, height, width, 3)``, values 0..255, RGB.
        y: ``int64`` array of shape ``(n,)`` with labels ``0..K-1`` (indices into ``class_names``).
        class_names: the name of each label, in label order.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        """How many classes the split has (``len(class_names)``)."""
        return len(self.class_names)

    def counts(self) -> np.ndarray:
        """Number of images per class, shape ``(K,)``."""
        return np.bincount(self.y, minlength=self.num_classes)


@dataclasses.dataclass(frozen=True)
class Task:
    """A classification task: a named pair of train and test splits over the same classes."""

    name: str
    train: Split
    test: Split

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names, in label order (those of the training split)."""
        return self.train.class_names

    @property
    def num_classes(self) -> int:
        """How many classes the task has (K)."""
        return self.train.num_classes


def load_digits_gray() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 scikit-learn digit scans as 8x8 ``uint8`` images (0..255) and their digits (0..9)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8), bunch.target.astype(np.int64)


def place_digits(
    scans: np.ndarray,
    *,
    image_size: int = 32,
    digit_size: tuple[int, int] = (12, 24),
    seed: int = 0,
    distractors: int = 0,
    distractor_intensity: float = 0.5,
) -> np.ndarray:
    """Draw each 8x8 scan as an RGB image with the digit at a random size and position.

    Real photos show their subject anywhere in the frame, at any size, among other things; so do
    these images. Every scan is resized (Pillow, bilinear) to a side drawn uniformly from
    ``digit_size`` and pasted at a uniformly drawn position on a black ``image_size`` x
    ``image_size`` canvas. With ``distractors=k``, k other scans from the same array (of any
    class) are drawn the same way but dimmed to ``distractor_intensity`` of full brightness, and
    the digit is drawn over them (pixel-wise maximum): the label belongs to the brightest digit.
    With ``digit_size=(image_size, image_size)`` and no distractors the digit fills the frame.

    Args:
        scans: ``(n, 8, 8)`` ``uint8`` grayscale scans.
        image_size: canvas side in pixels (>= 8).
        digit_size: ``(smallest, largest)`` side of the drawn digit in pixels, each in 1..image_size.
        seed: fixes every size, position and distractor.
        distractors: dimmed clutter digits per image (>= 0).
        distractor_intensity: their brightness relative to the digit, in (0, 1).

    Returns:
        ``uint8`` array ``(n, image_size, image_size, 3)``, values 0..255, the gray copied to R, G, B.

    Raises:
        ValueError: an ``image_size`` below 8, a ``digit_size`` range that does not fit the
            canvas, a negative number of distractors or an intensity outside (0, 1).
    """
    from PIL import Image

    if isinstance(image_size, bool) or int(image_size) != image_size or image_size < 8:
        raise ValueError(f"image_size must be an integer >= 8 (pixels), got {image_size!r}")
    lo, hi = (int(v) for v in digit_size)
    if not 1 <= lo <= hi <= image_size:
        raise ValueError(
            f"digit_size must be (smallest, largest) with 1 <= smallest <= largest <= image_size={image_size}, got "
            f"{digit_size!r}"
        )
    if isinstance(distractors, bool) or int(distractors) != distractors or distractors < 0:
        raise ValueError(f"distractors must be a whole number >= 0, got {distractors!r}")
    if distractors and not 0 < distractor_intensity < 1:
        raise ValueError(f"distractor_intensity must be between 0 and 1, got {distractor_intensity!r}")
    scans = np.asarray(scans, dtype=np.uint8)
    out = np.zeros((len(scans), image_size, image_size), dtype=np.uint8)

    def paste(canvas, scan, rng, scale=1.0):
        side = int(rng.integers(lo, hi + 1))
        top, left = rng.integers(0, image_size - side + 1, size=2)
        digit = np.asarray(Image.fromarray(scan, mode="L").resize((side, side), Image.Resampling.BILINEAR))
        if scale != 1.0:
            digit = np.round(digit * scale).astype(np.uint8)
        window = canvas[top : top + side, left : left + side]
        np.maximum(window, digit, out=window)

    for i, scan in enumerate(scans):
        rng = np.random.default_rng((seed, i))  # one stream per image: the digit's place does not depend on the clutter
        paste(out[i], scan, rng)
        for _ in range(int(distractors)):
            paste(out[i], scans[rng.integers(len(scans))], rng, distractor_intensity)
    return np.repeat(out[..., None], 3, axis=-1)


def make_task(
    classes: Sequence[int],
    *,
    name: str = "task",
    image_size: int = 32,
    test_fraction: float = 0.5,
    seed: int = 0,
    digit_size: tuple[int, int] | None = None,
    rotations: int = 1,
    train_copies: int = 1,
    distractors: int = 0,
    distractor_intensity: float = 0.5,
) -> Task:
    """A task on the given digit classes, split per class into train and test.

    The scans are split first (stratified, so a scan never appears in both splits), then drawn
    with :func:`place_digits`. Label ``i`` is ``classes[i]``; with ``rotations=r > 1`` every digit
    also appears turned by 0°, 90°, ... and each (digit, turn) pair is its own class, named like
    ``"3@90"``, giving ``r * len(classes)`` classes.

    Args:
        classes: the digits to include (at least two, distinct, each in 0..9).
        name: a name for tables and plots.
        image_size: side of the images in pixels.
        test_fraction: share of every class held out for testing, 0 < f < 1.
        seed: makes the split and the drawing reproducible.
        digit_size: ``(smallest, largest)`` drawn digit side in pixels; ``None`` fills the frame.
        rotations: 1 (upright only), 2 or 4 quarter turns.
        train_copies: how many differently placed copies of each training scan to draw (more
            training images from the same scans; the test split always has one copy).
        distractors, distractor_intensity: dimmed clutter digits, drawn from the same split's
            scans (see :func:`place_digits`).

    Raises:
        ValueError: fewer than two classes, a repeated class, a digit outside 0..9, a
            ``test_fraction`` outside (0, 1), ``rotations`` not in {1, 2, 4} or ``train_copies < 1``.
    """
    from sklearn.model_selection import train_test_split

    classes = [int(c) for c in classes]
    if len(classes) < 2:
        raise ValueError(f"a task needs at least two classes, got {classes!r}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct, got {classes!r}")
    bad = [c for c in classes if not 0 <= c <= 9]
    if bad:
        raise ValueError(f"digits are 0..9; these classes do not exist: {bad!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction!r}")
    if rotations not in (1, 2, 4):
        raise ValueError(f"rotations must be 1, 2 or 4 quarter turns, got {rotations!r}")
    if isinstance(train_copies, bool) or int(train_copies) != train_copies or train_copies < 1:
        raise ValueError(f"train_copies must be a positive integer, got {train_copies!r}")
    if digit_size is None:
        digit_size = (image_size, image_size)
    scans, digits = load_digits_gray()
    keep = np.isin(digits, classes)
    label_of = {digit: label for label, digit in enumerate(classes)}
    y = np.array([label_of[d] for d in digits[keep]], dtype=np.int64)
    s_tr, s_te, y_tr, y_te = train_test_split(scans[keep], y, test_size=test_fraction, stratify=y, random_state=seed)

    def draw(split_scans, split_y, copies, draw_seed):
        turned = np.concatenate([np.rot90(split_scans, k, axes=(1, 2)) for k in range(rotations)])
        labels = np.concatenate([split_y * rotations + k for k in range(rotations)])
        x = np.concatenate(
            [
                place_digits(
                    turned,
                    image_size=image_size,
                    digit_size=digit_size,
                    seed=draw_seed + 1000 * c,
                    distractors=distractors,
                    distractor_intensity=distractor_intensity,
                )
                for c in range(copies)
            ]
        )
        return x, np.tile(labels, copies)

    if rotations == 1:
        names = tuple(str(c) for c in classes)
    else:
        names = tuple(f"{c}@{90 * k}" for c in classes for k in range(rotations))
    x_tr, y_tr = draw(s_tr, y_tr, int(train_copies), seed)
    x_te, y_te = draw(s_te, y_te, 1, seed + 1)
    return Task(name=name, train=Split(x_tr, y_tr, names), test=Split(x_te, y_te, names))


def source_task(profile: Profile | None = None) -> Task:
    """The quick profile's source task: what the backbone learns before it meets the target.

    Digits 0-4, each in four orientations, so 20 classes (a source task with many classes teaches
    more general features than one with few), drawn at random sizes and positions.
    """
    profile = profile or get_profile()
    _require_digits(profile)
    return make_task(
        profile.source_classes,
        name="source",
        image_size=profile.image_size,
        test_fraction=profile.source_test_fraction,
        seed=profile.seed,
        digit_size=profile.digit_size,
        rotations=profile.source_rotations,
        train_copies=profile.source_copies,
        distractors=profile.distractors,
        distractor_intensity=profile.distractor_intensity,
    )


def target_task(profile: Profile | None = None) -> Task:
    """The quick profile's target task: digits 5-9 upright, classes the backbone never saw."""
    profile = profile or get_profile()
    _require_digits(profile)
    return make_task(
        profile.target_classes,
        name="target",
        image_size=profile.image_size,
        test_fraction=profile.test_fraction,
        seed=profile.seed,
        digit_size=profile.digit_size,
        distractors=profile.distractors,
        distractor_intensity=profile.distractor_intensity,
    )


def _require_digits(profile: Profile) -> None:
    if profile.dataset != "digits":
        raise ValueError(
            f"profile {profile.name!r} uses the dataset {profile.dataset!r}, not the digits; "
            "the digits tasks belong to the quick profile (TLBOOK_PROFILE=quick)."
        )


def sample_indices_per_class(
    labels: np.ndarray, labels_per_class: int, *, seed: int = 0, class_names: Sequence[str] | None = None
) -> np.ndarray:
    """Indices of a few-shot subset: ``labels_per_class`` positions drawn at random from every class.

    Args:
        labels: ``(n,)`` integer labels ``0..K-1``.
        labels_per_class: how many labelled examples to keep per class (>= 1).
        seed: the draw depends only on this seed, not on global random state.
        class_names: the K class names, used in error messages; they also fix K, so a class with
            no example at all is noticed (default: K = the largest label + 1, named by number).

    Returns:
        ``int64`` array of ``K * labels_per_class`` indices, class 0's first.

    Raises:
        ValueError: ``labels_per_class`` is below 1 or larger than the smallest class, an empty
            class included (the message names the class and how many examples it holds), or a
            label outside ``0..K-1``.
    """
    n = labels_per_class
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"labels_per_class must be a positive integer, got {n!r}")
    labels = np.asarray(labels)
    k_classes = len(class_names) if class_names is not None else int(labels.max()) + 1
    if labels.min() < 0 or labels.max() >= k_classes:
        raise ValueError(
            f"labels must lie in 0..{k_classes - 1} (one per class name), got {labels.min()}..{labels.max()}"
        )
    counts = np.bincount(labels, minlength=k_classes)
    if n > counts.min():
        k = int(np.argmin(counts))
        name = class_names[k] if class_names is not None else k
        raise ValueError(
            f"asked for {n} labels per class, but class {name!r} has only {counts[k]} examples in this split; "
            f"choose labels_per_class <= {counts.min()}" + (" (or drop the empty class)" if counts.min() == 0 else "")
        )
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == k), size=int(n), replace=False) for k in range(k_classes)]
    ).astype(np.int64)


def sample_per_class(split: Split, labels_per_class: int, *, seed: int = 0) -> Split:
    """A few-shot copy of ``split`` with ``labels_per_class`` images of every class.

    See :func:`sample_indices_per_class` for the draw and its errors; the message names the class
    by its name in ``split.class_names``.
    """
    idx = sample_indices_per_class(split.y, labels_per_class, seed=seed, class_names=split.class_names)
    return Split(split.x[idx], split.y[idx], split.class_names)


def split_labelled(split: Split, labels_per_class: int, *, seed: int = 0) -> tuple[Split, Split]:
    """Split ``split`` into a few-shot labelled part and the rest (for validation).

    Returns:
        ``(labelled, rest)``: ``labelled`` is :func:`sample_per_class`'s draw; ``rest`` holds every
        other image, in the original order. Together they hold each image exactly once.
    """
    idx = sample_indices_per_class(split.y, labels_per_class, seed=seed, class_names=split.class_names)
    rest = np.setdiff1d(np.arange(len(split)), idx)
    return Split(split.x[idx], split.y[idx], split.class_names), Split(split.x[rest], split.y[rest], split.class_names)


def hold_out(split: Split, fraction: float, *, seed: int = 0) -> tuple[Split, Split]:
    """Hold a stratified share of ``split`` out, for validation: every class keeps about the same
    share in both parts (scikit-learn's ``train_test_split`` with ``stratify``).

    Args:
        split: the images to divide, usually a task's training split.
        fraction: the share held out, between 0 and 1 (0.25: a quarter).
        seed: the draw; the same seed gives the same parts.

    Returns:
        ``(kept, held_out)``, each image in exactly one of them, each part in the original order.

    Raises:
        ValueError: ``fraction`` outside (0, 1), or a class with too few images to be in both
            parts (the message names it).
    """
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction!r}")
    counts = np.bincount(split.y, minlength=len(split.class_names))
    for name, count in zip(split.class_names, counts, strict=True):
        if count < 2:
            raise ValueError(f"class {name!r} has {count} image(s); holding a share out needs at least 2 per class")
    kept, held = train_test_split(np.arange(len(split)), test_size=fraction, stratify=split.y, random_state=seed)
    kept, held = np.sort(kept), np.sort(held)
    return (
        Split(split.x[kept], split.y[kept], split.class_names),
        Split(split.x[held], split.y[held], split.class_names),
    )


#: The file :func:`write_image_folder` leaves at the top of every tree it writes: its mark that the
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

    from PIL import Image

    from tlbook.config import cache_lock

    for split in (task.train, task.test):
        for name in split.class_names:
            _check_class_name(name)
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
            for split_name, split in (("train", task.train), ("test", task.test)):
                for name in split.class_names:
                    (tmp / split_name / name).mkdir(parents=True)
                for i, (img, label) in enumerate(zip(split.x, split.y, strict=True)):
                    Image.fromarray(img).save(tmp / split_name / split.class_names[label] / f"{i:05d}.png")
            (tmp / IMAGE_FOLDER_MARK).write_text(f"written by tlbook.data.write_image_folder from task {task.name!r}\n")
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
    :func:`photos_folder` (Tux Paint's stamps) and :func:`tlbook.downloads.flowers_folder`
    (TensorFlow's flowers).

    Raises:
        ValueError: a profile that does not use the digits.
    """
    profile = profile or get_profile()
    _require_digits(profile)
    key = (
        f"digits-{profile.image_size}-{profile.digit_size[0]}-{profile.digit_size[1]}-{profile.distractors}"
        f"-{profile.distractor_intensity:g}-{profile.test_fraction:g}-{profile.seed}"
    )
    return _cached_folder(key, lambda: target_task(profile))


def _cached_folder(key: str, make_task) -> Path:
    """``<cache>/folders/<key>``, written once by :func:`write_image_folder` from ``make_task()``;
    two processes that ask at once (two notebooks) write it once."""
    from tlbook.config import cache_dir, cache_lock

    root = cache_dir() / "folders" / key
    with cache_lock(f"folder-{key}"):
        if not ((root / "train").is_dir() and (root / "test").is_dir()):
            write_image_folder(make_task(), root, overwrite=True)
    return root


def invert_task(task: Task) -> Task:
    """The same task as photographic negatives: every pixel p becomes 255 - p (dark digits on white).

    A distribution shift that leaves the task itself unchanged: the labels and the shapes are the
    same, only what the images look like differs from what a backbone saw in pretraining.
    """
    flip = lambda split: Split((255 - split.x.astype(np.int16)).astype(np.uint8), split.y, split.class_names)  # noqa: E731
    return Task(f"{task.name} (inverted)", flip(task.train), flip(task.test))


def counts_with_share(num_classes: int, majority_class: int, share, total: int) -> np.ndarray:
    """Per-class counts of a split in which one class has exactly ``share`` of ``total`` images and
    the other classes split the rest equally.

    Used to build splits like the article's, where a model that always answers one class scores
    exactly that class's share (3/16 = 0.1875 with ``share=Fraction(3, 16)``).

    Returns:
        ``int64`` array ``(num_classes,)`` summing to ``total``.

    Raises:
        ValueError: the numbers do not divide into whole images, or ``majority_class`` is not a class.
    """
    from fractions import Fraction

    share = Fraction(share)
    if not 0 < share < 1 or num_classes < 2 or not 0 <= majority_class < num_classes:
        raise ValueError(
            f"need 0 < share < 1, num_classes >= 2 and 0 <= majority_class < num_classes; got {share}, "
            f"{num_classes}, {majority_class}"
        )
    major = share * total
    rest = (total - major) / (num_classes - 1)
    if major.denominator != 1 or rest.denominator != 1:
        raise ValueError(
            f"{total} images cannot be split into {share} for one class and equal whole counts for the other "
            f"{num_classes - 1}; "
            f"choose a total that is a multiple of {share.denominator} and leaves a multiple of {num_classes - 1}"
        )
    counts = np.full(num_classes, int(rest), dtype=np.int64)
    counts[majority_class] = int(major)
    return counts


def digits_splits(counts: dict, profile: Profile | None = None, *, seed: int | None = None) -> dict:
    """Disjoint splits of all ten digits with chosen per-class counts, drawn as the profile draws
    its tasks (image size, digit sizes, distractors).

    Args:
        counts: ``{split name: per-class counts (10 entries)}``, for example from
            :func:`counts_with_share`. No scan is used twice across splits.
        profile: whose drawing settings to use (default: the current profile; it must use the digits).
        seed: fixes which scans go where and how they are drawn (default: the profile's seed).

    Returns:
        ``{split name: Split}`` with classes ``"0"`` .. ``"9"``.

    Raises:
        ValueError: a class does not have enough scans for all the splits together (the message
            says how many it has), or a split without 10 counts.
    """
    profile = profile or get_profile()
    _require_digits(profile)
    seed = profile.seed if seed is None else seed
    scans, digits = load_digits_gray()
    names = tuple(str(d) for d in range(10))
    rng = np.random.default_rng(seed)
    for split, c in counts.items():
        if len(c) != 10:
            raise ValueError(f"split {split!r}: give 10 per-class counts (digits 0-9), got {len(c)}")
    picked = {split: [] for split in counts}
    for d in range(10):
        pool = rng.permutation(np.flatnonzero(digits == d))
        need = sum(int(c[d]) for c in counts.values())
        if need > len(pool):
            raise ValueError(f"digit {d} has {len(pool)} scans, the splits ask for {need}")
        start = 0
        for split, c in counts.items():
            picked[split].append(pool[start : start + int(c[d])])
            start += int(c[d])
    out = {}
    for i, (split, parts) in enumerate(picked.items()):
        idx = np.concatenate(parts)
        x = place_digits(
            scans[idx],
            image_size=profile.image_size,
            digit_size=profile.digit_size,
            seed=seed + 1 + i,
            distractors=profile.distractors,
            distractor_intensity=profile.distractor_intensity,
        )
        out[split] = Split(x, digits[idx], names)
    return out


# --- Real photos, offline: Tux Paint's stamps (Debian package, GPL-2) ----------------------------

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


@contextlib.contextmanager
def _deb_data_tar(deb: Path):
    """The ``data.tar.*`` member of a ``.deb`` (an ``ar`` archive), opened as a tar stream (a
    context manager: the file is closed on leaving it).

    Each ``ar`` header is checked before it is followed: its end marker, a size of decimal digits
    that fits in what is left of the file, a name in ASCII. A damaged or crafted header (a
    negative size would seek backwards, forever) raises ``ValueError`` naming the file and the
    header's offset.
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
        with _deb_data_tar(deb) as tar:
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
    """Real photos in five classes (birds, flowers, fruit, mammals, vegetables), as a :class:`Task`.

    The photos are Tux Paint's stamps (Debian package ``tuxpaint-stamps-default`` 2022.06.04-1,
    GPL-2; :data:`tlbook.downloads.TUXPAINT_STAMPS`): cut-out photos, each composited on a plain
    grey background (:func:`composite_on_background`) at ``image_size`` pixels; drawings are left
    out (:func:`stamp_photos`). Each class is split into train and test by ``test_fraction`` with
    ``seed`` (stratified: every class keeps the same share in each). The result is cached (an
    ``.npz`` written atomically, keyed by these settings and the code), so only the first call
    reads the 161 MB package.

    Args:
        download: fetch the package with ``apt-get download`` if it is not cached.
        deb: the path of a ``.deb`` to use instead of the cached one (its SHA-256 is checked).

    Raises:
        tlbook.downloads.DownloadError: the package is not cached and cannot be fetched here
            (another system, offline); the message names the package, its version and SHA-256,
            and where to put the file.
        ValueError: ``deb`` is not the pinned package, or a bad ``image_size`` / ``test_fraction``.
    """
    import hashlib
    import json

    from tlbook import downloads
    from tlbook.config import cache_dir, cache_lock, code_digest
    from tlbook.files import atomic_path, file_digest

    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ValueError(f"image_size must be an integer of at least 8 pixels, got {image_size!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}")
    item = downloads.TUXPAINT_STAMPS
    settings = {"image_size": int(image_size), "test_fraction": test_fraction, "seed": seed, "deb": item.digest}
    key = hashlib.sha256(json.dumps({**settings, "code": code_digest(("data",))}, sort_keys=True).encode())
    path = cache_dir() / "photos" / f"tuxpaint-{item.version}-{key.hexdigest()[:12]}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with cache_lock(path.stem):
        if not path.is_file():
            if deb is not None:
                if file_digest(deb, "sha256") != item.digest:
                    raise ValueError(
                        f"{deb} is not {item.package} {item.version}: its SHA-256 differs from {item.digest}; "
                        "nothing was written"
                    )
                source = Path(deb)
            else:
                source = downloads.debian_package(item, download=download)
            arrays = _split_photos(stamp_photos(source), int(image_size), test_fraction, seed)
            with atomic_path(path, suffix=".npz") as tmp:
                np.savez(tmp, **arrays)
        with np.load(path, allow_pickle=False) as stored:
            names = tuple(str(n) for n in stored["class_names"])
            splits = {s: Split(stored[f"{s}_x"], stored[f"{s}_y"], names) for s in ("train", "test")}
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
    Keras's folder loaders (:func:`load_image_folders`). Written once into the tlbook cache by
    :func:`write_image_folder` (atomic); later calls return it.

    Raises:
        tlbook.downloads.DownloadError: as :func:`photos_task`.
    """
    return _cached_folder(
        f"photos-{image_size}-{test_fraction:g}-{seed}",
        lambda: photos_task(image_size=image_size, test_fraction=test_fraction, seed=seed, download=download),
    )
