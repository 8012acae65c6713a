"""Measurements the chapters report: linear probes and 2-D projections of features.

Every number a chapter prints about a backbone's features comes from a function here, so a reader
who sees a number can find the call that made it.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from tlbook.data import Task, sample_indices_per_class


def linear_probe(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, test_labels: np.ndarray) -> float:
    """Accuracy of a linear classifier (θ·φ(x) + b) trained on frozen features.

    The classifier is scikit-learn's multinomial logistic regression on standardised features
    (L2 penalty, C=1), so the score measures how linearly separable the classes are in φ-space.

    Args:
        train_features: ``(n, d)`` features of the labelled images.
        train_labels: ``(n,)`` integer labels; at least two classes.
        test_features: ``(m, d)`` features of held-out images.
        test_labels: ``(m,)`` integer labels.

    Returns:
        Test accuracy, a fraction in [0, 1].

    Raises:
        ValueError: mismatched lengths or dimensions, or fewer than two classes to learn.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_features, test_features = np.asarray(train_features), np.asarray(test_features)
    if len(train_features) != len(train_labels) or len(test_features) != len(test_labels):
        raise ValueError(
            f"features and labels differ in length: train {len(train_features)} vs {len(train_labels)}, "
            f"test {len(test_features)} vs {len(test_labels)}"
        )
    if train_features.ndim != 2 or test_features.ndim != 2 or train_features.shape[1] != test_features.shape[1]:
        raise ValueError(f"features must be (n, d) with the same d, got {train_features.shape} and {test_features.shape}")
    if len(np.unique(train_labels)) < 2:
        raise ValueError("the probe needs labelled examples of at least two classes")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    probe.fit(train_features, train_labels)
    return float(accuracy_score(test_labels, probe.predict(test_features)))


def probe_comparison(
    backbones: Mapping[str, object],
    task: Task,
    labels_per_class: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
):
    """Linear-probe accuracy of several backbones on one task, for several label budgets.

    Features of the whole train and test splits are extracted once per backbone; every
    (budget, seed) pair then draws its labelled subset with
    :func:`tlbook.data.sample_indices_per_class` and fits :func:`linear_probe`.

    Args:
        backbones: ``{name: keras.Model}`` image → feature models.
        task: the target task.
        labels_per_class: label budgets to try (each at most the smallest training class).
        seeds: one few-shot draw per seed.

    Returns:
        ``pandas.DataFrame`` with one row per (backbone, labels_per_class): ``mean`` and ``std``
        (over seeds) of the test accuracy, and ``runs``, the number of seeds.
    """
    import pandas as pd

    from tlbook.models import extract_features

    if not backbones:
        raise ValueError("give at least one backbone to compare")
    if not seeds:
        raise ValueError("give at least one seed")
    rows = []
    for name, backbone in backbones.items():
        f_train = extract_features(backbone, task.train.x)
        f_test = extract_features(backbone, task.test.x)
        for n in labels_per_class:
            scores = []
            for seed in seeds:
                idx = sample_indices_per_class(task.train.y, n, seed)
                scores.append(linear_probe(f_train[idx], task.train.y[idx], f_test, task.test.y))
            rows.append({"backbone": name, "labels_per_class": int(n), "mean": float(np.mean(scores)), "std": float(np.std(scores)), "runs": len(scores)})
    return pd.DataFrame(rows).set_index(["backbone", "labels_per_class"])


