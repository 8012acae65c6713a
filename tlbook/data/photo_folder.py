"""Your own photo folder: checked whole before training, then read the way a new photo is read.

Chapter 9 takes a learner's folder ``train/<class>/`` and ``test/<class>/`` from wherever it is
(:func:`photos_dir`: an argument, else ``TLBOOK_PHOTOS_DIR``, else the book's own photos).
:func:`check_photo_folder` opens every file once and reports, in one :class:`FolderReport`, every
file it cannot use (by path and why), the junk it skips, the image types it found, what it will do
to the rest (orientation, transparency, colour, crop) and classes too small or too unbalanced to
trust. :func:`load_photo_folder` then reads the usable photos with :func:`~tlbook.data.photo.read_photo` - the same
function a new photo goes through later - into arrays, with a stratified validation share.

Why not ``keras.utils.image_dataset_from_directory`` alone: it ignores the EXIF orientation tag a
phone writes (a portrait photo trains lying on its side), drops transparency to whatever colours
the transparent pixels happen to hold (often black), stops mid-epoch at a corrupt file without
naming it, reads ``test/`` with its own class list (a missing class shifts every label), and holds
out an unstratified share for validation.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tlbook.data.digits import Split
from tlbook.data.folders import ImageFolderError, image_size_pair
from tlbook.data.photo import BACKGROUND, UnusablePhoto, open_photo, read_photo, upright_rgb

#: The environment variable that points Chapter 9 at a folder of photos (a workshop sets it once).
PHOTOS_DIR_ENV = "TLBOOK_PHOTOS_DIR"
#: Files an operating system leaves in folders, skipped as Keras skips them (so are ``._*`` files,
#: the AppleDouble copies macOS writes beside each file on a foreign disk).
JUNK_FILES = (".DS_Store", "Thumbs.db", "desktop.ini", "Icon\r")
#: The widest line of a printed :class:`FolderReport` (the book's notebooks print at most 88).
REPORT_WIDTH = 88
#: The two splits of a photo folder, in the order they are read.
FOLDER_SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class FileNote:
    """One file the check did not use, and why.

    Attributes:
        path: the file, relative to the folder checked (``train/cats/IMG_1.jpg``).
        reason: what is wrong, or why it was skipped, and what to do.
    """

    path: str
    reason: str


@dataclasses.dataclass(frozen=True)
class FolderReport:
    """What :func:`check_photo_folder` found in a photo folder.

    Attributes:
        root: the folder checked.
        class_names: the class folders of ``train/``, sorted (label ``k`` is ``class_names[k]``).
        counts: usable photos per split and class, ``{"train": {"cats": 40, ...}, "test": {...}}``.
        formats: usable photos per image type (``{"JPEG": 50, "PNG": 3}``).
        bad: every file that cannot be used (corrupt, truncated, not an image, too large).
        skipped: junk skipped on purpose (``.DS_Store``, ``Thumbs.db``, ``._*``, hidden folders).
        conversions: what reading does to usable photos, with counts (``{"EXIF orientation
            applied": 2, "transparency composited on grey (128, 128, 128)": 3, ...}``).
        errors: problems of the folder as a whole that stop loading (no ``train/``, a class folder
            with no usable photo, test classes that differ from train's).
        warnings: problems that do not stop loading but weaken the result (a class with few
            photos, unbalanced classes), with the numbers.
    """

    root: Path
    class_names: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    formats: dict[str, int]
    bad: tuple[FileNote, ...]
    skipped: tuple[FileNote, ...]
    conversions: dict[str, int]
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when the folder can be loaded as it is: no bad file and no error."""
        return not self.bad and not self.errors

    def __str__(self) -> str:
        """The report as text, every line at most :data:`REPORT_WIDTH` characters (a notebook's column)."""
        import textwrap

        lines = [f"{len(self.class_names)} classes: {', '.join(self.class_names) or '(none)'}"]
        for split in FOLDER_SPLITS:
            counts = self.counts.get(split, {})
            per_class = ", ".join(f"{name} {n}" for name, n in counts.items())
            lines.append(f"{split}: {sum(counts.values())} photos ({per_class or 'none'})")
        types = ", ".join(f"{fmt} {n}" for fmt, n in sorted(self.formats.items()))
        lines.append(f"image types: {types or 'none'}")
        sections = (
            ("bad files (fix or remove them)", [f"{n.path}: {n.reason}" for n in self.bad]),
            ("errors", list(self.errors)),
            ("skipped", [f"{n.path}: {n.reason}" for n in self.skipped]),
            ("reading will", [f"{what}: {n} photo{'s' * (n != 1)}" for what, n in self.conversions.items()]),
            ("warnings", list(self.warnings)),
        )
        for title, items in sections:
            if items:
                lines.append(f"{title}:")
                lines.extend(f"  - {item}" for item in items)
            elif title.startswith("bad"):
                lines.append("bad files: none")
        wrapped = [
            textwrap.fill(line, REPORT_WIDTH, subsequent_indent="    ", break_on_hyphens=False) for line in lines
        ]
        return "\n".join(wrapped)


@dataclasses.dataclass(frozen=True)
class PhotoSplits:
    """A photo folder read into arrays by :func:`load_photo_folder`.

    Attributes:
        train: the training photos (``uint8`` ``(n, height, width, 3)``) and labels, less the
            validation share.
        validation: the stratified validation share of ``train/``, or ``None`` when none was
            asked for.
        test: the ``test/`` photos, in folder order, labelled with the training split's classes.
        report: the check the folder passed (:func:`check_photo_folder`).
    """

    train: Split
    validation: Split | None
    test: Split
    report: FolderReport

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names, in label order."""
        return self.train.class_names


def photos_dir(folder: str | os.PathLike | None = None) -> Path:
    """The photo folder Chapter 9 reads: ``folder`` if given, else ``$TLBOOK_PHOTOS_DIR`` if set,
    else the book's own photos (:func:`~tlbook.data.photos.photos_folder`, fetched if needed).

    Raises:
        FileNotFoundError: the folder given (or named by the variable) does not exist; the message
            names it and says where it came from.
    """
    source = "the folder given"
    if folder is None and os.environ.get(PHOTOS_DIR_ENV):
        folder, source = os.environ[PHOTOS_DIR_ENV], f"{PHOTOS_DIR_ENV}"
    if folder is None:
        from tlbook.data.photos import photos_folder

        return photos_folder()
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"photo folder {str(path)!r} ({source}) is not a directory; point it at a folder holding "
            "train/<class>/ and test/<class>/"
        )
    return path


def photos_credit(folder: str | os.PathLike | None = None) -> str | None:
    """The credit line for figures of the photos :func:`photos_dir` picks for the same ``folder``:
    the book's photos' licence notice (:data:`~tlbook.data.photos.PHOTOS_CREDIT`) when it picks
    them, ``None`` for a reader's own folder (whose photos are the reader's to credit)."""
    if folder is None and not os.environ.get(PHOTOS_DIR_ENV):
        from tlbook.data.photos import PHOTOS_CREDIT

        return PHOTOS_CREDIT
    return None


def check_photo_folder(
    folder: str | os.PathLike, *, min_per_class: int = 10, image_size: int | tuple[int, int] = (224, 224)
) -> FolderReport:
    """Open every file of a photo folder once, and report all that is wrong with it at once.

    The folder holds ``train/<class>/`` and ``test/<class>/`` (files in sub-folders of a class
    folder count for the class). Every file is decoded completely, as training would decode it.

    Checks made, each reported by path (relative to ``folder``):

    - **bad files**: not an image (a text file, an unsupported type such as HEIC), corrupt or
      truncated, a link to nothing, larger than Pillow's ``MAX_IMAGE_PIXELS`` (refused before it
      is decoded);
    - **skipped**: junk an operating system leaves (:data:`JUNK_FILES`, ``._*``), hidden folders
      (``.ipynb_checkpoints``), files outside any class folder;
    - **image types** found (:data:`~tlbook.data.photo.PHOTO_FORMATS`) and **what reading will do**: apply an EXIF
      orientation, composite transparency on grey, convert grayscale, palette or CMYK to RGB,
      crop to the aspect ratio of ``image_size``, resize;
    - **errors**: no ``train/`` or ``test/`` folder, no class folder, a class without a usable
      photo in ``train/``, ``test/`` classes that differ from ``train/``'s (named);
    - **warnings**: a class with fewer than ``min_per_class`` training photos or no test photo, and
      classes whose training counts differ by more than a factor of two (the numbers given).

    Args:
        folder: the photo folder.
        min_per_class: the training photos per class below which a class is reported as small.
        image_size: the size the photos will be read at, ``(height, width)``.

    Returns:
        a :class:`FolderReport`; print it to read it.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(
            f"photo folder {str(root)!r} is not a directory; it should hold train/<class>/ and test/<class>/"
        )
    size = image_size_pair(image_size)
    found = _Found()
    classes: dict[str, list[str]] = {}
    for split in FOLDER_SPLITS:
        if not (root / split).is_dir():
            found.errors.append(
                f"no {split}/ folder in the photo folder; put one folder per class under {split}/ "
                f"({split}/cats/, {split}/dogs/, ...)"
            )
            continue
        classes[split] = _class_names(root, split, found)
        for name in classes[split]:
            found.counts[split][name] = sum(
                _check_file(root, path, size, found) for path in _photo_files(root, root / split / name, found)
            )
    names = classes.get("train", [])
    _check_classes(names, classes.get("test"), found, min_per_class)
    return FolderReport(
        root=root,
        class_names=tuple(names),
        counts={split: dict(found.counts[split]) for split in FOLDER_SPLITS if split in classes},
        formats=dict(found.formats),
        bad=tuple(found.bad),
        skipped=tuple(found.skipped),
        conversions=dict(found.conversions),
        errors=tuple(found.errors),
        warnings=tuple(found.warnings),
    )


def load_photo_folder(
    folder: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] = (224, 224),
    validation_split: float | None = 0.25,
    seed: int = 0,
    background: Sequence[int] = BACKGROUND,
    skip_bad: bool = False,
    min_per_class: int = 10,
) -> PhotoSplits:
    """Check a photo folder (:func:`check_photo_folder`), then read every usable photo with
    :func:`~tlbook.data.photo.read_photo` into arrays, with one class list for every split.

    Args:
        folder: the photo folder, ``train/<class>/`` and ``test/<class>/``.
        image_size: ``(height, width)`` of every photo read, as Keras takes it.
        validation_split: the share of ``train/`` held out for validation, stratified (every class
            keeps about this share in both parts; :func:`~tlbook.data.sampling.hold_out`), the same
            draw for the same ``seed``; ``None`` holds nothing out.
        seed: the validation draw.
        background: the RGB colour behind transparent pixels.
        skip_bad: read the folder although the check found bad files, leaving them out (they are
            listed in the report); without it the bad files stop the load.
        min_per_class: passed to the check (a warning only).

    Returns:
        a :class:`PhotoSplits`: ``uint8`` arrays ``(n, height, width, 3)`` and ``int64`` labels.
        Memory: about ``3 × height × width`` bytes a photo (150 KB at 224×224).

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
        ImageFolderError: the check found errors, or bad files and ``skip_bad`` is false; the
            message is the whole report, every problem at once.
        ValueError: a bad ``validation_split``, or a class with too few photos to hold a share out.
    """
    from tlbook.data.sampling import hold_out

    size = image_size_pair(image_size)
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be between 0 and 1 (or None), got {validation_split!r}")
    report = check_photo_folder(folder, min_per_class=min_per_class, image_size=size)
    if report.errors or (report.bad and not skip_bad):
        advice = "fix or remove the files listed, or pass skip_bad=True to leave the bad files out"
        raise ImageFolderError(f"the photo folder {str(report.root)!r} cannot be read as it is ({advice}):\n{report}")
    bad = {note.path for note in report.bad}
    splits = {}
    for split in FOLDER_SPLITS:
        images, labels = [], []
        for label, name in enumerate(report.class_names):
            for path in _photo_files(report.root, report.root / split / name, _Found()):
                if _relative(report.root, path) not in bad:
                    images.append(read_photo(path, image_size=size, background=background))
                    labels.append(label)
        x = np.stack(images) if images else np.zeros((0, *size, 3), np.uint8)
        splits[split] = Split(x, np.array(labels, dtype=np.int64), report.class_names)
    train, validation = splits["train"], None
    if validation_split is not None:
        train, validation = hold_out(train, validation_split, seed=seed)
    return PhotoSplits(train=train, validation=validation, test=splits["test"], report=report)


