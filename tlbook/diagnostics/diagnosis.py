"""Diagnosing a training run: the rules that read its losses and accuracies and say what went wrong.

:func:`diagnose` reads a run (a Keras history, a parsed log, a fit-and-evaluate result) against
the reference numbers of :mod:`tlbook.diagnostics.chance` and returns :class:`Finding` objects,
failures first: a loss that became nan or diverged, an output that ignores the input (loss at
ln K), frozen accuracy, no progress, accuracy at chance, overfitting, or a healthy run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from tlbook.diagnostics.chance import check_num_classes, class_shares, majority_baseline, shares_entropy
from tlbook.diagnostics.logs import METRIC_ALIASES
from tlbook.diagnostics.text import wrap

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
        """``[severity] code: message``, wrapped to :data:`~tlbook.diagnostics.text.TEXT_WIDTH`
        (``message`` stays one line)."""
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
        history: Keras's ``history.history`` dict, a ``History`` object, a
            :class:`~tlbook.diagnostics.logs.TrainingLog` (whose ``evaluate`` line is used too) or a
            :func:`tlbook.experiments.fit_and_evaluate` result (whose test loss and accuracy are used
            too).
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
        if num_classes is not None and check_num_classes(num_classes) != k_counts:
            raise ValueError(f"num_classes={num_classes} but class_counts lists {k_counts} classes")
        num_classes = k_counts
    run = _Run(
        loss=hist["loss"],
        accuracy=hist.get("accuracy"),
        val_loss=hist.get("val_loss"),
        val_accuracy=hist.get("val_accuracy"),
        evaluate=evaluate,
        num_classes=check_num_classes(num_classes) if num_classes is not None else None,
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
