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
one of these.
"""

from __future__ import annotations

import dataclasses
import math
import re
import textwrap
from collections.abc import Sequence

import numpy as np

#: Printed text is wrapped to this many characters: the width of the book's text column, so a
#: finding reads on the page without scrolling sideways.
TEXT_WIDTH = 88


def wrap(text: str, width: int = TEXT_WIDTH) -> str:
    """``text`` wrapped at spaces to lines of at most ``width`` characters (longer words stay
    whole), continuation lines indented by two spaces. Each line of a multi-line text (a pasted
    training log) is wrapped on its own, so its line breaks stay where they were."""
    return "\n".join(
        textwrap.fill(line, width=width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
        for line in text.split("\n")
    )


def _check_k(num_classes) -> int:
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
    return math.log(_check_k(num_classes))


def chance_accuracy(num_classes: int) -> float:
    """Expected accuracy of guessing uniformly at random among K classes: 1/K.

    Raises:
        ValueError: ``num_classes`` is not an integer >= 2.
    """
    return 1.0 / _check_k(num_classes)


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


# --- Checks before training (chapter 4) ---------------------------------------------------------


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


def check_initial_loss(loss: float, num_classes: int, rel_tol: float = 0.3) -> InitialLossCheck:
    """Compare the loss of a freshly built classifier with ln K, before training it.

    An untrained softmax head has no reason to prefer a class, so its cross-entropy should be
    close to ln K (the uniform guess). ``rel_tol`` is the accepted relative distance.

    Raises:
        ValueError: K < 2, a negative or non-finite loss, or ``rel_tol`` not in (0, 1).
    """
    k = _check_k(num_classes)
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
                "The untrained head is confidently wrong: its logits are large, usually because the features are on a "
                "large scale (check the preprocessing and the input statistics) or the head starts with large weights. "
                "Training will first spend its steps shrinking them."
            ),
        )
    elif ratio < 1 - rel_tol:
        verdict, advice = (
            "too low",
            (
                "Better than a uniform guess before any training: the head is not fresh (reused weights?), the labels "
                "leak into the inputs, or one class dominates the data. Find out which before trusting any result."
            ),
        )
    else:
        verdict, advice = "as expected", "The head starts from an even guess over the classes, as it should."
    return InitialLossCheck(float(loss), expected, ratio, verdict, advice)


# --- Reading a training log (chapter 5) ---------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_EPOCH = re.compile(r"^Epoch\s+(\d+)\s*/\s*(\d+)\s*$")
_PROGRESS = re.compile(r"^(\d+)\s*/\s*(\d+)(?:\s|$|\[)")
# A number's digits before and after its point are matched by separate groups (\d+(?:\.\d*)?, not
# \d+\.?\d*, which splits a run of n digits in n ways and backtracks through all of them: 4 s for
# one line of 8,000 digits); every match is then linear in the length of the line.
_METRIC = re.compile(
    r"(?:^|\s)-\s+([A-Za-z_]\w*)\s*:\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf)(?=\s|$)",
    re.IGNORECASE,
)
#: Old Keras (1.x and early 2.x) names and the names Keras uses now.
METRIC_ALIASES = {"acc": "accuracy", "val_acc": "val_accuracy"}


@dataclasses.dataclass(frozen=True)
class TrainingLog:
    """A Keras training log, parsed (see :func:`parse_keras_log`).

    Attributes:
        history: one list per metric, one value per completed epoch, like Keras's
            ``history.history`` (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ...).
            ``acc``/``val_acc`` from old logs are renamed ``accuracy``/``val_accuracy``.
        evaluate: the metrics of the final ``evaluate`` line, or ``None`` if the log has none.
        epoch_numbers: the number of each completed epoch, as printed (1-based).
        declared_epochs: the N of "Epoch i/N", or ``None``.
        renamed: old metric names that were renamed, for example ``("acc", "val_acc")``.
    """

    history: dict
    evaluate: dict | None
    epoch_numbers: tuple
    declared_epochs: int | None
    renamed: tuple = ()

    @property
    def epochs(self) -> int:
        """How many epochs the log holds."""
        return len(self.epoch_numbers)


def _log_segments(text: str):
    text = _ANSI.sub("", text)
    text = re.sub("\x08+", "\r", text)  # Keras 2 redraws its progress bar with backspaces
    for segment in re.split(r"[\r\n]", text):
        segment = segment.strip()
        if segment:
            yield segment


def _metrics_of(segment: str) -> dict:
    return {name: float(value) for name, value in _METRIC.findall(segment)}


def parse_keras_log(text: str) -> TrainingLog:
    """Turn a printed Keras training log into per-epoch lists, the way ``fit`` returns them.

    Accepts what users paste from Keras 3 (``━━━━`` bars), tf.keras 2 (``[=====]`` bars, ``42s
    53ms/step``) and old Keras 1/2 (``acc``/``val_acc``, ``Train on N samples``), with or without
    validation, with or without step timings, with the intermediate progress-bar lines (``ETA``,
    partial step counts, carriage returns, backspaces, colour codes) that a copy from a terminal
    or notebook contains. For every ``Epoch i/N`` header, the epoch's values are those of its
    completed line (all steps done, no ETA; the one with validation metrics if the run has any).
    A completed line after the last epoch (or a log with no epochs at all) is read as the
    ``evaluate`` result. Lines without `` - name: value`` pairs, such as ``print`` output, are
    ignored.

    Returns:
        A :class:`TrainingLog`.

    Raises:
        TypeError: ``text`` is not a string.
        ValueError: no epoch and no metric line could be read (never an empty success); the
            message shows what a Keras log looks like.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_keras_log needs the log as a string, got {type(text).__name__}")
    blocks, before = [], []
    declared = None
    for segment in _log_segments(text):
        header = _EPOCH.match(segment)
        if header:
            declared = int(header.group(2))
            blocks.append((int(header.group(1)), []))
            continue
        metrics = _metrics_of(segment)
        if not metrics:
            continue
        progress = _PROGRESS.match(segment)
        complete = "ETA" not in segment and (progress is None or progress.group(1) == progress.group(2))
        (blocks[-1][1] if blocks else before).append((metrics, complete))
    with_validation = any(any(k.startswith("val_") for k in m) for _, lines in blocks for m, _ in lines)

    epochs, evaluate = [], None
    for position, (number, lines) in enumerate(blocks):
        done = [i for i, (m, complete) in enumerate(lines) if complete]
        if with_validation:
            done = [i for i in done if any(k.startswith("val_") for k in lines[i][0])] or done
        if not done:
            continue  # an epoch cut off before it ended
        epochs.append((number, lines[done[0]][0]))
        if position == len(blocks) - 1:
            after = [m for m, complete in lines[done[0] + 1 :] if complete and not any(k.startswith("val_") for k in m)]
            evaluate = after[-1] if after else None
    if not blocks:
        finished = [m for m, complete in before if complete]
        evaluate = finished[-1] if finished else None
    if not epochs and evaluate is None:
        raise ValueError(
            "no Keras training log found in the text: expected lines such as 'Epoch 1/10' followed by "
            "'800/800 [====] - 42s 53ms/step - loss: 2.3026 - accuracy: 0.1850' (or an evaluate line like "
            "'460/460 - loss: 2.3082 - accuracy: 0.1875'). Paste the output of fit/evaluate as printed."
        )
    renamed = sorted(
        {k for _, m in epochs for k in m if k in METRIC_ALIASES}
        | ({k for k in evaluate if k in METRIC_ALIASES} if evaluate else set())
    )
    rename = lambda m: {METRIC_ALIASES.get(k, k): v for k, v in m.items()}  # noqa: E731
    keys = []
    for _, m in epochs:
        keys += [k for k in rename(m) if k not in keys]
    history = {k: [rename(m).get(k, float("nan")) for _, m in epochs] for k in keys}
    return TrainingLog(
        history, rename(evaluate) if evaluate else None, tuple(n for n, _ in epochs), declared, tuple(renamed)
    )


