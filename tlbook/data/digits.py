"""The digits tasks: the quick profile's source and target tasks, drawn from real handwritten digits.

The quick profile uses scikit-learn's copy of the UCI handwritten digits: 1,797 real 8x8 grayscale
scans (intensities 0..16) that ship inside scikit-learn, so nothing is downloaded. They are drawn
as RGB images in 0..255 at the profile's size, each digit at a random size and position (as the
subject of a photo is), and split into two tasks on disjoint classes: a *source* task (digits 0-4,
in four orientations) that tlbook pretrains a backbone on, and a *target* task (digits 5-9) that
the chapters transfer to. A task is a :class:`Task`: a pair of :class:`Split` objects (images and
labels) over the same classes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from tlbook.config import Profile, get_profile


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
    _check_task_arguments(classes, test_fraction, rotations, train_copies)
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


def _check_task_arguments(classes: list[int], test_fraction: float, rotations: int, train_copies: int) -> None:
    """:func:`make_task`'s checks of its arguments, in order; the first that fails raises ``ValueError``."""
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


def source_task(profile: Profile | None = None) -> Task:
    """The quick profile's source task: what the backbone learns before it meets the target.

    Digits 0-4, each in four orientations, so 20 classes (a source task with many classes teaches
    more general features than one with few), drawn at random sizes and positions.
    """
    profile = profile or get_profile()
    require_digits(profile)
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
    require_digits(profile)
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


def require_digits(profile: Profile) -> None:
    """Refuse a profile that does not use the digits: the digits tasks, and the image folder
    written from them, belong to the quick profile.

    Raises:
        ValueError: ``profile.dataset`` is not ``"digits"``; the message names the profile and its dataset.
    """
    if profile.dataset != "digits":
        raise ValueError(
            f"profile {profile.name!r} uses the dataset {profile.dataset!r}, not the digits; "
            "the digits tasks belong to the quick profile (TLBOOK_PROFILE=quick)."
        )


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
    require_digits(profile)
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
