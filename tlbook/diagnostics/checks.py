"""The checks that look at a model and its data: "your accuracy is frozen, what to check".

Each check answers one question about the model and the batch it is fed, before or after
training: are the inputs on the scale the model expects (:func:`input_statistics`), are the
labels what they should be (:func:`check_labels`), can the model learn one batch by heart
(:func:`overfit_one_batch`), do BatchNorm layers move (:func:`batchnorm_report`), do the images
look different to the head (:func:`base_feature_spread`), do the predictions collapse to one class
(:func:`prediction_histogram`), and which mistakes was it surest of
(:func:`most_confident_mistakes`). :func:`checklist` runs them in one table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tlbook.diagnostics.chance import check_initial_loss, check_num_classes


def input_statistics(images, channel_names: Sequence[str] = ("R", "G", "B")):
    """Per-channel statistics of a batch as the network receives it (after preprocessing).

    A pretrained network expects its inputs on the scale it was trained on; this table shows
    whether they are: ResNet50's ImageNet weights expect BGR values with the ImageNet means
    subtracted (about -124..152), not 0..1.

    Args:
        images: array ``(n, h, w, c)`` (or a tensor convertible to one).
        channel_names: one name per channel.

    Returns:
        ``pandas.DataFrame`` indexed by channel with columns ``mean``, ``std``, ``min``, ``max``.

    Raises:
        ValueError: not a 4-d batch, or a ``channel_names`` of the wrong length.
    """
    import pandas as pd

    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images (n, height, width, channels), got shape {x.shape}")
    if len(channel_names) != x.shape[-1]:
        raise ValueError(f"{len(channel_names)} channel names for {x.shape[-1]} channels")
    flat = x.reshape(-1, x.shape[-1])
    return pd.DataFrame(
        {"mean": flat.mean(0), "std": flat.std(0), "min": flat.min(0), "max": flat.max(0)},
        index=pd.Index(list(channel_names), name="channel"),
    )


def prediction_histogram(predictions, num_classes: int) -> np.ndarray:
    """How many inputs the model assigns to each class.

    Args:
        predictions: ``(n, K)`` probabilities or ``(n,)`` predicted labels.

    Returns:
        ``int64`` counts ``(K,)``. One non-zero entry means the predictions collapsed to one class.
    """
    k = check_num_classes(num_classes)
    p = np.asarray(predictions)
    labels = p.argmax(axis=1) if p.ndim == 2 else p.astype(np.int64)
    if p.ndim == 2 and p.shape[1] != k:
        raise ValueError(f"predictions have {p.shape[1]} columns for num_classes={k}")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"predicted labels must lie in 0..{k - 1}")
    return np.bincount(labels, minlength=k).astype(np.int64)


def feature_spread(features) -> float:
    """How much the features differ between images: the mean over features of their standard
    deviation across the batch. Near zero, every image looks the same to the head."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features must be (n >= 2, d), got shape {f.shape}")
    return float(f.std(axis=0).mean())


def base_feature_spread(model, images, *, layer: str | None = None) -> float:
    """:func:`feature_spread` of the features that ``model``'s layer ``layer`` (its frozen base)
    computes for ``images`` ``(n, h, w, 3)``, read from or written to the feature cache
    (:func:`~tlbook.backbones.features.cached_features`): how different the images look to the head.
    ``layer`` defaults to :data:`tlbook.models.heads.BASE`, the base of a
    :func:`~tlbook.models.transfer.build_transfer_model` model.

    Raises:
        ValueError: the model has no such layer, or the images do not fit it.
    """
    from tlbook.backbones import cached_features
    from tlbook.models import BASE

    layer = BASE if layer is None else layer

    names = [sub.name for sub in model.layers]
    if layer not in names:
        raise ValueError(f"the model has no layer {layer!r}; its layers are {names}")
    return feature_spread(cached_features(model.get_layer(layer), images))


