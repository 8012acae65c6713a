"""Reference numbers for reading a training run: what chance, a uniform guess and a constant
predictor score.

A classifier over K classes that has learned nothing still produces numbers, and they are
predictable:

- a **uniform guess** (probability 1/K for every class) costs a cross-entropy of exactly ln K per
  example, whatever the labels: ln 10 = 2.302585 for ten classes;
- guessing a class **at random** is right with probability 1/K (chance accuracy);
- a **constant predictor**, one that always answers class c, is right exactly as often as class c
  occurs: its accuracy is c's share of the examples;
- the best constant predictor always answers the most frequent class: the **majority baseline**.

A model whose loss sits at ln K and whose accuracy equals one class's share is, in all likelihood,
one of these. :func:`baselines` gathers these numbers for a label distribution; :func:`shares_entropy`
is the loss of a model that answers the class shares for every input, and :func:`check_initial_loss`
compares a freshly built classifier's loss with ln K before any training (within 10 %; the zero-initialised
heads tlbook puts on a base start at ln K exactly).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from tlbook.diagnostics.text import wrap


def check_num_classes(num_classes) -> int:
    """``num_classes`` as an ``int``, checked: a classifier needs K >= 2 classes.

    Raises:
        ValueError: ``num_classes`` is not an integer (a ``bool`` is not one) or is below 2.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"a classifier needs K >= 2 classes (an integer), got {num_classes!r}")
    return int(num_classes)


def class_shares(class_counts: Sequence[float]) -> np.ndarray:
    """The share of each class, ``counts / counts.sum()``, shape ``(K,)``.

    Args:
        class_counts: examples per class (or any non-negative weights), at least two entries.

    Raises:
        ValueError: fewer than two classes, a negative or non-finite count, or counts that do not
            sum to a positive total.
    """
    counts = np.asarray(class_counts, dtype=float)
    if counts.ndim != 1 or len(counts) < 2:
        raise ValueError(f"class_counts must list at least two classes, got {class_counts!r}")
    if not np.all(np.isfinite(counts)) or (counts < 0).any():
        raise ValueError(f"class counts must be finite and non-negative, got {class_counts!r}")
    total = counts.sum()
    if total <= 0:
        raise ValueError(f"class counts must sum to a positive total, got {class_counts!r} (sum {total})")
    return counts / total


def uniform_guess_loss(num_classes: int) -> float:
    """Cross-entropy (natural log, per example) of predicting 1/K for every class: ln K.

    Raises:
        ValueError: ``num_classes`` is not an integer >= 2.
    """
    return math.log(check_num_classes(num_classes))


def chance_accuracy(num_classes: int) -> float:
    """Expected accuracy of guessing uniformly at random among K classes: 1/K.

    Raises:
        ValueError: ``num_classes`` is not an integer >= 2.
    """
    return 1.0 / check_num_classes(num_classes)


def accuracy_standard_error(accuracy: float, n_images: int) -> float:
    """The standard error of an accuracy ``p`` measured on ``n_images`` images, √(p(1 − p)/n):
    how far the same model's accuracy would move on another sample of that many images.

    Raises:
        ValueError: ``accuracy`` outside [0, 1] or ``n_images`` below 1.
    """
    if not 0 <= accuracy <= 1:
        raise ValueError(f"accuracy must be a fraction in [0, 1], got {accuracy!r}")
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 1:
        raise ValueError(f"n_images must be a positive integer, got {n_images!r}")
    return float((accuracy * (1 - accuracy) / n_images) ** 0.5)


def constant_predictor_accuracy(class_counts: Sequence[float], predicted_class: int) -> float:
    """Accuracy of a model that always predicts ``predicted_class``: that class's share.

    Raises:
        ValueError: bad counts (see :func:`class_shares`) or a class index outside ``0..K-1``.
    """
    shares = class_shares(class_counts)
    if (
        isinstance(predicted_class, bool)
        or not isinstance(predicted_class, (int, np.integer))
        or not 0 <= predicted_class < len(shares)
    ):
        raise ValueError(f"predicted_class must be a class index in 0..{len(shares) - 1}, got {predicted_class!r}")
    return float(shares[predicted_class])


def majority_baseline(class_counts: Sequence[float]) -> float:
    """Accuracy of the best constant predictor (always the most frequent class): the largest share.

    Raises:
        ValueError: bad counts (see :func:`class_shares`).
    """
    return float(class_shares(class_counts).max())


