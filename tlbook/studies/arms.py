"""The arms Chapter 7 compares, each trained by one function on one draw of labelled images:
from scratch, the head alone on frozen features, AdaBN, and fine-tuning that unfreezes the top
block, the early layers, the whole base at once (after AdaBN or not) or the whole base gradually.

Every arm gets the same number of optimizer steps (:func:`arm_steps`, the scratch baseline's
rule), and every fine-tuning arm starts from the head-only arm's trained head, so "fine-tuning
arm minus head only" on the same seed is exactly what the fine-tuning phase added.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time

import numpy as np

from tlbook.config import seeded
from tlbook.studies.pool import keep_result, reuse_model
from tlbook.studies.runs import accuracy_on

#: The fine-tuning arms: the base layers each unfreezes, stage by stage, top first (one stage:
#: all at once; :func:`tlbook.finetuning.gradual_unfreeze`). BatchNorm layers stay frozen in all of them.
UNFREEZE = {
    "top block": (("conv3",),),
    "early layers": (("conv1",),),
    "full": (("conv3", "conv2", "conv1"),),
    "AdaBN + full": (("conv3", "conv2", "conv1"),),
    "gradual": (("conv3",), ("conv2",), ("conv1",)),
}

#: The arms that first re-estimate the base's BatchNorm statistics on the unlabelled target images
#: (:func:`tlbook.finetuning.adapt_batchnorm`) and train their head on the adapted features.
ADAPTED = ("AdaBN", "AdaBN + full")

#: Every arm, in the tables' order: the baseline, the frozen recipes, then more and more unfrozen.
ARMS = ("scratch", "head only", "AdaBN", "top block", "early layers", "full", "AdaBN + full", "gradual")

#: The head's learning rate in a fine-tuning arm, as a multiple of the base's (D2L's 10x).
HEAD_RATE_FACTOR = 10


def arm_steps(scratch_steps: int, n_images: int, *, chunk: int = 50, min_epochs: int = 25, batch_size: int = 32) -> int:
    """Optimizer steps every arm trains on ``n_images`` labelled images: the scratch baseline's tuned
    number (``scratch_steps``), or ``min_epochs`` passes over the data if that is more (a larger
    budget needs more steps to be seen enough), rounded up to whole chunks.

    Raises:
        ValueError: a count below 1.
    """
    if min(scratch_steps, n_images, chunk, min_epochs, batch_size) < 1:
        raise ValueError(
            f"steps, images, chunk, epochs and batch size must be >= 1, got {scratch_steps}, {n_images}, {chunk}, "
            f"{min_epochs}, {batch_size}"
        )
    steps = max(int(scratch_steps), min_epochs * -(-n_images // batch_size))
    return -(-steps // chunk) * chunk


@dataclasses.dataclass(frozen=True)
class ArmData:
    """What one run of an arm trains and is scored on.

    Attributes:
        x, y: the labelled images ``(n, h, w, 3)`` (0..255, float32) and their labels ``(n,)``.
        test_x, test_y: the test split.
        features, test_features: φ of the labelled and the test images from the frozen pretrained
            base, ``(n, d)`` and ``(n_test, d)`` (the head-only arm and every fine-tuning arm's first phase).
        adapted, test_adapted: the same from the base after AdaBN on the target (``None`` when not needed).
        unlabelled: every training image of the target, labels unused ``(N, h, w, 3)``: what AdaBN
            estimates the statistics on (``None`` when no arm of :data:`ADAPTED` runs).
    """

    x: np.ndarray
    y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    features: np.ndarray | None
    test_features: np.ndarray | None
    adapted: np.ndarray | None = None
    test_adapted: np.ndarray | None = None
    unlabelled: np.ndarray | None = None


def train_arm(
    arm: str,
    data: ArmData,
    *,
    num_classes: int,
    profile,
    seed: int,
    steps: int,
    learning_rate: float,
    head_learning_rate: float,
    chunk: int = 50,
    curve: bool = True,
) -> list[tuple[float, float]]:
    """Train one arm and return its curve: ``(seconds since the start, test accuracy)`` after each
    ``chunk`` of steps (the head-only and AdaBN arms: one point at the end).

    The head that a fine-tuning arm starts from is the head-only (or AdaBN) arm's of the same draw:
    within a study (:func:`~tlbook.studies.pool.run_all`) it is trained once per process and
    handed, the same bits, to the draw's other arms (:func:`~tlbook.studies.pool.keep_result`);
    its training seconds count in every arm's curve all the same.

    Args:
        arm: one of :data:`ARMS`.
        steps: optimizer steps of the arm's own phase (:func:`arm_steps`).
        learning_rate: the scratch network's rate (``"scratch"``) or the base's rate (fine-tuning
            arms; the head trains at :data:`HEAD_RATE_FACTOR` times it); unused by the frozen arms.
        head_learning_rate: the head-only arm's Adam rate, also the rate of every fine-tuning arm's
            first phase (the head alone on frozen features, ``steps`` steps).
        curve: ``False``: score only the end (one point), which saves a test pass per chunk; the
            training and its final accuracy are the same bits.

    Raises:
        ValueError: an unknown arm, an arm that needs features the data lacks, or (scratch, which
            recalibrates its BatchNorm after each chunk) ``steps`` not a multiple of ``chunk``.
    """
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of {', '.join(ARMS)}")
    if arm == "scratch" and steps % chunk:
        raise ValueError(f"the scratch arm trains whole chunks: steps ({steps}) must be a multiple of chunk ({chunk})")
    start = time.perf_counter()
    if arm == "scratch":
        return _scratch(data, num_classes, profile, seed, steps, learning_rate, chunk, start, curve)
    if arm in ADAPTED and (data.adapted is None or data.unlabelled is None):
        raise ValueError(
            f"the {arm} arm needs ArmData.adapted, test_adapted (features after adapt_batchnorm) and unlabelled"
        )
    features, test_features = (
        (data.adapted, data.test_adapted) if arm in ADAPTED else (data.features, data.test_features)
    )
    head, head_seconds = _head(features, data.y, num_classes, seed, steps, head_learning_rate)
    start = time.perf_counter() - head_seconds  # the head's training counts, trained here or not
    if arm in ("head only", "AdaBN"):
        return [(time.perf_counter() - start, accuracy_on(head, test_features, data.test_y))]
    return _fine_tune(arm, data, head, num_classes, profile, seed, steps, learning_rate, chunk, start, curve)


def _head(features, y, num_classes, seed, steps, learning_rate):
    """``(head, seconds)``: the article's head trained alone on frozen features (the head-only arm,
    and phase 1 of fine-tuning), and the seconds its training took. Trained once per process and
    study for the same features, labels and settings (every arm of a draw), kept as its weights."""
    from tlbook import models, training

    begin = time.perf_counter()  # building the head counts too, as it did before heads were kept
    features, y = np.ascontiguousarray(features), np.ascontiguousarray(y)
    digest = hashlib.sha256(features.tobytes() + y.tobytes()).hexdigest()
    key = ("head", features.shape[1], num_classes, learning_rate)
    fresh = models.head_model(features.shape[1], num_classes, learning_rate=learning_rate, seed=seed)
    head, _ = reuse_model(key, fresh)

    def train():
        with seeded(seed):
            training.fit_steps(head, features, y, steps, seed=seed)
        return head.get_weights(), time.perf_counter() - begin

    weights, seconds = keep_result(("trained head", digest, features.shape, key, seed, steps), train)
    head.set_weights(weights)
    return head, seconds


def _scratch(data, num_classes, profile, seed, steps, learning_rate, chunk, start, scored=True):
    """Random weights trained in chunks, BatchNorm recalibrated after each; a point per chunk (with
    ``scored`` false, recalibrated and scored after the last only: the recalibration replaces the
    statistics whole, and training uses batch statistics, so the end is the same bits)."""
    from tlbook import models, training

    model, reused = reuse_model(
        ("scratch", num_classes, repr(profile), learning_rate, chunk),
        models.scratch_model(num_classes, profile, learning_rate=learning_rate, seed=seed),
    )
    if not reused:  # each chunk's steps in one traced loop (Keras's steps_per_execution): the same bits, faster
        _compile_in_chunks(model, learning_rate, chunk)
    curve = []
    chunks = steps // chunk
    with seeded(seed):
        for i in range(chunks):
            training.fit_steps(model, data.x, data.y, chunk, seed=seed + 1000 * i)
            if scored or i == chunks - 1:
                training.recalibrate_batchnorm(model, data.x)
                curve.append((time.perf_counter() - start, accuracy_on(model, data.test_x, data.test_y)))
    return curve


def _compile_in_chunks(model, learning_rate: float, chunk: int) -> None:
    """Compile ``model`` as it was (Adam at ``learning_rate``, its loss, accuracy), running ``chunk``
    steps per call into TensorFlow."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss=model.loss, metrics=["accuracy"], steps_per_execution=chunk
    )


