"""Measurements of single training runs that chapters 4 to 6 report.

:func:`fit_and_evaluate` (a run's accuracy and loss on each split, before and after),
:func:`weight_change_during_fit` (did a layer move?), :func:`summarize_runs` (runs next to the
reference numbers ln K and chance) and :func:`feature_caching_speedup` (why the head trains on
cached features). Probes are in :mod:`tlbook.probes`, the many-run studies in :mod:`tlbook.studies`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit_and_evaluate` measured in one run.

    Attributes:
        initial_loss: the test split's loss before the first training step, in nats (ln K for a
            fresh zero-initialised softmax head over K classes, as every new head tlbook puts on a base).
        initial_accuracy: the test split's accuracy before training, a fraction.
        history: Keras's ``history.history``: ``{"loss": [...], "accuracy": [...], "val_loss": [...],
            "val_accuracy": [...]}``, one value per epoch.
        test_loss: the test split's loss after training, in nats.
        test_accuracy: the test split's accuracy after training, a fraction.
    """

    initial_loss: float
    initial_accuracy: float
    history: dict
    test_loss: float
    test_accuracy: float

    @property
    def evaluate(self) -> dict:
        """``{"loss": test_loss, "accuracy": test_accuracy}``, the final evaluation, as
        :func:`tlbook.diagnostics.diagnosis.diagnose` reads it beside the history."""
        return {"loss": self.test_loss, "accuracy": self.test_accuracy}


def fit_and_evaluate(
    model,
    train,
    validation,
    test,
    *,
    epochs: int = 5,
    seed: int = 0,
    batch_size: int = 32,
    cache_features: bool = False,
) -> FitResult:
    """Evaluate a compiled model before training, train it, and evaluate it on the test split.

    This is the article's ``fit`` + ``evaluate`` with the two steps it leaves out: a measurement
    before training (is the loss ln K, as a fresh head's should be?) and a validation split that is not the test split.
    Training is seeded with ``seed`` (:func:`tlbook.config.seeded`); the caller's random state is
    left as it was.

    Args:
        model: a compiled Keras classifier (for example :func:`tlbook.models.transfer.build_transfer_model`).
        train, validation, test: ``tf.data`` datasets or ``(x, y)`` tuples of arrays.
        epochs: passes over ``train`` (>= 1).
        seed: seeds the run.
        batch_size: mini-batch size when the splits are arrays (a dataset brings its own).
        cache_features: train the head on features computed once
            (:func:`~tlbook.backbones.features.cached_features`) instead of running every image through the
            frozen base in every epoch. The same model is trained (its ``hidden`` and ``head``
            layers, from their current weights, with a copy of its optimizer) and the same
            function of the images is computed; only the cost differs. Needs a model of
            :func:`tlbook.models.transfer.build_transfer_model` with a frozen base and ``(x, y)`` arrays.

    Returns:
        A :class:`FitResult`: the test split's loss and accuracy before and after training, and
        the history of every epoch. :func:`tlbook.diagnostics.diagnosis.diagnose` reads it as it is.

    Raises:
        ValueError: ``epochs < 1``; with ``cache_features``, a trainable base, a model without the
            layers ``base``, ``hidden`` and ``head``, or a split that is not an ``(x, y)`` tuple.
    """
    from tlbook.config import seeded

    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if cache_features:
        model, train, validation, test = _on_cached_features(model, train, validation, test)

    def evaluate(split):
        if isinstance(split, tuple):
            return model.evaluate(split[0], split[1], verbose=0)
        return model.evaluate(split, verbose=0)

    initial_loss, initial_accuracy = evaluate(test)
    with seeded(seed):
        if isinstance(train, tuple):
            history = model.fit(
                train[0],
                train[1],
                epochs=int(epochs),
                batch_size=batch_size,
                validation_data=validation,
                verbose=0,
                shuffle=True,
            )
        else:
            history = model.fit(
                train, epochs=int(epochs), validation_data=validation, verbose=0, shuffle=False
            )  # a dataset shuffles itself
    test_loss, test_accuracy = evaluate(test)
    return FitResult(
        initial_loss=float(initial_loss),
        initial_accuracy=float(initial_accuracy),
        history={k: [float(v) for v in vals] for k, vals in history.history.items()},
        test_loss=float(test_loss),
        test_accuracy=float(test_accuracy),
    )