def project_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """Project ``(n, d)`` features to ``(n, 2)`` with PCA (standardised first).

    PCA is linear and deterministic, so what separates in the picture also separates for a
    linear head; ``seed`` only fixes the solver's sign and randomised parts.

    Raises:
        ValueError: fewer than two samples or fewer than two feature dimensions.
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2 or features.shape[1] < 2:
        raise ValueError(f"need features of shape (n >= 2, d >= 2), got {features.shape}")
    scaled = StandardScaler().fit_transform(features)
    return PCA(n_components=2, random_state=seed).fit_transform(scaled)


def fit_and_evaluate(model, train, validation, test, epochs: int = 5, seed: int = 0, batch_size: int = 32) -> dict:
    """Evaluate a compiled model before training, train it, and evaluate it on the test split.

    This is the article's ``fit`` + ``evaluate`` with the two steps it leaves out: a measurement
    before training (is the loss ≈ ln K?) and a validation split that is not the test split.
    Everything is seeded (:func:`tlbook.config.seed_everything`) before training.

    Args:
        model: a compiled Keras classifier (for example :func:`tlbook.models.build_transfer_model`).
        train, validation, test: ``tf.data`` datasets or ``(x, y)`` tuples of arrays.
        epochs: passes over ``train`` (>= 1).
        seed: seeds the run.
        batch_size: mini-batch size when the splits are arrays (a dataset brings its own).

    Returns:
        ``{"initial_loss", "initial_accuracy", "history" (Keras's ``history.history`` dict: one
        value per epoch), "test_loss", "test_accuracy"}``; losses in nats, accuracies as fractions.

    Raises:
        ValueError: ``epochs < 1``.
    """
    from tlbook.config import seed_everything

    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")

    def evaluate(split):
        if isinstance(split, tuple):
            return model.evaluate(split[0], split[1], verbose=0)
        return model.evaluate(split, verbose=0)

    initial_loss, initial_accuracy = evaluate(test)
    seed_everything(seed)
    if isinstance(train, tuple):
        history = model.fit(train[0], train[1], epochs=int(epochs), batch_size=batch_size, validation_data=validation, verbose=0, shuffle=True)
    else:
        history = model.fit(train, epochs=int(epochs), validation_data=validation, verbose=0, shuffle=False)  # a dataset shuffles itself
    test_loss, test_accuracy = evaluate(test)
    return {
        "initial_loss": float(initial_loss),
        "initial_accuracy": float(initial_accuracy),
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
    }


def weight_change_during_fit(model, layer: str, x, y, epochs: int = 1, batch_size: int = 32) -> float:
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
        raise ValueError(f"model {model.name!r} has no layer {layer!r}; its layers are {[l.name for l in model.layers]}") from None
    before = [np.array(w) for w in watched.get_weights()]
    model.fit(x, y, epochs=int(epochs), batch_size=batch_size, verbose=0, shuffle=False)
    after = watched.get_weights()
    return float(max((np.abs(a - b).max() for a, b in zip(before, after)), default=0.0))


def summarize_runs(runs: Mapping[str, dict], num_classes: int):
    """One row per :func:`fit_and_evaluate` result, next to the reference numbers ln K and 1/K.

    Returns:
        ``pandas.DataFrame`` indexed by run name with columns ``loss before training``,
        ``ln K``, ``train accuracy`` and ``validation accuracy`` (last epoch), ``test accuracy``
        and ``chance 1/K``.

    Raises:
        ValueError: no runs, or a run without the keys :func:`fit_and_evaluate` returns.
    """
    import math

    import pandas as pd

    if not runs:
        raise ValueError("no runs to summarize")
    rows = {}
    for name, run in runs.items():
        try:
            history = run["history"]
            acc = history["accuracy"] if "accuracy" in history else history["acc"]
            val = history.get("val_accuracy", history.get("val_acc", [float("nan")]))
            rows[name] = {
                "loss before training": run["initial_loss"],
                "ln K": math.log(num_classes),
                "train accuracy": acc[-1],
                "validation accuracy": val[-1],
                "test accuracy": run["test_accuracy"],
                "chance 1/K": 1 / num_classes,
            }
        except (KeyError, TypeError, IndexError):
            raise ValueError(f"run {name!r} is not a fit_and_evaluate result (keys: {sorted(run) if isinstance(run, dict) else type(run).__name__})") from None
    return pd.DataFrame.from_dict(rows, orient="index")
