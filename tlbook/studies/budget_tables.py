"""Reading Chapter 7's label-budget study: its tables (``budget_table``, ``paired_table``,
``regime_table``), the gain of transfer over scratch and its paired interval over seeds
(``transfer_gain``, ``gain_interval``, ``interval_strings``), and the time each arm takes to reach an
accuracy (``time_to_accuracy``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from tlbook.studies.label_budget import LabelBudgetStudy


def budget_table(study: LabelBudgetStudy):
    """Mean and standard deviation of test accuracy per method and label budget.

    Returns:
        ``pandas.DataFrame`` indexed by labels per class (in the study's order) with a column pair
        (``mean``, ``std``) per method, accuracies as fractions, over the seeds.
    """
    import pandas as pd

    frame = pd.DataFrame(
        [
            {"method": r.method, "labels_per_class": r.labels_per_class, "seed": r.seed, "accuracy": r.accuracy}
            for r in study.runs
        ]
    )
    order = list(dict.fromkeys(frame["labels_per_class"]))
    table = frame.groupby(["labels_per_class", "method"], sort=False)["accuracy"].agg(["mean", "std"]).unstack("method")
    table = table.reindex(order)
    table.columns = table.columns.swaplevel(0, 1)
    methods = list(dict.fromkeys(frame["method"]))
    return table[[(m, stat) for m in methods for stat in ("mean", "std")]].rename_axis("labels per class")


@dataclasses.dataclass(frozen=True)
class Gain:
    """The best transfer method against the scratch baseline at one label budget (:func:`transfer_gain`).

    Attributes:
        best_method: the transfer arm (any arm but ``"scratch"``) with the highest mean.
        best: its mean test accuracy over the seeds (a fraction).
        scratch: the scratch baseline's mean test accuracy (a fraction).
        gain: ``best - scratch``, in accuracy units (x 100 for points).
    """

    best_method: str
    best: float
    scratch: float
    gain: float


def transfer_gain(study: LabelBudgetStudy, labels_per_class=10) -> Gain:
    """The best transfer method's mean accuracy minus the scratch baseline's, at one budget.

    Returns:
        :class:`Gain`.

    Raises:
        KeyError: the study has no runs at ``labels_per_class``.
    """
    table = budget_table(study)
    row = table.loc[labels_per_class]
    transfer = {m: row[(m, "mean")] for m, stat in row.index if stat == "mean" and m != "scratch"}
    best = max(transfer, key=transfer.get)
    return Gain(
        best_method=best,
        best=float(transfer[best]),
        scratch=float(row[("scratch", "mean")]),
        gain=float(transfer[best] - row[("scratch", "mean")]),
    )


@dataclasses.dataclass(frozen=True)
class GainInterval:
    """The paired per-seed differences of :func:`gain_interval` and a confidence interval for their mean.

    Attributes:
        method: the arm compared.
        baseline: the arm it is compared with (``"scratch"`` unless asked otherwise).
        differences: per seed, the method's test accuracy minus the baseline's (accuracy units).
        mean: their mean.
        low, high: the Student-t confidence interval for the mean.
        seeds: the seeds, in the order of ``differences``.
    """

    method: str
    baseline: str
    differences: list[float]
    mean: float
    low: float
    high: float
    seeds: list[int]

    def points(self, digits: int = 0) -> str:
        """The mean and interval in points (x 100), signed: ``"+5 (+2 to +8)"``."""
        return _points(self.mean, self.low, self.high, digits)


def _points(mean: float, low: float, high: float, digits: int) -> str:
    def signed(value: float) -> str:  # a value that rounds to zero prints +0, not -0
        return f"{round(100 * value, digits) + 0.0:+.{digits}f}"

    return f"{signed(mean)} ({signed(low)} to {signed(high)})"


def gain_interval(
    study: LabelBudgetStudy,
    labels_per_class=10,
    *,
    method: str | None = None,
    baseline: str = "scratch",
    confidence: float = 0.95,
) -> GainInterval:
    """How sure a gain is: the per-seed differences between an arm and a baseline arm (paired: the
    same seed draws the same labelled images for both), their mean and a Student-t confidence
    interval for it (:func:`tlbook.stats.paired_t_interval`).

    With few seeds the interval is wide (t has seeds - 1 degrees of freedom): a claim should hold
    over the whole interval, not just at its mean.

    Args:
        study: a :func:`~tlbook.studies.label_budget.label_budget_study` result.
        labels_per_class: the budget to compare at.
        method: the arm (default: the best transfer arm by mean, as :func:`transfer_gain`).
        baseline: the arm subtracted, ``"scratch"`` or, to ask what fine-tuning adds, ``"head only"``.
        confidence: the interval's coverage, between 0 and 1.

    Returns:
        :class:`GainInterval`.

    Raises:
        ValueError: fewer than 2 seeds with both arms, or a bad ``confidence``.
    """
    from tlbook.stats import paired_t_interval

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    method = method or transfer_gain(study, labels_per_class).best_method
    runs = [r for r in study.runs if r.labels_per_class == labels_per_class]
    by_seed = {}
    for r in runs:
        by_seed.setdefault(r.seed, {})[r.method] = r.accuracy
    pairs = {seed: m[method] - m[baseline] for seed, m in sorted(by_seed.items()) if method in m and baseline in m}
    if len(pairs) < 2:
        raise ValueError(
            f"an interval needs at least 2 seeds with both {method!r} and {baseline!r}; found {len(pairs)}"
        )
    differences = [float(d) for d in pairs.values()]
    interval = paired_t_interval(differences, confidence=confidence)
    return GainInterval(
        method=method,
        baseline=baseline,
        differences=differences,
        mean=interval.estimate,
        low=interval.low,
        high=interval.high,
        seeds=list(pairs),
    )


def paired_table(study: LabelBudgetStudy, *, baseline: str = "head only", confidence: float = 0.95):
    """Every arm against one baseline arm at every budget: the mean per-seed difference in test
    accuracy and its paired Student-t interval (:func:`gain_interval`).

    Returns:
        ``pandas.DataFrame`` indexed by labels per class (the study's order), a column triple
        (``mean``, ``low``, ``high``) per arm other than ``baseline`` (the study's order),
        differences in accuracy units (x 100 for points).

    Raises:
        ValueError: the study lacks ``baseline``, or has fewer than 2 seeds.
    """
    import pandas as pd

    methods = [m for m in dict.fromkeys(r.method for r in study.runs) if m != baseline]
    if baseline not in {r.method for r in study.runs}:
        raise ValueError(f"the study has no runs of the baseline {baseline!r}")
    budgets = list(dict.fromkeys(r.labels_per_class for r in study.runs))
    rows = {}
    for budget in budgets:
        row = {}
        for method in methods:
            g = gain_interval(study, budget, method=method, baseline=baseline, confidence=confidence)
            row.update({(method, "mean"): g.mean, (method, "low"): g.low, (method, "high"): g.high})
        rows[budget] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["method", None])
    return table.rename_axis("labels per class")


def interval_strings(table, *, digits: int = 0):
    """A :func:`paired_table` as text a reader can scan: ``"+5 (+2 to +8)"`` per arm and budget, the
    mean difference and its interval in points (x 100), rounded to ``digits`` decimals
    (:meth:`GainInterval.points`).

    Returns:
        ``pandas.DataFrame`` with the table's index and one column per arm.
    """
    import pandas as pd

    methods = list(dict.fromkeys(m for m, _ in table.columns))
    out = {
        m: [
            _points(mean, low, high, digits)
            for mean, low, high in zip(table[(m, "mean")], table[(m, "low")], table[(m, "high")], strict=True)
        ]
        for m in methods
    }
    return pd.DataFrame(out, index=table.index)


#: The comparisons :func:`regime_table` makes by default: (arm, baseline), read "arm minus baseline".
REGIME_COMPARISONS = (("head only", "scratch"), ("full", "head only"), ("full", "scratch"))


def regime_table(
    studies: Mapping[str, LabelBudgetStudy],
    budgets,
    *,
    comparisons=REGIME_COMPARISONS,
    confidence: float = 0.95,
):
    """The "dataset size x similarity" grid, measured: for each study (a target) and budget, fixed
    paired comparisons (:func:`gain_interval`), by default the frozen head against scratch, what
    full fine-tuning adds to the frozen head, and full fine-tuning against scratch.

    Fixed arms rather than "the best arm": a best arm chosen by its mean would change with a
    difference of a tenth of a point, which another machine's arithmetic can make.

    Args:
        studies: target name → :func:`~tlbook.studies.label_budget.label_budget_study` result,
            e.g. ``{"similar": s, "different": t}``.
        budgets: the budgets to read, each present in every study.
        comparisons: ``(arm, baseline)`` pairs.

    Returns:
        ``pandas.DataFrame`` indexed by (target, labels per class), a column triple (``mean``,
        ``low``, ``high``) per comparison, named ``"arm - baseline"`` (accuracy units; turn it into
        text with :func:`interval_strings`).

    Raises:
        ValueError: a budget or arm missing from a study (fewer than 2 seeds with both arms).
    """
    import pandas as pd

    rows = {}
    for name, study in studies.items():
        for budget in budgets:
            row = {}
            for method, baseline in comparisons:
                g = gain_interval(study, budget, method=method, baseline=baseline, confidence=confidence)
                label = f"{method} - {baseline}"
                row.update({(label, "mean"): g.mean, (label, "low"): g.low, (label, "high"): g.high})
            rows[(name, budget)] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["target", "labels per class"])
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["comparison", None])
    return table


@dataclasses.dataclass(frozen=True)
class TimeToAccuracy:
    """How long each method took to reach a test accuracy (:func:`time_to_accuracy`).

    Attributes:
        target: the test accuracy to reach, a fraction in [0, 1].
        labels_per_class: the label budget whose runs were timed.
        seconds: per method (in the study's order), the wall-clock seconds of training until its runs
            first reached ``target``, the mean over the seeds that reached it; ``None`` where no seed did.
    """

    target: float
    labels_per_class: int | str
    seconds: dict[str, float | None]


def time_to_accuracy(study: LabelBudgetStudy, target: float, labels_per_class=10) -> TimeToAccuracy:
    """Seconds each method needed, in the study's runs at one budget, to first reach ``target``
    test accuracy (mean over the seeds that reached it; ``None`` if none did).

    Returns:
        :class:`TimeToAccuracy`.

    Raises:
        ValueError: ``labels_per_class`` is not among the study's ``curve_budgets`` (its runs were
            scored at the end only; pass ``curve_budgets=(labels_per_class,)`` to
            :func:`~tlbook.studies.label_budget.label_budget_study`).
    """
    if labels_per_class not in study.curve_budgets:
        raise ValueError(
            f"the study traced no curves at {labels_per_class!r} labels per class (its curve_budgets: "
            f"{list(study.curve_budgets)}); run label_budget_study(..., curve_budgets=({labels_per_class!r},))"
        )
    out = {}
    for method in dict.fromkeys(r.method for r in study.runs):
        times = []
        for r in study.runs:
            if r.method == method and r.labels_per_class == labels_per_class:
                hit = next((t for t, a in r.curve if a >= target), None)
                if hit is not None:
                    times.append(hit)
        out[method] = float(np.mean(times)) if times else None
    return TimeToAccuracy(target=target, labels_per_class=labels_per_class, seconds=out)
