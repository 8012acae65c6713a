"""Linear probes: how much a backbone's frozen features know about a task.

A probe is a logistic regression on frozen features; its test accuracy, for several label budgets
and seeds, is how Chapter 1 compares a pretrained backbone with a random one and with raw pixels.
``project_2d`` draws the same features on a plane.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tlbook.data import Task, sample_indices_per_class


def linear_probe(
    train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, test_labels: np.ndarray
) -> float:
    """Accuracy of a linear classifier (θ·φ(x) + b) trained on frozen features.

    The classifier is scikit-learn's multinomial logistic regression on standardised features
    with an L2 penalty, so the score measures how linearly separable the classes are in φ-space.
    Its strength C is chosen by stratified cross-validation on the labelled examples alone
    (``LogisticRegressionCV``, C in 0.01, 0.1, 1; 3 folds) when every class has at least 3 of them; with fewer
    there is nothing to cross-validate and C = 0.1 is used. The test images never choose C.

    With more feature dimensions than labelled images (raw pixels: 3,072 numbers for a few dozen
    images), the standardised features are first rotated by PCA onto the span of the labelled
    images, keeping all of its dimensions. The L2-penalised solution lies in that span
    (representer theorem), so the classifier is the same, up to the solver's tolerance; only
    the solver works on at most n - 1 numbers instead of d (for raw pixels, about 30x faster).

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
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    train_features, test_features = np.asarray(train_features), np.asarray(test_features)
    if len(train_features) != len(train_labels) or len(test_features) != len(test_labels):
        raise ValueError(
            f"features and labels differ in length: train {len(train_features)} vs {len(train_labels)}, "
            f"test {len(test_features)} vs {len(test_labels)}"
        )
    if train_features.ndim != 2 or test_features.ndim != 2 or train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"features must be (n, d) with the same d, got {train_features.shape} and {test_features.shape}"
        )
    if len(np.unique(train_labels)) < 2:
        raise ValueError("the probe needs labelled examples of at least two classes")
    counts = np.bincount(np.asarray(train_labels))
    smallest = int(counts[counts > 0].min())
    if smallest >= 3:
        from sklearn.linear_model import LogisticRegressionCV

        classifier = LogisticRegressionCV(
            Cs=[0.01, 0.1, 1.0],
            cv=min(3, smallest),
            max_iter=5000,
            l1_ratios=(0.0,),
            scoring="accuracy",
            use_legacy_attributes=False,
        )
    else:
        classifier = LogisticRegression(C=0.1, max_iter=5000)
    n, d = train_features.shape
    rotate = [PCA(n_components=n - 1)] if d >= n else []
    probe = make_pipeline(StandardScaler(), *rotate, classifier)
    # One BLAS/OpenMP thread: the solver's products are too small to share between threads, which
    # then mostly wait for each other. Measured on 2 cores otherwise idle (OpenBLAS, 2 threads by
    # default), probes at the 5 label budgets of Chapter 7 took 0.47 s in all instead of 2.8 to 3.3 s,
    # with the same accuracies; with the other core busy, as under the test command, it is worse.
    with threadpool_limits(limits=1):
        probe.fit(train_features, train_labels)
        predicted = probe.predict(test_features)
    return float(accuracy_score(test_labels, predicted))


def probe_comparison(
    backbones: Mapping[str, object],
    task: Task,
    labels_per_class: Sequence[int],
    *,
    seeds: Sequence[int] = (0, 1, 2),
):
    """Linear-probe accuracy of several backbones on one task, for several label budgets.

    Features of the whole train and test splits are extracted once per backbone; every
    (budget, seed) pair then draws its labelled subset with
    :func:`tlbook.data.sampling.sample_indices_per_class` and fits :func:`linear_probe`.

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

    from tlbook.backbones import extract_features

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
                idx = sample_indices_per_class(task.train.y, n, seed=seed)
                scores.append(linear_probe(f_train[idx], task.train.y[idx], f_test, task.test.y))
            rows.append(
                {
                    "backbone": name,
                    "labels_per_class": int(n),
                    "mean": float(np.mean(scores)),
                    "std": float(np.std(scores)),
                    "runs": len(scores),
                }
            )
    return pd.DataFrame(rows).set_index(["backbone", "labels_per_class"])


def project_2d(features: np.ndarray, *, seed: int = 0) -> np.ndarray:
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
