"""How much of a pretrained network to adapt: a learning rate per layer, gradual unfreezing, and
BatchNorm statistics re-estimated on the target (AdaBN).

Keras 3 gives one optimizer, so one learning rate, to the whole model. Fine-tuning recipes want
more: the new head learns fast while the pretrained layers move slowly (*discriminative learning
rates*, fastbook; D2L's fine-tuning chapter gives the head 10x the rate of the body), or the layers
are unfrozen from the top down, a few at a time (*gradual unfreezing*, ULMFiT). Both need a short
training loop of one's own: :func:`layerwise_fit` is that loop, one Adam per learning rate, and
:func:`gradual_unfreeze` calls it stage by stage. :func:`adapt_batchnorm` is AdaBN (Li et al. 2016):
the base's BatchNorm statistics recomputed on target images, labels not needed.

Every function takes a model built by :func:`tlbook.models.transfer.build_transfer_model` (or
:func:`~tlbook.models.transfer.pretrained_model`): layers are found by name, in the model or inside
its ``base``.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence

import numpy as np

from tlbook.config import seeded


def find_layer(model, name: str):
    """The layer called ``name`` in ``model`` or inside its ``base`` (``"head"``, ``"conv3"``, ``"bn1"``).

    Raises:
        ValueError: no such layer (the message lists the names there are).
    """
    from tlbook.models import BASE

    names = [layer.name for layer in model.layers]
    if name in names:
        return model.get_layer(name)
    if BASE in names and name in [layer.name for layer in model.get_layer(BASE).layers]:
        return model.get_layer(BASE).get_layer(name)
    inner = [layer.name for layer in model.get_layer(BASE).layers] if BASE in names else []
    raise ValueError(f"model {model.name!r} has no layer {name!r}; its layers are {names + inner}")


def layerwise_fit(
    model,
    x,
    y,
    steps: int,
    *,
    learning_rates: Mapping[str, float],
    batch_size: int = 32,
    seed: int = 0,
    callback=None,
    every: int = 1,
) -> list[float]:
    """Train only the layers named in ``learning_rates``, each at its own Adam learning rate.

    This is what Keras 3's ``compile`` cannot express (one optimizer, one rate). The loop is the
    plain Keras 3 one: a ``GradientTape`` over the model called with ``training=True``, the
    gradients split by layer, one ``keras.optimizers.Adam`` per distinct rate. Every other layer is
    frozen for the call (``trainable=False``). A BatchNorm layer named here is trainable, so it
    normalises with batch statistics and updates its moving averages; one not named stays frozen,
    in inference mode on its current statistics (Keras 3 semantics).

    Args:
        model: a Keras model with a sparse softmax output (images 0..255 → K probabilities).
        x: ``(n, h, w, 3)`` images; y: ``(n,)`` integer labels.
        steps: optimizer steps (>= 1), over a shuffled, repeating dataset
            (:func:`tlbook.training.repeating_dataset`).
        learning_rates: layer name → learning rate, for example
            ``{"conv3": 1e-4, "hidden": 1e-3, "head": 1e-3}``; names inside ``model``'s ``base`` work.
        seed: seeds the shuffling.
        callback: called as ``callback(step)`` after every ``every`` steps and after the last
            (``step`` 1-based), e.g. to score the model; ``None``: nothing.
        every: steps run together in one traced loop (as Keras's ``steps_per_execution``): fewer
            round trips between Python and TensorFlow, the same arithmetic and the same bits.

    Returns:
        The training loss after each step (sparse categorical cross-entropy, nats), a list of floats.

    Raises:
        ValueError: no layers, a name that is not a layer, a rate that is not positive, or ``steps``
            or ``every`` below 1.
    """
    for label, value in (("steps", steps), ("every", every)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    _check_rates(model, learning_rates)
    return _fit(model, x, y, steps, learning_rates, batch_size=batch_size, seed=seed, callback=callback, every=every)


def _check_rates(model, learning_rates) -> None:
    """Every name a layer of ``model``, every rate a positive number, at least one of them."""
    if not learning_rates:
        raise ValueError("learning_rates is empty: name at least one layer to train, e.g. {'head': 1e-3}")
    for name, rate in learning_rates.items():
        if not (isinstance(rate, (int, float)) and rate > 0):
            raise ValueError(f"the learning rate of layer {name!r} must be a positive number, got {rate!r}")
        find_layer(model, name)


def _fit(model, x, y, steps, learning_rates, *, batch_size, seed, callback, every, done=0) -> list[float]:
    """:func:`layerwise_fit` after its checks; ``done`` steps came before (a stage of
    :func:`gradual_unfreeze`): the callback counts on from them and the blocks of ``every`` steps
    end at multiples of ``every`` counted from the first stage."""
    import tensorflow as tf

    from tlbook.training import repeating_dataset

    layers = {name: find_layer(model, name) for name in learning_rates}
    _train_only(model, set(layers.values()))
    train_steps = _train_step(model, layers, learning_rates)
    losses: list[float] = []
    with seeded(seed):
        batches = iter(repeating_dataset(x, y, batch_size=batch_size, seed=seed))
        while len(losses) < steps:
            position = done + len(losses)
            n = min(int(every) - position % int(every), int(steps) - len(losses))
            losses += [float(v) for v in train_steps(batches, tf.constant(n)).numpy()]
            if callback is not None:
                callback(done + len(losses))
    return losses


#: Per model (weakly held), the optimizers and traced step of each layer-and-rate set trained so far.
_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _train_step(model, layers: dict, learning_rates: Mapping[str, float]):
    """The traced training loop (``n`` steps over a batch iterator) for these layers at these rates,
    with fresh Adam optimizers.

    Tracing a step costs seconds, as much as a hundred steps of the small CNN, and a study trains
    the same model (:func:`tlbook.studies.pool.reuse_model`) many times: the step is traced once per
    model and layer set, and each later call gets it back with its optimizers' slots and step count
    set to zero, which is a fresh optimizer's state (the same bits as a fresh trace).
    """
    import keras
    import tensorflow as tf

    key = tuple((name, float(learning_rates[name])) for name in layers)
    kept = _STEPS.setdefault(model, {})
    if key in kept:
        optimizers, step = kept[key]
        for optimizer, _ in optimizers:
            rate = float(np.asarray(optimizer.learning_rate))  # a variable among the optimizer's: kept
            for variable in optimizer.variables:
                variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
            optimizer.learning_rate.assign(rate)
        return step
    groups: dict[float, list] = {}
    for name, layer in layers.items():
        groups.setdefault(float(learning_rates[name]), []).extend(layer.trainable_variables)
    optimizers = [(keras.optimizers.Adam(rate), variables) for rate, variables in groups.items()]
    for optimizer, variables in optimizers:
        optimizer.build(variables)
    variables = [v for _, group in optimizers for v in group]
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def steps(batches, n):
        losses = tf.TensorArray(tf.float32, size=n)
        for i in tf.range(n):
            images, labels = next(batches)
            with tf.GradientTape() as tape:
                loss = loss_fn(labels, model(images, training=True))
            gradients = tape.gradient(loss, variables)
            start = 0
            for optimizer, group in optimizers:
                optimizer.apply(gradients[start : start + len(group)], group)
                start += len(group)
            losses = losses.write(i, loss)
        return losses.stack()

    kept[key] = (optimizers, steps)
    return steps


def _train_only(model, layers: set) -> None:
    """Make ``layers`` the only trainable ones of ``model`` (the base stays trainable as a container
    when one of its layers is named, so its named layers' variables are trainable)."""
    from tlbook.models import BASE

    inner = model.get_layer(BASE).layers if BASE in [layer.name for layer in model.layers] else []
    for layer in model.layers:
        if layer.name == BASE:
            layer.trainable = any(each in layers for each in inner)
            for each in inner:
                each.trainable = each in layers
        else:
            layer.trainable = layer in layers


def gradual_unfreeze(
    model,
    x,
    y,
    steps: int,
    *,
    stages: Sequence[Sequence[str]],
    learning_rates: Mapping[str, float],
    batch_size: int = 32,
    seed: int = 0,
    callback=None,
    every: int = 1,
) -> list[float]:
    """Unfreeze the base from the top down, one stage at a time (ULMFiT's gradual unfreezing).

    Stage i trains the layers of stages 1..i together with every layer of ``learning_rates`` that
    is in no stage (the head), for ``steps // len(stages)`` steps (the last stage takes what is left),
    each stage with fresh optimizers (:func:`layerwise_fit`).

    Args:
        stages: layer names per stage, top first, e.g. ``(("conv3",), ("conv2",), ("conv1",))``.
        learning_rates: layer name → rate, for every layer of every stage and for the head.
        callback, every: as :func:`layerwise_fit`, the steps counted over all stages (1-based), a
            block also ending where a stage ends.

    Returns:
        The training loss after each step, all stages in order (``steps`` values).

    Raises:
        ValueError: no stages, fewer steps than stages, or a stage's layer without a learning rate.
    """
    if not stages:
        raise ValueError("stages is empty: name the layers to unfreeze, top first, e.g. [['conv3'], ['conv2']]")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < len(stages):
        raise ValueError(f"steps must be an integer >= the number of stages ({len(stages)}), got {steps!r}")
    staged = [name for stage in stages for name in stage]
    missing = [name for name in staged if name not in learning_rates]
    if missing:
        raise ValueError(f"no learning rate for the layers {missing}; give every stage's layers one")
    _check_rates(model, learning_rates)  # every stage's names and rates, before the first step
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    always = {name: rate for name, rate in learning_rates.items() if name not in staged}
    losses: list[float] = []
    per_stage = steps // len(stages)
    for i in range(len(stages)):
        now = {name: learning_rates[name] for stage in stages[: i + 1] for name in stage}
        n = per_stage if i < len(stages) - 1 else steps - per_stage * (len(stages) - 1)
        losses += _fit(
            model,
            x,
            y,
            n,
            {**now, **always},
            batch_size=batch_size,
            seed=seed + 7919 * i,
            callback=callback,
            every=every,
            done=len(losses),
        )
    return losses


def adapt_batchnorm(model, x, *, batch_size: int = 512) -> int:
    """AdaBN: replace the BatchNorm statistics of ``model`` by those of the target images ``x``.

    Li et al. (2016): the weights learned on the source stay; only each BatchNorm layer's moving
    mean and variance are recomputed on target images, so every channel is normalised as the target
    data needs. It needs no labels (``x`` can be every unlabelled target image) and no training
    step. It undoes a shift that is a change of each channel's mean and scale after a layer; it
    cannot undo one that, like a photographic negative, also flips a feature's sign (the ReLU after
    the BatchNorm then keeps the other half).

    Computed by :func:`tlbook.training.recalibrate_batchnorm`: exact means, and exact variances
    when ``x`` fits in one batch of ``batch_size``.

    Returns:
        The number of BatchNorm layers re-estimated (0 if the model has none).

    Raises:
        ValueError: no images.
    """
    from tlbook.models import batchnorm_layers
    from tlbook.training import recalibrate_batchnorm

    if len(x) == 0:
        raise ValueError("adapt_batchnorm needs target images to estimate statistics on; got none")
    # a frozen BatchNorm layer runs in inference mode even when called with training=True (Keras 3):
    # unfreeze them for the pass, then put every flag back
    layers = [bn for _, bn in batchnorm_layers(model)]
    saved = [bn.trainable for bn in layers]
    try:
        for bn in layers:
            bn.trainable = True
        return recalibrate_batchnorm(model, x, batch_size=batch_size)
    finally:
        for bn, flag in zip(layers, saved, strict=True):
            bn.trainable = flag