def check_labels(labels, num_classes: int, class_names: Sequence[str] | None = None):
    """Label sanity: counts and shares per class, so missing or dominant classes show at once.

    Args:
        labels: ``(n,)`` integer labels or ``(n, K)`` one-hot rows.

    Returns:
        ``pandas.DataFrame`` indexed by class name with ``count`` and ``share``.

    Raises:
        ValueError: labels outside ``0..K-1``, non-integers, one-hot rows that do not sum to 1,
            or a one-hot width other than K (the message says which).
    """
    import pandas as pd

    k = check_num_classes(num_classes)
    y = np.asarray(labels)
    if y.ndim == 2:
        if y.shape[1] != k:
            raise ValueError(
                f"one-hot labels have {y.shape[1]} columns but num_classes={k}: the model and the data disagree on K"
            )
        if not np.allclose(y.sum(axis=1), 1):
            raise ValueError("one-hot label rows must sum to 1")
        y = y.argmax(axis=1)
    if y.size and not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError("labels must be whole class numbers")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels range over {y.min()}..{y.max()} but num_classes={k} allows 0..{k - 1}")
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    counts = np.bincount(y, minlength=k)
    return pd.DataFrame({"count": counts, "share": counts / max(len(y), 1)}, index=pd.Index(names, name="class"))


def overfit_one_batch(model, x, y, *, epochs: int = 60) -> dict:
    """Can the model learn one small batch by heart? It should; if it cannot, the pipeline is broken.

    Trains ``model`` in place (pass a fresh copy) on ``(x, y)`` as a single batch for ``epochs``
    steps and reports the final loss and accuracy on that batch.

    A heuristic, with a scope: it holds for models trained with Adam at their usual rates, as this
    book's are. A heavily regularised model (strong weight decay, heavy dropout), or a small head on
    a frozen base whose features do not separate these images, can fail it and still be sound.

    Returns:
        ``{"loss", "accuracy", "ok"}``; ``ok`` when the batch accuracy reaches 1.0.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    x = np.asarray(x)
    model.fit(x, np.asarray(y), batch_size=len(x), epochs=int(epochs), verbose=0, shuffle=False)
    loss, accuracy = model.evaluate(x, np.asarray(y), batch_size=len(x), verbose=0)
    return {"loss": float(loss), "accuracy": float(accuracy), "ok": bool(accuracy >= 1.0)}


def batchnorm_report(model, x):
    """Which BatchNormalization layers would update their statistics during ``fit``.

    Calls the model once in training mode on ``x`` and looks at each BatchNorm layer's moving
    mean; the statistics are restored afterwards, so the model is unchanged. In transfer
    learning the pretrained statistics should stay put during ``fit`` (BatchNorm layers frozen):
    layers that move in a fine-tuned base on tiny batches are a classic cause of collapse.

    A heuristic for training on small batches. Re-estimating the statistics *on purpose*, once, on
    many target images is a remedy for a distribution shift (AdaBN,
    :func:`tlbook.finetuning.adapt_batchnorm`), which this report cannot tell from the mistake.

    Returns:
        ``pandas.DataFrame``, one row per BatchNorm layer (nested models included): ``layer``,
        ``trainable`` and ``updates statistics in fit``.
    """
    import pandas as pd

    from tlbook.models import batchnorm_layers

    bns = batchnorm_layers(model)
    saved = [(bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()) for _, bn in bns]
    model(np.asarray(x, dtype="float32"), training=True)
    rows = []
    for (name, bn), (mean, var) in zip(bns, saved, strict=True):
        moved = not np.array_equal(bn.moving_mean.numpy(), mean)
        bn.moving_mean.assign(mean)
        bn.moving_variance.assign(var)
        rows.append({"layer": name, "trainable": bool(bn.trainable), "updates statistics in fit": moved})
    return pd.DataFrame(rows, columns=["layer", "trainable", "updates statistics in fit"])


# --- The steps of checklist: each runs one check and returns its row of the table ---------------


def _row(check, call, result, ok) -> dict:
    return {"check": check, "tlbook call": call, "result": result, "verdict": "ok" if ok else "problem"}


def _initial_loss_row(model, x, y, k: int) -> dict:
    """The fresh ``model``'s loss on the batch against ln K (:func:`~tlbook.diagnostics.chance.check_initial_loss`)."""
    loss0, _ = model.evaluate(x, y, batch_size=len(x), verbose=0)
    initial = check_initial_loss(float(loss0), k)
    return _row(
        "initial loss vs ln K",
        "check_initial_loss",
        f"{initial.loss:.3f} vs ln K = {initial.expected:.3f} ({initial.verdict})",
        initial.ok,
    )


def _overfit_row(model, x, y, overfit_epochs: int) -> dict:
    """Whether ``model`` learns the batch by heart (:func:`overfit_one_batch`; trains it in place)."""
    fit = overfit_one_batch(model, x, y, epochs=overfit_epochs)
    return _row(
        "can it overfit one batch?",
        "overfit_one_batch",
        f"accuracy {fit['accuracy']:.3f} on {len(x)} images after {overfit_epochs} steps",
        fit["ok"],
    )