def _on_cached_features(model, train, validation, test):
    """The head of a frozen transfer model as a model of its own, and the splits as its features.

    The head model shares the ``hidden`` and ``head`` layers with ``model`` (training one trains
    the other) and is compiled with a copy of ``model``'s optimizer and its loss."""
    import keras

    from tlbook.backbones import cached_features
    from tlbook.models import BASE, HEAD, HIDDEN

    names = {layer.name for layer in model.layers}
    if not {BASE, HIDDEN, HEAD} <= names:
        raise ValueError(
            "cache_features=True needs a model of build_transfer_model (layers 'base', 'hidden', 'head'); "
            f"this one has {sorted(names)}"
        )
    if model.get_layer(BASE).trainable:
        raise ValueError(
            "cache_features=True needs a frozen base (its features must not change during training); "
            "set model.get_layer('base').trainable = False and compile again, or pass cache_features=False"
        )
    splits = {"train": train, "validation": validation, "test": test}
    for name, split in splits.items():
        if not (isinstance(split, tuple) and len(split) == 2):
            raise ValueError(
                f"cache_features=True needs (x, y) arrays for every split; {name} is {type(split).__name__}"
            )
    hidden, head = model.get_layer(HIDDEN), model.get_layer(HEAD)
    phi = keras.Model(model.input, hidden.input, name="features_of_" + model.name)
    inputs = keras.Input(shape=tuple(hidden.input.shape[1:]), name="features")
    head_model = keras.Model(inputs, head(hidden(inputs)), name="head_of_" + model.name)
    optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
    head_model.compile(optimizer=optimizer, loss=model.loss, metrics=["accuracy"])
    features = {name: (cached_features(phi, np.asarray(x)), np.asarray(y)) for name, (x, y) in splits.items()}
    return head_model, features["train"], features["validation"], features["test"]


def weight_change_during_fit(model, layer: str, x, y, *, epochs: int = 1, batch_size: int = 32) -> float:
    """Train ``model`` for ``epochs`` on ``(x, y)`` and return how far one layer's weights moved.

    The measurement behind "recompile after changing ``trainable``": Keras builds its training
    step on the first ``fit`` and keeps it until the next ``compile``, so unfreezing a layer
    after training has begun changes nothing until the model is recompiled.

    Args:
        model: a compiled Keras model.
        layer: name of the layer (or nested model) to watch, for example ``"base"``.
        x, y: a small training batch (arrays).

    Returns:
        The largest absolute change of any weight of ``layer`` (0.0 if it did not train).

    Raises:
        ValueError: the model has no such layer.
    """
    try:
        watched = model.get_layer(layer)
    except ValueError:
        raise ValueError(
            f"model {model.name!r} has no layer {layer!r}; its layers are {[each.name for each in model.layers]}"
        ) from None
    before = [np.array(w) for w in watched.get_weights()]
    model.fit(x, y, epochs=int(epochs), batch_size=batch_size, verbose=0, shuffle=False)
    after = watched.get_weights()
    return float(max((np.abs(a - b).max() for a, b in zip(before, after, strict=True)), default=0.0))


