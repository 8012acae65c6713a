"""Training recipes: steps over a repeating dataset, the head on cached features, and two-phase fine-tuning.

The models they train are built in :mod:`tlbook.models`. Every function here that creates
variables (the builders there too) does so inside ``strategy.scope()`` when given a
``tf.distribute.Strategy`` (for example ``MirroredStrategy`` over several GPUs, or a TPU
strategy), so the same code runs on one CPU or many accelerators. Without a strategy, Keras's
default (one device) is used.

Training is counted in optimizer *steps* over a shuffled, repeating dataset rather than in epochs:
with 5 labelled images an "epoch" is one step, with 500 it is sixteen, and step counts compare
runs across label budgets fairly.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tlbook.config import seeded


def repeating_dataset(x, y, *, batch_size: int = 32, seed: int = 0):
    """``(x, y)`` as an endlessly repeating ``tf.data.Dataset``, reshuffled every pass (seeded).

    Raises:
        ValueError: empty data or ``x`` and ``y`` of different lengths.
    """
    import tensorflow as tf

    x, y = np.asarray(x, dtype="float32"), np.asarray(y)
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"need the same, non-zero number of images and labels, got {len(x)} and {len(y)}")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.repeat().batch(min(batch_size, len(x)))


def fit_steps(
    model,
    x,
    y,
    steps: int,
    *,
    chunk: int | None = None,
    validation=None,
    batch_size: int = 32,
    seed: int = 0,
    initial_epoch: int = 0,
) -> dict:
    """Train ``model`` for ``steps`` optimizer steps, reporting every ``chunk`` steps as one "epoch".

    Args:
        validation: ``(x, y)`` evaluated at the end of each chunk, or ``None``.
        initial_epoch: for a second phase, ``len(first_history["loss"])``, so the epochs of the
            two phases number on (Keras's ``initial_epoch``).

    Returns:
        Keras's ``history.history`` dict, one value per chunk.

    Raises:
        ValueError: ``steps`` or ``chunk`` below 1, or ``steps`` not a multiple of ``chunk``.
    """
    chunk = chunk or steps
    if steps < 1 or chunk < 1 or steps % chunk:
        raise ValueError(f"steps ({steps}) must be a positive multiple of chunk ({chunk})")
    history = model.fit(
        repeating_dataset(x, y, batch_size=batch_size, seed=seed),
        steps_per_epoch=chunk,
        epochs=initial_epoch + steps // chunk,
        initial_epoch=initial_epoch,
        validation_data=validation,
        verbose=0,
        shuffle=False,  # the dataset shuffles itself
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def copy_head(source, target) -> None:
    """Copy the ``hidden`` and ``head`` weights of one model into another (same shapes)."""
    from tlbook.models import HEAD, HIDDEN

    for name in (HIDDEN, HEAD):
        target.get_layer(name).set_weights(source.get_layer(name).get_weights())


@dataclasses.dataclass
class FineTuneResult:
    """A two-phase run: ``history`` holds both phases, one value per chunk of steps;
    ``finetune_start`` is the 1-based chunk where phase 2 begins (``None`` if there was none)."""

    model: object
    history: dict
    finetune_start: int | None


def fine_tune(
    model,
    x,
    y,
    validation=None,
    *,
    head_steps: int = 200,
    finetune_steps: int = 100,
    chunk: int = 50,
    finetune_lr: float = 1e-4,
    unfreeze_from: str | None = "conv3",
    recompile: bool = True,
    keep_batchnorm_frozen: bool = True,
    seed: int = 0,
    batch_size: int = 32,
    strategy=None,
) -> FineTuneResult:
    """Two-phase fine-tuning, the way the Keras guide does it.

    Phase 1 trains the head on the frozen base (``head_steps``; 0 skips it). Phase 2 unfreezes the
    base from ``unfreeze_from`` on (:func:`tlbook.models.inspection.set_trainable`; ``None`` = the whole
    base), recompiles with Adam at ``finetune_lr`` (``recompile=False`` reproduces the classic
    mistake: Keras keeps training only the head), and trains ``finetune_steps`` more, its epochs
    numbered on from phase 1 (``initial_epoch=len(history["loss"])``). BatchNorm layers stay
    frozen, on their pretrained statistics (``keep_batchnorm_frozen=False`` reproduces the mistake
    of letting them normalise with small-batch statistics and overwrite their moving averages).
    Pass the ``strategy`` the model was built under, so the new optimizer is created in it.

    Returns:
        :class:`FineTuneResult`.
    """
    import keras

    from tlbook.models import BASE, set_trainable, strategy_scope

    with seeded(seed):  # seeds this run only; the caller's random state is left as it was
        history = (
            fit_steps(model, x, y, head_steps, chunk=chunk, validation=validation, batch_size=batch_size, seed=seed)
            if head_steps
            else {}
        )
        start = len(history.get("loss", [])) + 1
        if finetune_steps:
            base = model.get_layer(BASE)
            set_trainable(base, unfreeze_from or base.layers[0].name, keep_batchnorm_frozen)
            if recompile:
                with strategy_scope(strategy):
                    model.compile(optimizer=keras.optimizers.Adam(finetune_lr), loss=model.loss, metrics=["accuracy"])
            more = fit_steps(
                model,
                x,
                y,
                finetune_steps,
                chunk=chunk,
                validation=validation,
                batch_size=batch_size,
                seed=seed + 1,
                initial_epoch=start - 1,
            )
            history = {k: history.get(k, []) + more[k] for k in more}
    return FineTuneResult(model, history, start if finetune_steps else None)


def recalibrate_batchnorm(model, x, batch_size: int = 512) -> int:
    """Replace every BatchNorm layer's moving statistics by the statistics of ``x``.

    A network trained from scratch on few images for few hundred steps evaluates with moving
    averages that lag behind its weights; its test accuracy then jumps from step to step even
    though its training accuracy is 100 %. One pass over the training images in training mode,
    averaging the batch statistics weighted by batch size (momentum seen/(seen + this batch)),
    makes the inference statistics those of the final network. Weights are not changed.

    The means are then exactly the means over ``x``. The variances are the size-weighted mean of
    the batches' variances: exact when ``x`` fits in one batch (up to ``batch_size`` images, the
    book's few-shot sets), slightly low otherwise (the spread between batch means is left out).

    Returns:
        The number of BatchNorm layers recalibrated.
    """
    from tlbook.models import batchnorm_layers

    bns = [bn for _, bn in batchnorm_layers(model)]
    if not bns:
        return 0
    x = np.asarray(x, dtype="float32")
    saved = [bn.momentum for bn in bns]
    try:
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size]
            for bn in bns:
                bn.momentum = start / (start + len(batch))  # 0 for the first batch: its statistics replace the old
            model(batch, training=True)
    finally:
        for bn, m in zip(bns, saved, strict=True):
            bn.momentum = m
    return len(bns)
