"""Chapter 7's label-budget study: scratch against the head alone on frozen features and against
fine-tuning that unfreezes more and more of the base, for each label budget and seed. The tables
and paired intervals the chapter prints from it are :mod:`tlbook.studies.budget_tables`'."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import numpy as np

from tlbook.studies.pool import check_n_jobs, forget_on_failure, run_all
from tlbook.studies.results import cached_study
from tlbook.studies.runs import labelled_subset
from tlbook.studies.tuning import ArmRates, tune_arms


@dataclasses.dataclass(frozen=True)
class BudgetRun:
    """One run of :func:`label_budget_study`: one method trained on one draw of labelled images
    (:func:`run_method`), measured on the test split.

    Attributes:
        method: the arm, one of :data:`~tlbook.studies.arms.ARMS`.
        labels_per_class: the label budget, labelled images per class (an int), or ``"all"`` (the
            whole training split).
        seed: the seed that drew the labelled images and initialised the networks.
        accuracy: the final test accuracy, a fraction in [0, 1] (the curve's last).
        seconds: wall-clock seconds of the whole run (different on every machine).
        curve: ``(seconds since the start, test accuracy)`` after each chunk of training, a tuple of
            pairs in the order measured (the head-only and AdaBN arms have one; so has every arm at
            a budget the study did not trace curves for: its end).
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
        rates: the arms' tuning the study used (:class:`~tlbook.studies.tuning.ArmRates`, the scratch
            baseline's tuning inside).
        runs: every :class:`BudgetRun`, a tuple by budget, then seed, then method.
        curve_budgets: the budgets whose runs were scored after every chunk of training (their
            curves are what :func:`~tlbook.studies.budget_tables.time_to_accuracy` reads), a tuple.
    """

    rates: ArmRates
    runs: tuple[BudgetRun, ...]
    curve_budgets: tuple = ()

    def to_json(self) -> dict:
        """The study as JSON-serialisable values, as the cache stores it: ``{"rates": the tuning's
        JSON, "runs": [each run's JSON], "curve_budgets": [...]}``
        (:meth:`tlbook.studies.tuning.ArmRates.to_json`, :meth:`BudgetRun.to_json`)."""
        return {
            "rates": self.rates.to_json(),
            "runs": [run.to_json() for run in self.runs],
            "curve_budgets": list(self.curve_budgets),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> LabelBudgetStudy:
        """The study from :meth:`to_json`'s values (as the cache returns them).

        Raises:
            KeyError: a field is missing.
        """
        return cls(
            rates=ArmRates.from_json(data["rates"]),
            runs=tuple(BudgetRun.from_json(run) for run in data["runs"]),
            # what tlbook 0.1.0 stored has no curve_budgets: it traced curves at every budget
            curve_budgets=tuple(
                data.get("curve_budgets", dict.fromkeys(run["labels_per_class"] for run in data["runs"]))
            ),
        )


@forget_on_failure
def run_method(
    method: str,
    task,
    labels_per_class,
    seed: int,
    profile,
    rates: ArmRates,
    *,
    features: tuple | None = None,
    adapted: tuple | None = None,
    chunk: int = 50,
    curve: bool = True,
) -> BudgetRun:
    """Train one arm on one few-shot draw and measure it on the test split.

    The draw is ``labels_per_class`` images per class, drawn with ``seed`` (which also initialises
    the networks); the arm trains :func:`~tlbook.studies.arms.arm_steps` steps at its tuned rate
    (``rates.learning_rate(method)``; :func:`~tlbook.studies.arms.train_arm`).

    Args:
        method: one of :data:`~tlbook.studies.arms.ARMS`.
        features: the frozen base's features ``(train, test)`` of the whole task (computed here if
            ``None``); adapted: the same after AdaBN (the ``"AdaBN"`` arm needs them).
        curve: ``False``: score the end only (:func:`~tlbook.studies.arms.train_arm`), the same
            final accuracy, sooner.

    Returns:
        :class:`BudgetRun`; its ``curve`` holds ``(seconds, test accuracy)`` after each chunk of
        training (for :func:`~tlbook.studies.budget_tables.time_to_accuracy`).

    Raises:
        ValueError: an unknown method.
    """
    from tlbook.studies.arms import ARMS, ArmData, arm_steps, train_arm

    if method not in ARMS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(ARMS)}")
    labelled, _ = labelled_subset(task.train, labels_per_class, seed)
    idx = _few_shot_indices(task.train, labels_per_class, seed)
    if features is None:
        features = _features(task, profile)
    data = ArmData(
        x=labelled.x.astype("float32"),
        y=labelled.y,
        test_x=task.test.x.astype("float32"),
        test_y=task.test.y,
        features=features[0][idx],
        test_features=features[1],
        adapted=None if adapted is None else adapted[0][idx],
        test_adapted=None if adapted is None else adapted[1],
        unlabelled=None if adapted is None else task.train.x.astype("float32"),
    )
    start = time.perf_counter()
    curve = train_arm(
        method,
        data,
        num_classes=task.num_classes,
        profile=profile,
        seed=seed,
        steps=arm_steps(rates.scratch.steps, len(labelled), chunk=chunk),
        learning_rate=rates.learning_rate(method),
        head_learning_rate=rates.learning_rate("head only"),
        chunk=chunk,
        curve=curve,
    )
    return BudgetRun(
        method=method,
        labels_per_class=labels_per_class,
        seed=seed,
        accuracy=curve[-1][1],
        seconds=time.perf_counter() - start,
        curve=tuple((seconds, accuracy) for seconds, accuracy in curve),
    )


def _features(task, profile, *, adapt: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The pretrained base's features of ``task``'s train and test splits; with ``adapt``, of the
    base after AdaBN on the (unlabelled) training images (:func:`tlbook.finetuning.adapt_batchnorm`)."""
    from tlbook.backbones import extract_features, pretrained_backbone
    from tlbook.finetuning import adapt_batchnorm

    backbone = pretrained_backbone(profile)
    if adapt:
        adapt_batchnorm(backbone, task.train.x.astype("float32"))
    return extract_features(backbone, task.train.x), extract_features(backbone, task.test.x)


def _images(split, labels_per_class) -> int:
    """How many labelled images a budget gives (``"all"``: the whole split)."""
    return len(split) if labels_per_class == "all" else int(labels_per_class) * split.num_classes


def _few_shot_indices(split, labels_per_class, seed):
    from tlbook.data import sample_indices_per_class

    if labels_per_class == "all":
        return np.arange(len(split))
    return sample_indices_per_class(split.y, int(labels_per_class), seed=seed, class_names=split.class_names)


#: The arms :func:`label_budget_study` compares by default, in its tables' order.
METHODS = ("scratch", "head only", "top block", "full", "gradual")


def label_budget_study(
    profile=None,
    *,
    budgets=(1, 3, 10, 30, "all"),
    seeds=(0, 1, 2, 3, 4),
    methods=METHODS,
    shift: str | None = None,
    rates: ArmRates | None = None,
    curve_budgets=(),
    use_cache: bool = True,
    n_jobs: int | None = None,
) -> LabelBudgetStudy:
    """Test accuracy of each arm for each label budget and seed, on the quick profile's target task.

    Every arm trains the same number of steps for a budget (:func:`~tlbook.studies.arms.arm_steps`)
    at its own learning rate, chosen on validation images (``rates``), and a seed draws the same
    labelled images for every arm, so arms compare paired (:func:`~tlbook.studies.budget_tables.gain_interval`).

    Args:
        budgets: labelled images per class; ``"all"`` uses the whole training split.
        methods: arms from :data:`~tlbook.studies.arms.ARMS`.
        shift: ``None``, or ``"inverted"``: the target images as photo negatives (255 - pixel),
            a distribution shift between the source the backbone learned on and the target.
        rates: the arms' tuning, a :func:`~tlbook.studies.tuning.tune_arms` result (an
            :class:`~tlbook.studies.tuning.ArmRates`; it keys the cache); default:
            ``tune_arms(profile, shift=shift)`` for the fine-tuning arms among ``methods``.
        curve_budgets: the budgets whose runs are scored on the test split after every chunk of
            training, for :func:`~tlbook.studies.budget_tables.time_to_accuracy`; the others are
            scored at the end only (a test pass per chunk saved; the same accuracies).
        n_jobs: run the (budget, seed, method) runs in that many worker processes (-1: every
            core; ``None``: here, one after the other). Each run seeds itself and computes with
            one thread, so the result is the same bits either way (the cache does not depend on
            it); only the ``seconds`` it reports grow when workers share a core. Each worker
            holds its own TensorFlow, about 0.7 GB (measured on Linux), and is kept for the next
            study until this process ends (:func:`~tlbook.studies.pool.stop_workers` ends it
            sooner): on a machine with little memory and many cores, pass a number rather than -1.

    Returns:
        :class:`LabelBudgetStudy`: the rates and every run's :class:`BudgetRun` (cached as its
        :meth:`~LabelBudgetStudy.to_json`; see :func:`~tlbook.studies.results.cached_study`). Turn it
        into tables with :func:`~tlbook.studies.budget_tables.budget_table` and
        :func:`~tlbook.studies.budget_tables.gain_interval`.

    Raises:
        ValueError: an unknown ``shift`` or method, a curve budget not among ``budgets``, or a bad
            ``n_jobs``.
        TypeError: ``curve_budgets`` that is one budget, not a tuple of them.
        TypeError: ``rates`` that are not an :class:`~tlbook.studies.tuning.ArmRates`.
        KeyError: ``rates`` without a rate for one of ``methods``.
    """
    from tlbook.config import get_profile
    from tlbook.data import invert_task, target_task
    from tlbook.studies.arms import ADAPTED, ARMS, UNFREEZE

    profile = profile or get_profile()
    if shift not in (None, "inverted"):
        raise ValueError(f"unknown shift {shift!r}; choose None or 'inverted'")
    unknown = [m for m in methods if m not in ARMS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {', '.join(ARMS)}")
    if isinstance(curve_budgets, (str, int)):
        raise TypeError(f"curve_budgets must be a tuple of budgets, e.g. (10,), got {curve_budgets!r}")
    traced = [b for b in curve_budgets if b not in budgets]
    if traced:
        raise ValueError(f"curve_budgets {traced} are not among the budgets {list(budgets)}")
    curve_budgets = tuple(b for b in budgets if b in curve_budgets)  # one order, one cache entry
    check_n_jobs(n_jobs)
    if rates is None:
        arms = tuple(m for m in methods if m in UNFREEZE)
        rates = tune_arms(profile, arms=arms, shift=shift, use_cache=use_cache, n_jobs=n_jobs)
    if not isinstance(rates, ArmRates):
        raise TypeError(f"rates must be a tune_arms result (an ArmRates), got {type(rates).__name__}")
    for method in methods:
        rates.learning_rate(method)  # a KeyError now, not in a worker after minutes

    def compute():
        task = target_task(profile)
        if shift == "inverted":
            task = invert_task(task)
        features = _features(task, profile) if set(methods) - {"scratch"} else None
        adapted = _features(task, profile, adapt=True) if set(methods) & set(ADAPTED) else None
        order = [(b, s, m) for b in budgets for s in seeds for m in methods]
        # the longest runs (the most labels) first, so that no worker is left alone with one at the end
        biggest_first = sorted(order, key=lambda run: -_images(task.train, run[0]))
        shared = {"features": features, "adapted": adapted}
        calls = [
            (run_method, (m, task, b, s, profile, rates), {**shared, "curve": b in curve_budgets})
            for b, s, m in biggest_first
        ]
        done = run_all(
            calls, n_jobs, f"label-budget study{' (inverted target)' if shift else ''}: budget x seed x arm runs"
        )
        runs = dict(zip(biggest_first, done, strict=True))
        return LabelBudgetStudy(
            rates=rates, runs=tuple(runs[run] for run in order), curve_budgets=tuple(curve_budgets)
        ).to_json()

    settings = {
        "profile": profile.name,
        "budgets": list(map(str, budgets)),
        "seeds": list(seeds),
        "methods": list(methods),
        "shift": shift,
        "rates": rates.to_json(),
        "curve_budgets": list(map(str, curve_budgets)),
    }
    return LabelBudgetStudy.from_json(cached_study("label-budget", settings, compute, use_cache=use_cache))