def summarize_runs(runs: Mapping[str, FitResult], num_classes: int):
    """One row per :func:`fit_and_evaluate` result, next to the reference numbers ln K and 1/K.

    Returns:
        ``pandas.DataFrame`` indexed by run name with columns ``loss before training``,
        ``ln K``, ``train accuracy`` and ``validation accuracy`` (last epoch), ``test accuracy``
        and ``chance 1/K``.

    Raises:
        ValueError: no runs, or a run whose history has no training accuracy.
        TypeError: a run that is not a :class:`FitResult`.
    """
    import math

    import pandas as pd

    if not runs:
        raise ValueError("no runs to summarize")
    rows = {}
    for name, run in runs.items():
        if not isinstance(run, FitResult):
            raise TypeError(f"run {name!r} is a {type(run).__name__}, not a fit_and_evaluate result (FitResult)")
        history = run.history
        acc = history.get("accuracy", history.get("acc"))
        if not acc:
            raise ValueError(f"run {name!r} has no training accuracy in its history (keys: {sorted(history)})")
        val = history.get("val_accuracy", history.get("val_acc")) or [float("nan")]
        rows[name] = {
            "loss before training": run.initial_loss,
            "ln K": math.log(num_classes),
            "train accuracy": acc[-1],
            "validation accuracy": val[-1],
            "test accuracy": run.test_accuracy,
            "chance 1/K": 1 / num_classes,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


# --- Does transfer pay off? (chapters 6 and 7) --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CachingSpeedup:
    """What caching a frozen base's features saves (:func:`feature_caching_speedup`); wall-clock
    seconds, different on every machine and from run to run.

    Attributes:
        seconds_per_epoch_in_loop: one epoch of training the head with the frozen base in the loop.
        seconds_per_epoch_cached: one epoch of training the same head on features computed once.
        extraction_seconds: computing the features once.
        speedup: ``seconds_per_epoch_in_loop / seconds_per_epoch_cached``.
        break_even_epochs: after how many epochs the one-time extraction has paid for itself.
    """

    seconds_per_epoch_in_loop: float
    seconds_per_epoch_cached: float
    extraction_seconds: float
    speedup: float
    break_even_epochs: float


def speedup_table(speedups: Mapping[str, CachingSpeedup]):
    """:class:`CachingSpeedup` results side by side: one column per named setting, one row per field.

    Raises:
        ValueError: no results.
        TypeError: a value that is not a :class:`CachingSpeedup`; the message names its key.
    """
    import pandas as pd

    if not speedups:
        raise ValueError("no speedups to tabulate")
    for name, result in speedups.items():
        if not isinstance(result, CachingSpeedup):
            raise TypeError(f"{name!r} is a {type(result).__name__}, not a feature_caching_speedup result")
    return pd.DataFrame({name: dataclasses.asdict(result) for name, result in speedups.items()})


def feature_caching_speedup(model, x, y, *, epochs: int = 3, batch_size: int = 32) -> CachingSpeedup:
    """Seconds per epoch of training the head with the frozen base in the loop, against training
    the same head on features computed once (the Keras guide's feature-extraction workflow).

    Args:
        model: a compiled transfer model from :func:`tlbook.models.transfer.build_transfer_model` with a
            frozen base (layers ``base``, ``hidden``, ``head``).
        x, y: the training images and labels.
        epochs: timed epochs for each way (>= 2; the first, which traces the graph, is not counted).

    Returns:
        :class:`CachingSpeedup`.

    Raises:
        ValueError: ``epochs`` below 2.
    """
    import time

    import keras

    from tlbook import models
    from tlbook.models import HEAD, HIDDEN

    if epochs < 2:
        raise ValueError(f"epochs must be >= 2 (the first one is not timed), got {epochs!r}")
    x = np.asarray(x, dtype="float32")

    class Timer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    timer = Timer()
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[timer])
    in_loop = float(np.mean(timer.times[1:]))
    features_model = keras.Model(model.input, model.get_layer(HIDDEN).input)
    start = time.perf_counter()
    features = features_model.predict(x, batch_size=256, verbose=0)
    extraction = time.perf_counter() - start
    head = models.head_model(features.shape[1], model.get_layer(HEAD).units, head_units=model.get_layer(HIDDEN).units)
    timer = Timer()
    head.fit(features, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[timer])
    cached = float(np.mean(timer.times[1:]))
    return CachingSpeedup(
        seconds_per_epoch_in_loop=in_loop,
        seconds_per_epoch_cached=cached,
        extraction_seconds=float(extraction),
        speedup=in_loop / cached,
        break_even_epochs=float(extraction / max(in_loop - cached, 1e-9)),
    )
