"""Progress bars for the computations that take minutes: a learner should see that something runs.

Pretraining the source backbone, the studies of chapters 6 and 7 and long feature extractions
show a bar (``tqdm.auto``: a widget in Jupyter, a line of text in a terminal) saying what is being
computed and how far it is. The bar disappears when the work is done, so a finished notebook looks
the same with or without it.

``TLBOOK_PROGRESS=0`` turns the bars off. The Makefile sets it for ``make test`` and
``make execute``: the stored outputs and the notebook check must not contain a bar, whose text
(rates, times) differs on every run.

Why not tqdm's own switches (tqdm 4.70): ``TQDM_DISABLE`` does not reach the bars a notebook shows
(``tqdm.notebook`` passes ``disable`` itself, and an environment variable only changes a default),
it is read once, when tqdm is imported, and ``TQDM_DISABLE=0`` turns the bars *off* (its value goes
through ``bool("0")``). ``tqdm.keras.TqdmCallback`` draws bars of its own for ``fit`` and none for
``predict``, which feature extraction needs; :func:`keras_callback` advances a bar made here.
"""

from __future__ import annotations

import os

PROGRESS_ENV = "TLBOOK_PROGRESS"
_OFF = ("0", "false", "no", "off")


def enabled() -> bool:
    """False when ``TLBOOK_PROGRESS`` is ``0``, ``false``, ``no`` or ``off`` (any case); True otherwise."""
    return os.environ.get(PROGRESS_ENV, "").strip().lower() not in _OFF


def progress_bar(total: int, *, desc: str, unit: str = "step"):
    """A progress bar of ``total`` units, updated with ``bar.update(n)`` and closed with ``bar.close()``
    (or used as a context manager); it does nothing when :func:`enabled` is False.

    Args:
        total: how many units the work has (for example runs of a study, or epochs).
        desc: what is being computed, in words a learner understands ("pretraining the source backbone").
        unit: the name of one unit ("run", "epoch", "batch").

    Raises:
        ValueError: ``total`` is not a positive integer, or ``desc`` is empty.
    """
    from tqdm.auto import tqdm

    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise ValueError(f"total must be a positive integer, got {total!r}")
    if not isinstance(desc, str) or not desc.strip():
        raise ValueError("desc must say what is being computed")
    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=not enabled())


def keras_callback(bar, *, unit: str = "epoch"):
    """A Keras callback that advances ``bar`` by one at the end of every epoch of ``fit``
    (``unit="epoch"``) or of every batch of ``predict`` (``unit="batch"``).

    Raises:
        ValueError: another ``unit``.
    """
    import keras

    if unit not in ("epoch", "batch"):
        raise ValueError(f"unit must be 'epoch' (fit) or 'batch' (predict), got {unit!r}")

    class _Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if unit == "epoch":
                bar.update(1)

        def on_predict_batch_end(self, batch, logs=None):
            if unit == "batch":
                bar.update(1)

    return _Progress()