def _input_scale_row(x, expected_input_range: tuple[float, float]) -> dict:
    """Whether the inputs span the range the model was built for."""
    lo, hi = float(x.min()), float(x.max())
    # on the wrong scale if they stay far below the top (rescaled twice) or go past either end
    scale_ok = (
        hi > 0.5 * expected_input_range[1]
        and lo >= expected_input_range[0] - 1e-6
        and hi <= expected_input_range[1] + 1e-6
    )
    return _row(
        "input statistics",
        "input_statistics",
        f"inputs span {lo:.3g}..{hi:.3g}; the model expects {expected_input_range[0]:g}..{expected_input_range[1]:g}",
        scale_ok,
    )


def _labels_row(y, k: int, class_names: Sequence[str] | None) -> dict:
    """Whether every class is present in the batch (:func:`check_labels`)."""
    table = check_labels(y, k, class_names)
    missing = [name for name, c in table["count"].items() if c == 0]
    return _row(
        "labels",
        "check_labels",
        f"{k - len(missing)} of {k} classes present, shares {table['share'].min():.3f}..{table['share'].max():.3f}"
        + (f"; missing: {', '.join(map(str, missing))}" if missing else ""),
        not missing,
    )


def _batchnorm_row(model, x) -> dict:
    """Whether any BatchNorm layer would update its statistics in fit (:func:`batchnorm_report`)."""
    bn = batchnorm_report(model, x)
    moving = int(bn["updates statistics in fit"].sum()) if len(bn) else 0
    return _row(
        "BatchNorm mode",
        "batchnorm_report",
        f"{moving} of {len(bn)} BatchNorm layers update their statistics in fit",
        moving == 0,
    )


def _prediction_row(trained_model, x, k: int) -> dict:
    """Whether the trained model predicts more than one class on the batch (:func:`prediction_histogram`)."""
    hist = prediction_histogram(trained_model.predict(x, verbose=0), k)
    return _row(
        "prediction histogram",
        "prediction_histogram",
        f"{int((hist > 0).sum())} of {k} classes predicted on this batch",
        (hist > 0).sum() > 1,
    )


def checklist(
    build_model,
    x,
    y,
    num_classes: int,
    *,
    class_names: Sequence[str] | None = None,
    trained_model=None,
    expected_input_range: tuple[float, float] = (0.0, 255.0),
    overfit_epochs: int = 60,
):
    """ "Your accuracy is frozen: what to check" — every check of chapter 5 in one table.

    Args:
        build_model: a function with no arguments returning a fresh compiled model, for example
            ``lambda: build_transfer_model(...)``; used for the initial loss and the one-batch test.
        x, y: one small batch exactly as the pipeline feeds it (after any preprocessing you do
            outside the model), with integer labels.
        num_classes: K.
        trained_model: the model after training, if any; gives the prediction histogram.
        expected_input_range: the input range the model was built for (0..255 for tlbook's models,
            which preprocess inside).

    Returns:
        ``pandas.DataFrame`` with columns ``check``, ``tlbook call``, ``result`` and ``verdict``
        (``"ok"`` or ``"problem"``), one row per check.
    """
    import pandas as pd

    k = check_num_classes(num_classes)
    x = np.asarray(x, dtype="float32")
    y = np.asarray(y)
    model = build_model()
    # in this order: the initial loss of the fresh model, then the same model trained on the batch
    rows = [
        _initial_loss_row(model, x, y, k),
        _overfit_row(model, x, y, overfit_epochs),
        _input_scale_row(x, expected_input_range),
        _labels_row(y, k, class_names),
        _batchnorm_row(model, x),
    ]
    if trained_model is not None:
        rows.append(_prediction_row(trained_model, x, k))
    return pd.DataFrame(rows)


def most_confident_mistakes(y_true, probabilities, *, k: int = 4) -> np.ndarray:
    """The ``k`` wrong predictions the model was surest of, surest first.

    Args:
        y_true: ``(n,)`` integer labels.
        probabilities: ``(n, K)`` predicted class probabilities (a softmax output).
        k: how many to return at most (>= 1); fewer if the model made fewer mistakes.

    Returns:
        ``int64`` indices into the ``n`` examples.

    Raises:
        ValueError: shapes that do not agree, or ``k < 1``.
    """
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or len(probabilities) != len(y_true):
        raise ValueError(f"probabilities must be (n, K) for n={len(y_true)} labels, got shape {probabilities.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k!r}")
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:k].astype(np.int64)