# --- the check's parts ---------------------------------------------------------------------------


@dataclasses.dataclass
class _Found:
    counts: dict = dataclasses.field(default_factory=lambda: {split: {} for split in FOLDER_SPLITS})
    formats: Counter = dataclasses.field(default_factory=Counter)
    conversions: Counter = dataclasses.field(default_factory=Counter)
    bad: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    errors: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)


def _relative(root: Path, path: Path) -> str:
    """The path as the report prints it: relative to the folder, with ``/``, printable."""
    text = path.relative_to(root).as_posix()
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _class_names(root: Path, split: str, found: _Found) -> list[str]:
    names = []
    for entry in sorted((root / split).iterdir()):
        if entry.name.startswith(".") or entry.name in JUNK_FILES:
            found.skipped.append(FileNote(_relative(root, entry), "hidden or system file, skipped as Keras skips it"))
        elif entry.is_dir():
            names.append(entry.name)
        else:
            found.skipped.append(
                FileNote(_relative(root, entry), f"not in a class folder; move it into {split}/<class>/ to use it")
            )
    if not names:
        found.errors.append(f"{split}/ holds no class folder; put each class's photos in {split}/<class name>/")
    return names


def _photo_files(root: Path, folder: Path, found: _Found) -> list[Path]:
    """The files of a class folder, sub-folders included, walked without following links (a link
    loop ends the walk), hidden folders and junk files skipped and noted in ``found``."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for d in sorted(dirnames):
            if d.startswith("."):
                found.skipped.append(FileNote(_relative(root, Path(dirpath) / d), "hidden folder, not read"))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name in JUNK_FILES or name.startswith("._"):
                found.skipped.append(FileNote(_relative(root, path), "system file, skipped as Keras skips it"))
            elif name.startswith("."):
                found.skipped.append(FileNote(_relative(root, path), "hidden file, skipped"))
            else:
                out.append(path)
    return out


def _check_file(root: Path, path: Path, size: tuple[int, int], found: _Found) -> bool:
    """Decode one file completely; note what reading it will do, or why it cannot be used."""
    try:
        with open_photo(path) as image:
            image.draft(None, (max(size),) * 2)
            upright, done = upright_rgb(image, BACKGROUND)
            fmt = image.format
    except UnusablePhoto as exc:
        found.bad.append(FileNote(_relative(root, path), str(exc)))
        return False
    found.formats["JPEG" if fmt == "MPO" else fmt] += 1
    height, width = size
    if upright.width * height != upright.height * width:
        done.append(f"crop the centre to the aspect ratio {width}:{height}")
    if (upright.height, upright.width) != size:
        done.append(f"resize to {height}×{width}")
    found.conversions.update(done)
    return True


def _check_classes(names: list[str], test: list[str] | None, found: _Found, min_per_class: int) -> None:
    train_counts = found.counts["train"]
    for name in names:
        if train_counts.get(name, 0) == 0:
            found.errors.append(f"class {name!r} has no usable photo in train/; add photos or remove the folder")
        elif train_counts[name] < min_per_class:
            found.warnings.append(
                f"class {name!r} has {train_counts[name]} training photos, fewer than {min_per_class}: "
                "its accuracy will be noisy; add photos if you can"
            )
    if test is not None and test != names:
        missing = sorted(set(names) - set(test))
        extra = sorted(set(test) - set(names))
        detail = "; ".join(
            part
            for part in (
                f"missing from test/: {', '.join(missing)}" if missing else "",
                f"only in test/: {', '.join(extra)}" if extra else "",
            )
            if part
        )
        found.errors.append(
            f"test/ has other classes than train/ ({detail}); every split needs the same class folders, "
            "or label k means different classes in each"
        )
    elif test is not None:
        for name in names:
            if found.counts["test"].get(name, 0) == 0:
                found.warnings.append(f"class {name!r} has no usable test photo: its test accuracy cannot be measured")
    counted = [n for n in train_counts.values() if n > 0]
    if len(counted) > 1 and max(counted) > 2 * min(counted):
        largest = max(train_counts, key=train_counts.get)
        smallest = min((k for k in train_counts if train_counts[k] > 0), key=train_counts.get)
        found.warnings.append(
            f"unbalanced classes: {largest!r} has {train_counts[largest]} training photos, {smallest!r} "
            f"{train_counts[smallest]}; accuracy then rewards predicting the large class (read the "
            "confusion matrix and each class's recall, not accuracy alone)"
        )