# --- Diagnosing a run (chapter 5) ---------------------------------------------------------------

#: The severities of a finding, the most serious first.
SEVERITIES = ("failure", "warning", "ok")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One conclusion of :func:`diagnose`.

    Attributes:
        code: stable identifier (``non-finite``, ``diverged``, ``uniform-output``,
            ``frozen-accuracy``, ``no-progress``, ``at-chance``, ``overfitting``, ``healthy``).
        severity: ``"failure"``, ``"warning"`` or ``"ok"``.
        message: what was seen and what it means, for a learner.
        evidence: the numbers behind it.
    """

    code: str
    severity: str
    message: str
    evidence: dict

    def __str__(self) -> str:
        """``[severity] code: message``, wrapped to :data:`TEXT_WIDTH` (``message`` stays one line)."""
        return wrap(f"[{self.severity}] {self.code}: {self.message}")


def _history_dict(history) -> tuple[dict, dict | None]:
    evaluate = None
    # a keras.callbacks.History, a TrainingLog or a tlbook.experiments.FitResult: the last two
    # carry their final evaluation too
    if not isinstance(history, dict) and isinstance(getattr(history, "history", None), dict):
        found = getattr(history, "evaluate", None)
        history, evaluate = history.history, found if isinstance(found, dict) else None
    if not isinstance(history, dict):
        raise TypeError(
            "diagnose needs a Keras history dict, a History, a TrainingLog or a fit_and_evaluate result, "
            f"got {type(history).__name__}"
        )
    out = {METRIC_ALIASES.get(k, k): [float(v) for v in vals] for k, vals in history.items()}
    if "loss" not in out or not out["loss"]:
        raise ValueError(f"the history has no 'loss' values; its keys are {sorted(history)}")
    return out, evaluate


def shares_entropy(class_counts: Sequence[float]) -> float:
    """Cross-entropy of a model that outputs the class shares for every input: the entropy of the
    shares, in nats. It equals ln K for balanced classes and is smaller otherwise."""
    shares = class_shares(class_counts)
    nz = shares[shares > 0]
    return float(-(nz * np.log(nz)).sum())


@dataclasses.dataclass(frozen=True)
class _Run:
    """What :func:`diagnose`'s rules read of a training run: its per-epoch series (``accuracy``,
    ``val_loss`` and ``val_accuracy`` may be ``None``), a final ``evaluate`` dict (possibly empty),
    K (``None`` if unknown), the class counts if given, and the tolerance for "equals ln K"."""

    loss: list
    accuracy: list | None
    val_loss: list | None
    val_accuracy: list | None
    evaluate: dict
    num_classes: int | None
    class_counts: Sequence[float] | None
    rel_tol: float

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def losses(self) -> dict:
        """{series name: values}: the training loss first, then validation and test."""
        return {
            "training loss": self.loss,
            "validation loss": self.val_loss or [],
            "test loss": [self.evaluate["loss"]] if "loss" in self.evaluate else [],
        }


def _divergence(run: _Run) -> Finding | None:
    """``non-finite`` (a loss became nan or inf) or ``diverged`` (the training loss ends at its
    highest, over twice its first and 0.1 above it), or ``None``. Checked first: the other rules read
    numbers that mean nothing after a divergence (and nan compares false with everything)."""
    for name, series in run.losses().items():
        bad = [i for i, value in enumerate(series) if not math.isfinite(value)]
        if bad:
            where = f"from epoch {bad[0] + 1}" if name == "training loss" else f"at its value {bad[0] + 1}"
            return Finding(
                "non-finite",
                "failure",
                f"the {name} is {series[bad[0]]} {where}: training diverged and the weights are no longer "
                "numbers. Lower the learning rate (10x), check the inputs for nan or inf, and look for a log "
                "or division of zero in a custom loss.",
                {"series": name, "index": bad[0] + 1, "loss": series[bad[0]]},
            )
    loss = run.loss
    if len(loss) >= 2 and 0 < loss[0] and loss[-1] > max(2 * loss[0], loss[0] + 0.1) and loss[-1] >= max(loss):
        return Finding(
            "diverged",
            "failure",
            f"the training loss rose from {loss[0]:.4f} to {loss[-1]:.4f}, its highest: training is diverging. "
            "Lower the learning rate (10x) and check the inputs' scale.",
            {"first": loss[0], "last": loss[-1]},
        )
    return None


def _uniform_output(run: _Run) -> Finding | None:
    """``uniform-output``: a final loss at ln K or at the entropy of the class shares, on a split
    whose accuracy an answer that ignores the image could reach (at most the largest class share,
    or 50 % without class counts); the first such series, compared with its closer reference."""
    if run.num_classes is None:
        return None
    k, counts, evaluate = run.num_classes, run.class_counts, run.evaluate
    # the most a model whose answer ignores the image can score: the largest class share (or,
    # without class counts, 50 %: more would need one class to hold half the data)
    constant_best = max(class_shares(counts)) if counts is not None else max(0.5, 1 / k)
    accuracy_of = {
        "training loss": run.accuracy[-1] if run.accuracy else None,
        "validation loss": run.val_accuracy[-1] if run.val_accuracy else None,
        "test loss": evaluate.get("accuracy"),
    }
    references = {"ln K": math.log(k)}
    if counts is not None:
        references["entropy of the class shares"] = shares_entropy(counts)
    for name, series in run.losses().items():
        if not series or (accuracy_of[name] is not None and accuracy_of[name] > constant_best + 0.02):
            continue  # no loss, or an accuracy that an answer ignoring the image cannot reach
        hits = sorted(
            (abs(series[-1] - ref), ref_name, ref)
            for ref_name, ref in references.items()
            if abs(series[-1] - ref) <= run.rel_tol * ref
        )
        if hits:
            _, ref_name, ref = hits[0]  # the closer reference explains the loss best
            return Finding(
                "uniform-output",
                "failure",
                f"the final {name} {series[-1]:.4f} equals {ref_name} = {ref:.4f} (within {run.rel_tol:.0%}): "
                "the model gives "
                "every input the same probabilities, a uniform guess or the class shares. Its output does "
                "not depend on the image.",
                {"loss": series[-1], "reference": ref, "reference_name": ref_name, "series": name},
            )
    return None


def _frozen_accuracy(run: _Run) -> Finding | None:
    """``frozen-accuracy``: training accuracy identical (within 0.002) from epoch 2 on, 3+ epochs."""
    acc, n = run.accuracy, run.epochs
    if not acc or n < 3:
        return None
    tail = acc[1:]
    if max(tail) - min(tail) > 0.002:
        return None
    same = [
        name
        for name, value in (
            ("validation", run.val_accuracy[-1] if run.val_accuracy else None),
            ("test", run.evaluate.get("accuracy")),
        )
        if value is not None and abs(value - tail[-1]) <= 0.002
    ]
    return Finding(
        "frozen-accuracy",
        "failure",
        f"training accuracy stays at {tail[-1]:.4f} from epoch 2 to {n}"
        + (f", and the {' and '.join(same)} accuracy is the same" if same else "")
        + ": the predictions do not change while the weights do. A model that answers the same class "
        "for every image scores exactly "
        "that class's share, on every split.",
        {"accuracy": tail[-1], "epochs": n, "same_on": same},
    )


def _no_progress(run: _Run) -> Finding | None:
    """``no-progress`` (a warning; :func:`diagnose` makes it a failure beside an earlier failure):
    the training loss fell by less than 5 % over the run."""
    loss, n = run.loss, run.epochs
    if n < 2:
        return None
    drop = (loss[0] - min(loss[1:])) / loss[0] if loss[0] > 0 else 0.0
    if drop >= 0.05:
        return None
    return Finding(
        "no-progress",
        "warning",
        f"the training loss fell by {drop:.1%} in {n} epochs ({loss[0]:.4f} → {min(loss[1:]):.4f}): "
        "training is not learning. "
        "(If this run continues an earlier one, for example fine-tuning after the head converged, a "
        "small drop can be normal.)",
        {"first": loss[0], "best": min(loss[1:]), "relative_drop": drop},
    )


def _at_chance(run: _Run) -> Finding | None:
    """``at-chance``: a final accuracy within a point of chance 1/K, or of the majority baseline
    when the class counts make that higher."""
    if run.num_classes is None:
        return None
    chance = 1.0 / run.num_classes
    baseline, baseline_name = chance, f"chance 1/K = {chance:.4f}"
    counts = run.class_counts
    if counts is not None and majority_baseline(counts) > chance:
        baseline, baseline_name = majority_baseline(counts), f"the majority baseline {majority_baseline(counts):.4f}"
    at = [
        (name, value)
        for name, value in (
            ("training", run.accuracy[-1] if run.accuracy else None),
            ("validation", run.val_accuracy[-1] if run.val_accuracy else None),
            ("test", run.evaluate.get("accuracy")),
        )
        if value is not None and value <= baseline + 0.01
    ]
    if not at:
        return None
    return Finding(
        "at-chance",
        "failure",
        f"{', '.join(f'{name} accuracy {value:.4f}' for name, value in at)} is no better than "
        f"{baseline_name}: "
        "a model that ignores its input does as well.",
        {"baseline": baseline, "accuracies": dict(at)},
    )


def _validation_epochs(n: int, m: int) -> list[int] | None:
    """The 0-based epochs of ``m`` validation values in an ``n``-epoch run: every epoch, or every
    f-th (Keras's ``validation_freq=f`` validates after epochs f, 2f, ...) when only one f gives
    ``m`` values; ``None`` when the values cannot be placed (a list ``validation_freq``)."""
    if m == n:
        return list(range(n))
    matches = [f for f in range(2, n + 1) if len(range(f - 1, n, f)) == m]
    return list(range(matches[0] - 1, n, matches[0])) if len(matches) == 1 else None


def _overfitting(run: _Run) -> Finding | None:
    """``overfitting``: the validation loss 5 % above its lowest, two or more validations after it,
    while the training loss kept falling; or a train-validation accuracy gap over 0.1 that grew by
    more than 0.05 since the best validation loss (validation every f epochs placed on its epochs)."""
    loss, acc, val_loss, val_acc, n = run.loss, run.accuracy, run.val_loss, run.val_accuracy, run.epochs
    if not val_loss or n < 3 or len(val_loss) < 2:
        return None
    epochs = _validation_epochs(n, len(val_loss))
    # validation values indexed by epoch; without their epochs, the run's first loss stands in
    at = epochs or [0] * len(val_loss)
    i = int(np.argmin(val_loss))
    best = at[i] if epochs else None
    # at least two validations after the best (two epochs, when they are placed on epochs)
    after_best = best <= n - 3 if epochs else i <= len(val_loss) - 3
    rising = after_best and val_loss[-1] > val_loss[i] * 1.05 and loss[-1] < loss[best or 0]
    aligned = epochs is not None and acc and val_acc and len(val_acc) == len(val_loss)
    gap_now = acc[-1] - val_acc[-1] if aligned and epochs[-1] == n - 1 else None
    gap_then = acc[best] - val_acc[i] if aligned else None
    widening = gap_now is not None and gap_now > 0.1 and gap_now - gap_then > 0.05
    if not (rising or widening):
        return None
    return Finding(
        "overfitting",
        "warning",
        "validation loss was lowest at "
        + (f"epoch {best + 1}" if best is not None else f"validation {i + 1} of {len(val_loss)}")
        + f" ({val_loss[i]:.4f}) and is {val_loss[-1]:.4f} at "
        + (f"epoch {epochs[-1] + 1}" if epochs else "the last one")
        + " while the training loss kept falling"
        + (
            f"; the train-validation accuracy gap grew from {gap_then:.3f} to {gap_now:.3f}"
            if gap_now is not None
            else ""
        )
        + ": the model is memorising its training images. Stop earlier (EarlyStopping), add data or "
        "augmentation, or regularise.",
        {
            "best_epoch": best + 1 if best is not None else None,
            "best_val_loss": val_loss[i],
            "final_val_loss": val_loss[-1],
            "gap": gap_now,
        },
    )


def _healthy(run: _Run) -> Finding:
    detail = f"the training loss fell from {run.loss[0]:.4f} to {run.loss[-1]:.4f}"
    if run.val_accuracy:
        detail += f", validation accuracy reached {run.val_accuracy[-1]:.4f}"
    if run.num_classes is not None:
        detail += f" (chance: {1 / run.num_classes:.4f})"
    return Finding("healthy", "ok", detail + ". No sign of the failures this checks for.", {"final_loss": run.loss[-1]})


#: :func:`diagnose`'s rules after the divergence check, in order; each reads a run and returns a
#: :class:`Finding` or ``None``.
_RULES = (_uniform_output, _frozen_accuracy, _no_progress, _at_chance, _overfitting)


def diagnose(
    history,
    *,
    num_classes: int | None = None,
    class_counts: Sequence[float] | None = None,
    evaluate: dict | None = None,
    rel_tol: float = 0.02,
) -> list[Finding]:
    """Read a training run the way an experienced engineer would, and say what is wrong with it.

    Args:
        history: Keras's ``history.history`` dict, a ``History`` object, a :class:`TrainingLog`
            (whose ``evaluate`` line is used too) or a :func:`tlbook.experiments.fit_and_evaluate`
            result (whose test loss and accuracy are used too).
        num_classes: K, if known. Without it (and without ``class_counts``) no claim about ln K,
            chance or class shares is made.
        class_counts: examples per class of the data the accuracies were measured on; gives K and
            the majority baseline.
        evaluate: ``{"loss": ..., "accuracy": ...}`` of a final test evaluation, if any.
        rel_tol: relative tolerance for "the loss equals ln K".

    Returns:
        Findings, failures first. A run whose loss became nan or inf (``non-finite``) or ends at its
        highest, over twice its first (``diverged``), gets that finding alone. Otherwise each rule
        adds at most one finding: ``uniform-output`` (the loss sits at ln K, or at the
        entropy of the class shares: the output does not depend on the input; not claimed where the
        same split's accuracy is above what an answer that ignores the input can score, the largest
        class share, or 50 % without class counts), ``frozen-accuracy``
        (training accuracy identical from epoch 2 on), ``no-progress`` (the training loss fell by
        less than 5 % over the run; a failure when one of the two before it fired, else a warning),
        ``at-chance`` (an accuracy no better than chance or the
        majority baseline), ``overfitting`` (training improves while validation loss rises or the
        accuracy gap widens; validation every f epochs, Keras's ``validation_freq=f``, is placed
        on its epochs), and ``healthy`` (none of these).

    Raises:
        TypeError, ValueError: a history without losses, or class counts and K that disagree.
    """
    hist, log_evaluate = _history_dict(history)
    evaluate = {METRIC_ALIASES.get(k, k): float(v) for k, v in (evaluate or log_evaluate or {}).items()}
    if class_counts is not None:
        k_counts = len(class_shares(class_counts))
        if num_classes is not None and _check_k(num_classes) != k_counts:
            raise ValueError(f"num_classes={num_classes} but class_counts lists {k_counts} classes")
        num_classes = k_counts
    run = _Run(
        loss=hist["loss"],
        accuracy=hist.get("accuracy"),
        val_loss=hist.get("val_loss"),
        val_accuracy=hist.get("val_accuracy"),
        evaluate=evaluate,
        num_classes=_check_k(num_classes) if num_classes is not None else None,
        class_counts=class_counts,
        rel_tol=rel_tol,
    )
    diverged = _divergence(run)
    if diverged is not None:
        return [diverged]
    findings = []
    for rule in _RULES:
        finding = rule(run)
        if finding is None:
            continue
        if finding.code == "no-progress" and any(f.severity == "failure" for f in findings):
            # no learning, and a failure found before that says why
            finding = dataclasses.replace(finding, severity="failure")
        findings.append(finding)
    return sorted(findings or [_healthy(run)], key=lambda f: SEVERITIES.index(f.severity))


def findings_table(findings: Sequence[Finding]):
    """The findings as a ``pandas.DataFrame`` (columns ``code``, ``severity``, ``message``), for display."""
    import pandas as pd

    return pd.DataFrame([{"code": f.code, "severity": f.severity, "message": f.message} for f in findings])


def article_log() -> str:
    """The training log printed in the article (§5.4), verbatim: ten epochs and the evaluation."""
    from importlib import resources

    return resources.files("tlbook").joinpath("data_files/article_log.txt").read_text(encoding="utf-8")


# --- The checklist: "your accuracy is frozen, what to check" (chapter 5) -------------------------


def prediction_histogram(predictions, num_classes: int) -> np.ndarray:
    """How many inputs the model assigns to each class.

    Args:
        predictions: ``(n, K)`` probabilities or ``(n,)`` predicted labels.

    Returns:
        ``int64`` counts ``(K,)``. One non-zero entry means the predictions collapsed to one class.
    """
    k = _check_k(num_classes)
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


def base_feature_spread(model, images, *, layer: str = "base") -> float:
    """:func:`feature_spread` of the features that ``model``'s layer ``layer`` (its frozen base)
    computes for ``images`` ``(n, h, w, 3)``, read from or written to the feature cache
    (:func:`tlbook.backbones.cached_features`): how different the images look to the head.

    Raises:
        ValueError: the model has no such layer, or the images do not fit it.
    """
    from tlbook.backbones import cached_features

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

    k = _check_k(num_classes)
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
    learning the pretrained statistics should stay put (frozen base, or ``training=False``);
    layers that move in a fine-tuned base on tiny batches are a classic cause of collapse.

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

    k = _check_k(num_classes)
    x = np.asarray(x, dtype="float32")
    y = np.asarray(y)
    rows = []

    def row(check, call, result, ok):
        rows.append({"check": check, "tlbook call": call, "result": result, "verdict": "ok" if ok else "problem"})

    model = build_model()
    loss0, _ = model.evaluate(x, y, batch_size=len(x), verbose=0)
    initial = check_initial_loss(float(loss0), k)
    row(
        "initial loss vs ln K",
        "check_initial_loss",
        f"{initial.loss:.3f} vs ln K = {initial.expected:.3f} ({initial.verdict})",
        initial.ok,
    )
    fit = overfit_one_batch(model, x, y, epochs=overfit_epochs)
    row(
        "can it overfit one batch?",
        "overfit_one_batch",
        f"accuracy {fit['accuracy']:.3f} on {len(x)} images after {overfit_epochs} steps",
        fit["ok"],
    )
    lo, hi = float(x.min()), float(x.max())
    # on the wrong scale if they stay far below the top (rescaled twice) or go past either end
    scale_ok = (
        hi > 0.5 * expected_input_range[1]
        and lo >= expected_input_range[0] - 1e-6
        and hi <= expected_input_range[1] + 1e-6
    )
    row(
        "input statistics",
        "input_statistics",
        f"inputs span {lo:.3g}..{hi:.3g}; the model expects {expected_input_range[0]:g}..{expected_input_range[1]:g}",
        scale_ok,
    )
    table = check_labels(y, k, class_names)
    missing = [name for name, c in table["count"].items() if c == 0]
    row(
        "labels",
        "check_labels",
        f"{k - len(missing)} of {k} classes present, shares {table['share'].min():.3f}..{table['share'].max():.3f}"
        + (f"; missing: {', '.join(map(str, missing))}" if missing else ""),
        not missing,
    )
    bn = batchnorm_report(model, x)
    moving = int(bn["updates statistics in fit"].sum()) if len(bn) else 0
    row(
        "BatchNorm mode",
        "batchnorm_report",
        f"{moving} of {len(bn)} BatchNorm layers update their statistics in fit",
        moving == 0,
    )
    if trained_model is not None:
        hist = prediction_histogram(trained_model.predict(x, verbose=0), k)
        row(
            "prediction histogram",
            "prediction_histogram",
            f"{int((hist > 0).sum())} of {k} classes predicted on this batch",
            (hist > 0).sum() > 1,
        )
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
