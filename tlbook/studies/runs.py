"""What every run of a study shares: its labelled images and how it is scored."""

from __future__ import annotations

import numpy as np


def labelled_subset(split, labels_per_class, seed):
    """``(labelled, rest)``: ``labels_per_class`` images per class drawn with ``seed`` from ``split``
    (:func:`tlbook.data.sampling.split_labelled`) and the rest of it, for validation; ``"all"`` gives the
    whole split and ``None``."""
    from tlbook.data import split_labelled

    if labels_per_class == "all":
        return split, None
    return split_labelled(split, int(labels_per_class), seed=seed)


def accuracy_on(model, x, y) -> float:
    """Accuracy of ``model`` on images ``x`` (0..255) with labels ``y``: a fraction in [0, 1]."""
    return float(model.evaluate(np.asarray(x, dtype="float32"), y, batch_size=256, verbose=0)[1])