def _fine_tune(arm, data, head, num_classes, profile, seed, steps, learning_rate, chunk, start, scored=True):
    """The trained head copied into the pretrained model (its BatchNorm statistics first
    re-estimated on the target for an arm of ``ADAPTED``), then the arm's layers unfrozen (BatchNorm
    frozen) at ``learning_rate``, the head at ``HEAD_RATE_FACTOR`` times it; a point before
    fine-tuning and one after each chunk (with ``scored`` false, one after the last step only)."""
    from tlbook import finetuning, models, training

    # one model per process, its traced steps reused (tlbook.finetuning), the fresh model's weights copied in
    model, _ = reuse_model(
        ("fine-tuning", num_classes, repr(profile)), models.pretrained_model(num_classes, profile, seed=seed)
    )
    if arm in ADAPTED:
        finetuning.adapt_batchnorm(model.get_layer(models.BASE), data.unlabelled)
    training.copy_head(head, model)
    stages = UNFREEZE[arm]
    rates = {name: learning_rate for stage in stages for name in stage}
    rates.update({models.HIDDEN: HEAD_RATE_FACTOR * learning_rate, models.HEAD: HEAD_RATE_FACTOR * learning_rate})
    curve = [(time.perf_counter() - start, accuracy_on(model, data.test_x, data.test_y))] if scored else []

    def score(step):
        if step == steps or (scored and step % chunk == 0):
            curve.append((time.perf_counter() - start, accuracy_on(model, data.test_x, data.test_y)))

    if len(stages) == 1:
        finetuning.layerwise_fit(
            model, data.x, data.y, steps, learning_rates=rates, seed=seed, callback=score, every=chunk
        )
    else:
        finetuning.gradual_unfreeze(
            model, data.x, data.y, steps, stages=stages, learning_rates=rates, seed=seed, callback=score, every=chunk
        )
    return curve
