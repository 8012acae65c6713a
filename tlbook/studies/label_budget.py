"""Chapter 7's label-budget study: scratch against a linear probe and fine-tuning, for each
label budget and seed, and the tables and intervals the chapter prints from it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import numpy as np

from tlbook.config import seeded
from tlbook.probes import linear_probe
from tlbook.studies.pool import check_n_jobs, forget_on_failure, reuse_model, run_all
from tlbook.studies.results import cached_study
from tlbook.studies.runs import accuracy_on, labelled_subset
from tlbook.studies.tuning import ScratchTuning, tune_scratch


@dataclasses.dataclass(frozen=True)
class BudgetRun:
    """One run of :func:`label_budget_study`: one method trained on one draw of labelled images
    (:func:`run_method`), measured on the test split.

    Attributes:
        method: ``"scratch"``, ``"linear probe"`` or ``"fine-tuning"``.
        labels_per_class: the label budget, labelled images per class (an int), or ``"all"`` (the
            whole training split).
        seed: the seed that drew the labelled images and initialised the networks.
        accuracy: the final test accuracy, a fraction in [0, 1] (the curve's last).
        seconds: wall-clock seconds of the whole run (different on every machine).
        curve: ``(seconds since the start, test accuracy)`` after each chunk of training, a tuple of
            pairs in the order measured (the linear probe's has one).
    """

    method: str
    labels_per_class: int | str
    seed: int
    accuracy: float
    seconds: float
    curve: tuple[tuple[float, float], ...]

    def to_json(self) -> dict:
        """The run as JSON-serialisable values, as the cache stores it: ``{"method", "labels_per_class",
        "seed", "accuracy", "seconds", "curve"}``, ``curve`` a list of ``[seconds, accuracy]``."""
        return {**dataclasses.asdict(self), "curve": [list(point) for point in self.curve]}

    @classmethod
    def from_json(cls, data: Mapping) -> BudgetRun:
        """The run from :meth:`to_json`'s values (as the cache returns them).

        Raises:
            KeyError: a field is missing.
        """
        return cls(
            method=data["method"],
            labels_per_class=data["labels_per_class"],
            seed=data["seed"],
            accuracy=data["accuracy"],
            seconds=data["seconds"],
            curve=tuple((seconds, accuracy) for seconds, accuracy in data["curve"]),
        )


@dataclasses.dataclass(frozen=True)
class LabelBudgetStudy:
    """Chapter 7's label-budget study (:func:`label_budget_study`).

    Attributes:
        scratch: the scratch baseline's tuning the study used (:class:`~tlbook.studies.tuning.ScratchTuning`).
        runs: every :class:`BudgetRun`, a tuple in the order run: by budget, then seed, then method.
    """

    scratch: ScratchTuning
    runs: tuple[BudgetRun, ...]

    def to_json(self) -> dict:
        """The study as JSON-serialisable values, as the cache stores it: ``{"scratch": the tuning's
        JSON, "runs": [each run's JSON]}`` (:meth:`tlbook.studies.tuning.ScratchTuning.to_json`,
        :meth:`BudgetRun.to_json`)."""
        return {"scratch": self.scratch.to_json(), "runs": [run.to_json() for run in self.runs]}

    @classmethod
    def from_json(cls, data: Mapping) -> LabelBudgetStudy:
        """The study from :meth:`to_json`'s values (as the cache returns them).

        Raises:
            KeyError: a field is missing.
        """
        return cls(
            scratch=ScratchTuning.from_json(data["scratch"]),
            runs=tuple(BudgetRun.from_json(run) for run in data["runs"]),
        )


@forget_on_failure
def run_method(
    method: str,
    task,
    labels_per_class,
    seed: int,
    profile,
    scratch: ScratchTuning,
    *,
    head_steps: int = 200,
    finetune_steps: int = 100,
    chunk: int = 50,
    features: tuple | None = None,
    strategy=None,
) -> BudgetRun:
    """Train one method on one few-shot draw and measure it on the test split.

    Methods: ``"scratch"`` (random weights, ``scratch.learning_rate`` for
    :func:`scratch_steps` steps, BatchNorm recalibrated on the labelled images after each chunk),
    ``"linear probe"`` (:func:`tlbook.probes.linear_probe` on frozen pretrained features) and ``"fine-tuning"``
    (the head trained on cached features, copied into the full model, then the top block
    unfrozen at a 10x lower learning rate, :func:`tlbook.training.fine_tune`).

    Returns:
        :class:`BudgetRun`; its ``curve`` holds ``(seconds, test accuracy)`` after each chunk of
        training (for :func:`time_to_accuracy`).
    """
    labelled, _ = labelled_subset(task.train, labels_per_class, seed)
    train = labelled.x.astype("float32"), labelled.y
    test = task.test.x.astype("float32"), task.test.y
    start = time.perf_counter()
    if method == "scratch":
        curve = _run_scratch(task, seed, profile, train, test, start, scratch=scratch, chunk=chunk, strategy=strategy)
    elif method == "linear probe":
        curve = _run_probe(
            task, seed, profile, train, test, start, labels_per_class=labels_per_class, features=features
        )
    elif method == "fine-tuning":
        curve = _run_finetuning(
            task,
            seed,
            profile,
            train,
            test,
            start,
            labels_per_class=labels_per_class,
            features=features,
            head_steps=head_steps,
            finetune_steps=finetune_steps,
            chunk=chunk,
            strategy=strategy,
        )
    else:
        raise ValueError(f"unknown method {method!r}; choose scratch, linear probe or fine-tuning")
    return BudgetRun(
        method=method,
        labels_per_class=labels_per_class,
        seed=seed,
        accuracy=curve[-1][1],
        seconds=time.perf_counter() - start,
        curve=tuple((seconds, accuracy) for seconds, accuracy in curve),
    )


# Each method of run_method: trained on ``train`` (the draw's labelled images and labels), measured on
# ``test``, returning its curve of ``[seconds since start, test accuracy]`` points, the last one final.


def _run_scratch(task, seed, profile, train, test, start, *, scratch, chunk, strategy) -> list:
    """Random weights trained in chunks, BatchNorm recalibrated after each; a point per chunk."""
    from tlbook import models, training

    x, y = train
    curve = []
    lr = scratch.learning_rate
    model, _ = reuse_model(
        ("scratch", task.num_classes, repr(profile), lr, strategy),
        models.scratch_model(task.num_classes, profile, learning_rate=lr, seed=seed, strategy=strategy),
    )
    with seeded(seed):
        for i in range(scratch_steps(scratch, len(x), chunk=chunk) // chunk):
            training.fit_steps(model, x, y, chunk, seed=seed + 1000 * i)
            training.recalibrate_batchnorm(model, x)
            curve.append([time.perf_counter() - start, accuracy_on(model, *test)])
    return curve


def _run_probe(task, seed, profile, train, test, start, *, labels_per_class, features) -> list:
    """A linear probe on the frozen pretrained features; one point."""
    features, idx = _transfer_inputs(task, labels_per_class, seed, profile, features)
    accuracy = linear_probe(features[0][idx], train[1], features[1], test[1])
    return [[time.perf_counter() - start, accuracy]]


def _run_finetuning(
    task, seed, profile, train, test, start, *, labels_per_class, features, head_steps, finetune_steps, chunk, strategy
) -> list:
    """The head trained on the features and copied into the full model (a point), then fine-tuned in
    chunks (a point per chunk)."""
    from tlbook import models, training

    x, y = train
    features, idx = _transfer_inputs(task, labels_per_class, seed, profile, features)
    curve = []
    head, _ = reuse_model(
        ("head", features[0].shape[1], task.num_classes, strategy),
        models.head_model(features[0].shape[1], task.num_classes, seed=seed, strategy=strategy),
    )
    with seeded(seed):
        training.fit_steps(head, features[0][idx], y, head_steps, seed=seed)
        fresh = models.pretrained_model(task.num_classes, profile, seed=seed, strategy=strategy)
        training.copy_head(head, fresh)
        # a kept model is already unfrozen and compiled for fine-tuning (its first run did it)
        model, reused = reuse_model(("fine-tuning", task.num_classes, repr(profile), strategy), fresh)
        curve.append([time.perf_counter() - start, accuracy_on(model, *test)])
        for i in range(finetune_steps // chunk):
            training.fine_tune(
                model,
                x,
                y,
                head_steps=0,
                finetune_steps=chunk,
                chunk=chunk,
                seed=seed + 1000 * i,
                recompile=(i == 0 and not reused),
            )
            curve.append([time.perf_counter() - start, accuracy_on(model, *test)])
    return curve


def _transfer_inputs(task, labels_per_class, seed, profile, features):
    """``(features, idx)`` for the transfer methods: the pretrained backbone's features of the train and
    test splits (computed here unless given) and the indices of the draw's labelled images."""
    from tlbook.backbones import extract_features, pretrained_backbone

    if features is None:
        backbone = pretrained_backbone(profile)
        features = (extract_features(backbone, task.train.x), extract_features(backbone, task.test.x))
    return features, _few_shot_indices(task.train, labels_per_class, seed)


def scratch_steps(
    scratch: ScratchTuning, n_images: int, *, chunk: int = 50, min_epochs: int = 25, batch_size: int = 32
) -> int:
    """Optimizer steps for the scratch baseline on ``n_images``: the tuned number (``scratch.steps``),
    or ``min_epochs`` passes over the data if that is more (a larger budget needs more steps to be seen
    enough), rounded up to whole chunks."""
    steps = max(int(scratch.steps), min_epochs * -(-n_images // batch_size))
    return -(-steps // chunk) * chunk


def _few_shot_indices(split, labels_per_class, seed):
    from tlbook.data import sample_indices_per_class

    if labels_per_class == "all":
        return np.arange(len(split))
    return sample_indices_per_class(split.y, int(labels_per_class), seed=seed, class_names=split.class_names)


#: The methods :func:`label_budget_study` compares, in its tables' order.
METHODS = ("scratch", "linear probe", "fine-tuning")


def label_budget_study(
    profile=None,
    *,
    budgets=(1, 3, 10, 30, "all"),
    seeds=(0, 1, 2),
    methods=METHODS,
    shift: str | None = None,
    scratch: ScratchTuning | None = None,
    strategy=None,
    use_cache: bool = True,
    n_jobs: int | None = None,
) -> LabelBudgetStudy:
    """Accuracy of each method for each label budget and seed, on the quick profile's target task.

    Args:
        budgets: labelled images per class; ``"all"`` uses the whole training split.
        shift: ``None``, or ``"inverted"``: the target images as photo negatives (255 - pixel),
            a distribution shift between the source the backbone learned on and the target.
        scratch: the scratch baseline's tuning, a :func:`~tlbook.studies.tuning.tune_scratch` result (a
            :class:`~tlbook.studies.tuning.ScratchTuning`: its ``learning_rate`` and ``steps`` are used;
            the whole tuning is stored and keys the cache); default: ``tune_scratch(profile)``, its
            default grid. It is not checked against ``profile`` or ``shift``: pass one tuned on the
            same profile.
        n_jobs: run the (budget, seed, method) runs in that many worker processes (-1: every
            core; ``None``: here, one after the other). Each run seeds itself and computes with
            one thread, so the result is the same bits either way (the cache does not depend on
            it); only the ``seconds`` it reports grow when workers share a core. Each worker
            holds its own TensorFlow, about 0.7 GB (measured on Linux): on a machine with little
            memory and many cores, pass a number rather than -1.

    Returns:
        :class:`LabelBudgetStudy`: the scratch tuning and every run's :class:`BudgetRun` (cached as its
        :meth:`~LabelBudgetStudy.to_json`; see :func:`~tlbook.studies.results.cached_study`). Turn it
        into tables with :func:`budget_table`.

    Raises:
        ValueError: an unknown ``shift``, a bad ``n_jobs`` or ``n_jobs`` with a ``strategy``.
        TypeError: a ``scratch`` that is not a :class:`~tlbook.studies.tuning.ScratchTuning`.
    """
    from tlbook.backbones import extract_features, pretrained_backbone
    from tlbook.config import get_profile
    from tlbook.data import invert_task, target_task

    profile = profile or get_profile()
    if shift not in (None, "inverted"):
        raise ValueError(f"unknown shift {shift!r}; choose None or 'inverted'")
    check_n_jobs(n_jobs, strategy)
    scratch = _scratch_tuning(scratch, profile, strategy=strategy, use_cache=use_cache, n_jobs=n_jobs)

    def compute():
        task = target_task(profile)
        if shift == "inverted":
            task = invert_task(task)
        features = None
        if set(methods) & {"linear probe", "fine-tuning"}:
            backbone = pretrained_backbone(profile)
            features = (extract_features(backbone, task.train.x), extract_features(backbone, task.test.x))
        calls = [
            (run_method, (m, task, b, s, profile, scratch), {"features": features, "strategy": strategy})
            for b in budgets
            for s in seeds
            for m in methods
        ]
        runs = run_all(
            calls, n_jobs, f"label-budget study{' (inverted target)' if shift else ''}: budget x seed x method runs"
        )
        return LabelBudgetStudy(scratch=scratch, runs=tuple(runs)).to_json()

    settings = {
        "profile": profile.name,
        "budgets": list(map(str, budgets)),
        "seeds": list(seeds),
        "methods": list(methods),
        "shift": shift,
        "scratch": scratch.to_json(),
    }
    return LabelBudgetStudy.from_json(cached_study("label-budget", settings, compute, use_cache=use_cache))


def _scratch_tuning(scratch, profile, *, strategy, use_cache: bool, n_jobs) -> ScratchTuning:
    """:func:`label_budget_study`'s ``scratch``, checked; tuned now when it is ``None``."""
    if scratch is None:
        return tune_scratch(profile, strategy=strategy, use_cache=use_cache, n_jobs=n_jobs)
    if not isinstance(scratch, ScratchTuning):
        raise TypeError(f"scratch must be a tune_scratch result (a ScratchTuning), got {type(scratch).__name__}")
    return scratch


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
        best_method: ``"linear probe"`` or ``"fine-tuning"``, whichever has the higher mean.
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
    transfer = {m: row[(m, "mean")] for m in ("linear probe", "fine-tuning") if (m, "mean") in row.index}
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
        method: the transfer method compared with scratch.
        differences: per seed, the method's test accuracy minus scratch's (accuracy units).
        mean: their mean.
        low, high: the Student-t confidence interval for the mean.
        seeds: the seeds, in the order of ``differences``.
    """

    method: str
    differences: list[float]
    mean: float
    low: float
    high: float
    seeds: list[int]


def gain_interval(
    study: LabelBudgetStudy, labels_per_class=10, *, method: str | None = None, confidence: float = 0.95
) -> GainInterval:
    """How sure the transfer gain is: the per-seed differences between a transfer method and the
    scratch baseline (paired: the same seed draws the same labelled images for both), their mean
    and a Student-t confidence interval for it (:func:`tlbook.stats.paired_t_interval`).

    With 3 seeds the interval is wide (t has 2 degrees of freedom): a claim should hold over the
    whole interval, not just at its mean.

    Args:
        study: a :func:`label_budget_study` result.
        labels_per_class: the budget to compare at.
        method: the transfer method (default: the best one by mean, as :func:`transfer_gain`).
        confidence: the interval's coverage, between 0 and 1.

    Returns:
        :class:`GainInterval`.

    Raises:
        ValueError: fewer than 2 seeds with both methods, or a bad ``confidence``.
    """
    from tlbook.stats import paired_t_interval

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    method = method or transfer_gain(study, labels_per_class).best_method
    runs = [r for r in study.runs if r.labels_per_class == labels_per_class]
    by_seed = {}
    for r in runs:
        by_seed.setdefault(r.seed, {})[r.method] = r.accuracy
    pairs = {seed: m[method] - m["scratch"] for seed, m in sorted(by_seed.items()) if method in m and "scratch" in m}
    if len(pairs) < 2:
        raise ValueError(f"an interval needs at least 2 seeds with both {method!r} and 'scratch'; found {len(pairs)}")
    differences = [float(d) for d in pairs.values()]
    interval = paired_t_interval(differences, confidence=confidence)
    return GainInterval(
        method=method,
        differences=differences,
        mean=interval.estimate,
        low=interval.low,
        high=interval.high,
        seeds=list(pairs),
    )


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
    """
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
