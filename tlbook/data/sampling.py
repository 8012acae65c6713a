"""Few-shot sampling: a few labelled images per class drawn from a split, and what is held out.

A transfer-learning chapter asks how well a model does with n labelled images per class. These
functions draw those n from every class (:func:`sample_indices_per_class`, :func:`sample_per_class`),
keep the rest for validation (:func:`split_labelled`), or hold a stratified share out
(:func:`hold_out`). Every draw depends only on its seed. Splits are :class:`tlbook.data.digits.Split`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tlbook.data.digits import Split


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