def cross_entropy(probabilities: np.ndarray, labels: Sequence[int]) -> float:
    """Mean cross-entropy (natural log) of predicted class probabilities against integer labels.

    A thin wrapper around ``sklearn.metrics.log_loss`` that fixes the class list to ``0..K-1``
    (so a batch in which some class is absent is still scored against all K).

    Args:
        probabilities: ``(n, K)`` rows of class probabilities (each row sums to 1).
        labels: ``(n,)`` integer labels in ``0..K-1``.
    """
    from sklearn.metrics import log_loss

    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim != 2 or probabilities.shape[1] < 2 or len(probabilities) != len(labels):
        raise ValueError(
            f"probabilities must be (n, K >= 2) with one label per row, got {probabilities.shape} and {len(labels)} "
            "labels"
        )
    return float(log_loss(labels, probabilities, labels=list(range(probabilities.shape[1]))))


def baselines(class_counts: Sequence[float]) -> dict[str, float]:
    """All reference numbers for a label distribution, as a dict.

    Keys: ``num_classes``, ``uniform_guess_loss`` (ln K), ``chance_accuracy`` (1/K),
    ``majority_baseline`` (largest share), ``constant_accuracy_min`` (smallest share: the worst
    constant predictor).
    """
    shares = class_shares(class_counts)
    k = len(shares)
    return {
        "num_classes": k,
        "uniform_guess_loss": uniform_guess_loss(k),
        "chance_accuracy": chance_accuracy(k),
        "majority_baseline": float(shares.max()),
        "constant_accuracy_min": float(shares.min()),
    }


def shares_entropy(class_counts: Sequence[float]) -> float:
    """Cross-entropy of a model that outputs the class shares for every input: the entropy of the
    shares, in nats. It equals ln K for balanced classes and is smaller otherwise."""
    shares = class_shares(class_counts)
    nz = shares[shares > 0]
    return float(-(nz * np.log(nz)).sum())


@dataclasses.dataclass(frozen=True)
class InitialLossCheck:
    """The result of :func:`check_initial_loss`: the loss before training against ln K.

    Attributes:
        loss: the measured cross-entropy before any training step, in nats.
        expected: ln K, the loss of a uniform guess.
        ratio: ``loss / expected``.
        verdict: ``"as expected"``, ``"too high"`` or ``"too low"``.
        advice: one or two sentences on what the verdict means.
    """

    loss: float
    expected: float
    ratio: float
    verdict: str
    advice: str

    @property
    def ok(self) -> bool:
        """True when the first loss is as expected for K classes."""
        return self.verdict == "as expected"

    def __str__(self) -> str:
        return wrap(
            f"initial loss {self.loss:.4f} vs ln K = {self.expected:.4f} (ratio {self.ratio:.2f}): "
            f"{self.verdict}. {self.advice}"
        )


def check_initial_loss(loss: float, num_classes: int, rel_tol: float = 0.1) -> InitialLossCheck:
    """Compare the loss of a freshly built classifier with ln K, before training it.

    The rule (Chapters 3, 4 and 5): an untrained head should give every class the same probability,
    so its cross-entropy is ln K (the uniform guess). Every new head tlbook puts on a base starts
    with a zero kernel and a zero bias (:data:`tlbook.models.heads.HEAD_INITIALIZERS`), every logit
    0, and meets it to float precision; a head with Keras's default random kernel starts above it,
    by more the larger the features. ``rel_tol`` is the accepted relative distance (10 % by
    default). A zero head meets the rule whatever its inputs, so for it the check cannot see the
    preprocessing (:func:`~tlbook.diagnostics.checks.input_statistics` does).

    Raises:
        ValueError: K < 2, a negative or non-finite loss, or ``rel_tol`` not in (0, 1).
    """
    k = check_num_classes(num_classes)
    if not math.isfinite(loss) or loss < 0:
        raise ValueError(f"a cross-entropy is a finite number >= 0, got {loss!r}")
    if not 0 < rel_tol < 1:
        raise ValueError(f"rel_tol must be between 0 and 1, got {rel_tol!r}")
    expected = math.log(k)
    ratio = loss / expected
    if ratio > 1 + rel_tol:
        verdict, advice = (
            "too high",
            (
                "The untrained head is confidently wrong: its logits are not all equal. A zero-initialised head cannot "
                "start here; a head with a random kernel does, the more so the larger the features (check the "
                "preprocessing and the input statistics). Start the head's kernel at zero, or training first spends "
                "its steps undoing the initialisation."
            ),
        )
    elif ratio < 1 - rel_tol:
        verdict, advice = (
            "too low",
            (
                "Better than a uniform guess before any training: the head is not fresh (reused weights?), its bias "
                "starts at the class shares (then compare with their entropy, shares_entropy), or K is not the "
                "number of classes the labels use. Find out which before trusting any result."
            ),
        )
    else:
        verdict, advice = "as expected", "The head starts from an even guess over the classes, as it should."
    return InitialLossCheck(float(loss), expected, ratio, verdict, advice)
