"""Tuning the scratch baseline on a validation split, with a choice that does not flip on noise."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from tlbook.config import seeded
from tlbook.diagnostics import accuracy_standard_error
from tlbook.studies.pool import check_n_jobs, forget_on_failure, reuse_model, run_all
from tlbook.studies.results import cached_study
from tlbook.studies.runs import accuracy_on, labelled_subset

#: Chapter 7's tuning choices, fixed in advance (``tune_scratch(fixed=...)``, ``tune_arms(fixed=...)``):
#: what :func:`one_standard_error_choice` picked from each grid on the run that computed the book's
#: stored outputs (the pages show those grids, with a ``rule`` column equal to ``chosen``). Where
#: two grid points are within noise of each other another computer's float arithmetic can tip
#: the rule the other way (one did: Chapter 7 tells it), and the study would then train another
#: recipe; with its choices fixed it trains the same one everywhere.
#: The fine-tuning arms' grids are trained after the fixed head, so a new head choice changes them:
#: fix it, run the tuning again, then read the arms' picks (two passes).
#: ``"scratch"``: ``(learning_rate, steps)``; ``"original"``, ``"inverted"``: arm -> learning rate,
#: for the tuning of the original target and of its photographic negative (``shift="inverted"``).
BOOK_CHOICES = {
    "scratch": (3e-3, 100),
    "original": {"head only": 1e-2, "top block": 3e-3, "full": 1e-3, "gradual": 1e-3},
    "inverted": {"head only": 1e-3, "top block": 3e-3, "early layers": 3e-4, "full": 3e-3, "AdaBN + full": 1e-3},
}


@dataclasses.dataclass(frozen=True)
class TuningPoint:
    """One point of :func:`tune_scratch`'s grid: a learning rate after some steps, on validation.

    Attributes:
        learning_rate: the scratch model's Adam learning rate.
        steps: optimizer steps trained at that rate so far.
        validation_accuracy: accuracy on the validation images (the rest of the training split), a
            fraction in [0, 1].
    """

    learning_rate: float
    steps: int
    validation_accuracy: float


@dataclasses.dataclass(frozen=True)
class ScratchTuning:
    """The scratch baseline's tuning (:func:`tune_scratch`): the grid it measured and its choice.

    Attributes:
        grid: the :class:`TuningPoint` of every learning rate after every chunk of steps, a tuple in
            the order measured (each learning rate's points together, fewest steps first).
        validation_images: how many validation images each accuracy was measured on.
        learning_rate: the learning rate it trains with: chosen by :func:`one_standard_error_choice`,
            or fixed in advance (:meth:`rule_choice` then tells the rule's pick).
        steps: the number of optimizer steps, chosen or fixed likewise.
    """

    grid: tuple[TuningPoint, ...]
    validation_images: int
    learning_rate: float
    steps: int

    def rule_choice(self) -> tuple[float, int]:
        """``(learning_rate, steps)`` that :func:`one_standard_error_choice` picks from this grid: the
        choice itself, unless it was fixed in advance (``tune_scratch(fixed=...)``)."""
        point = one_standard_error_choice(self.grid, self.validation_images)
        return point.learning_rate, point.steps

    def to_json(self) -> dict:
        """The tuning as JSON-serialisable values, as the cache stores it: ``{"grid": [{"learning_rate",
        "steps", "validation_accuracy"}, ...], "validation_images", "learning_rate", "steps"}``."""
        return {**dataclasses.asdict(self), "grid": [dataclasses.asdict(point) for point in self.grid]}

    @classmethod
    def from_json(cls, data: Mapping) -> ScratchTuning:
        """The tuning from :meth:`to_json`'s values (as the cache returns them).

        Raises:
            KeyError: a field is missing.
        """
        return cls(
            grid=tuple(
                TuningPoint(
                    learning_rate=point["learning_rate"],
                    steps=point["steps"],
                    validation_accuracy=point["validation_accuracy"],
                )
                for point in data["grid"]
            ),
            validation_images=data["validation_images"],
            learning_rate=data["learning_rate"],
            steps=data["steps"],
        )


@forget_on_failure
def _scratch_curve(
    task, labels_per_class, seed, profile, learning_rate, steps, chunk, strategy=None
) -> list[TuningPoint]:
    """One learning rate of :func:`tune_scratch`: validation accuracy after each chunk of steps."""
    from tlbook import models, training

    labelled, rest = labelled_subset(task.train, labels_per_class, seed)
    model, _ = reuse_model(
        ("scratch", task.num_classes, repr(profile), learning_rate, strategy),
        models.scratch_model(task.num_classes, profile, learning_rate=learning_rate, seed=seed, strategy=strategy),
    )
    curve = []
    with seeded(seed):
        for i in range(steps // chunk):
            training.fit_steps(model, labelled.x, labelled.y, chunk, seed=seed + 1000 * i)
            training.recalibrate_batchnorm(model, labelled.x)
            curve.append(
                TuningPoint(
                    learning_rate=learning_rate,
                    steps=chunk * (i + 1),
                    validation_accuracy=accuracy_on(model, rest.x, rest.y),
                )
            )
    return curve


def one_standard_error_choice(grid: Sequence[TuningPoint], n_images: int) -> TuningPoint:
    """The cheapest point of a tuning grid that is as good as the best, given the noise.

    An accuracy p measured on ``n_images`` images has a standard error of √(p(1 − p)/n)
    (:func:`tlbook.diagnostics.chance.accuracy_standard_error`). Every
    point within one standard error of the best accuracy is as good as the best; of those, this
    returns the one with the fewest ``steps``, and among equal steps the larger ``learning_rate``
    (the "one-standard-error rule" of Breiman et al., *Classification and Regression Trees*).
    Unlike the best point itself, the choice does not flip on a difference in the third decimal.

    Args:
        grid: the measured :class:`TuningPoint` (validation accuracy a fraction in [0, 1]).
        n_images: the number of validation images the accuracies were measured on.

    Raises:
        ValueError: an empty grid or ``n_images`` below 1.
    """
    if not grid:
        raise ValueError("the tuning grid is empty")
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images!r}")
    best = max(g.validation_accuracy for g in grid)
    margin = accuracy_standard_error(best, n_images)
    good = [g for g in grid if g.validation_accuracy >= best - margin]
    return min(good, key=lambda g: (g.steps, -g.learning_rate))


def tune_scratch(
    profile=None,
    *,
    labels_per_class: int = 10,
    learning_rates=(3e-4, 1e-3, 3e-3, 1e-2),
    steps: int = 300,
    chunk: int = 100,
    seed: int | None = None,
    strategy=None,
    use_cache: bool = True,
    n_jobs: int | None = None,
    fixed: tuple[float, int] | None = None,
) -> ScratchTuning:
    """Choose the scratch baseline's learning rate and number of steps on a validation split.

    Trains the scratch model at each learning rate on ``labels_per_class`` labelled images per
    class and measures accuracy on the *rest of the training split* (never the test split)
    every ``chunk`` steps, after recalibrating its BatchNorm statistics on the labelled images
    (:func:`tlbook.training.recalibrate_batchnorm`).

    ``seed`` (default: the profile's) draws the labelled images and seeds the training.
    ``n_jobs`` trains the learning rates in that many worker processes (-1: every core; ``None``:
    here, one after the other); the result is the same.

    The pair is chosen by :func:`one_standard_error_choice`: the fewest steps whose validation
    accuracy is within one standard error of the best, not the best itself, which a difference in
    the third decimal (another machine's float arithmetic) could move.

    Even so, a grid point that sits at the edge of that standard error is in on one computer and out
    on another. ``fixed=(learning_rate, steps)`` is a choice made in advance (by this rule, on the
    run that a study reports): the grid is measured all the same, :meth:`ScratchTuning.rule_choice`
    tells what the rule picks here, and the result trains with the fixed pair, so every machine
    runs the same recipe.

    Returns:
        :class:`ScratchTuning`: the grid of :class:`TuningPoint`, the number of validation images and
        the chosen (or fixed) ``learning_rate`` and ``steps`` (the rule's choice is cached as its
        :meth:`~ScratchTuning.to_json`; see :func:`~tlbook.studies.results.cached_study`).

    Raises:
        ValueError: a bad ``n_jobs``, or ``n_jobs`` other than ``None``/1 with a ``strategy``; a
            ``fixed`` rate that is not one of ``learning_rates`` or steps that are not a point of the
            grid (a multiple of ``chunk`` up to ``steps``).
    """
    from tlbook.config import get_profile
    from tlbook.data import target_task

    profile = profile or get_profile()
    seed = profile.seed if seed is None else seed
    check_n_jobs(n_jobs, strategy)
    if fixed is not None:
        rate, fixed_steps = fixed
        if rate not in learning_rates or fixed_steps not in range(chunk, steps + 1, chunk):
            raise ValueError(
                f"fixed={fixed!r} is not a point of the grid: the rate must be one of {list(learning_rates)} and the "
                f"steps one of {list(range(chunk, steps + 1, chunk))}"
            )

    def compute():
        task = target_task(profile)
        calls = [
            (_scratch_curve, (task, labels_per_class, seed, profile, lr, steps, chunk, strategy), {})
            for lr in learning_rates
        ]
        grid = [point for curve in run_all(calls, n_jobs, "tuning the scratch baseline") for point in curve]
        n_validation = len(labelled_subset(task.train, labels_per_class, seed)[1])
        choice = one_standard_error_choice(grid, n_validation)
        return ScratchTuning(
            grid=tuple(grid),
            validation_images=n_validation,
            learning_rate=choice.learning_rate,
            steps=choice.steps,
        ).to_json()

    settings = {
        "profile": profile.name,
        "labels_per_class": labels_per_class,
        "learning_rates": list(learning_rates),
        "steps": steps,
        "chunk": chunk,
        "seed": seed,
    }
    tuning = ScratchTuning.from_json(cached_study("tune-scratch", settings, compute, use_cache=use_cache))
    if fixed is None:
        return tuning
    return dataclasses.replace(tuning, learning_rate=fixed[0], steps=fixed[1])


@dataclasses.dataclass(frozen=True)
class ArmTuning:
    """One arm's learning rate, chosen on validation images (:func:`tune_arms`).

    Attributes:
        arm: the arm (:data:`tlbook.studies.arms.ARMS`).
        grid: a :class:`TuningPoint` per learning rate tried, all after the same number of steps.
        validation_images: how many validation images each accuracy was measured on.
        learning_rate: the rate it trains with, chosen by :func:`one_standard_error_choice` or fixed in
            advance (:meth:`rule_choice` then tells the rule's pick): the head's Adam rate for
            ``"head only"``, the base's for a fine-tuning arm (its head trains at 10x).
    """

    arm: str
    grid: tuple[TuningPoint, ...]
    validation_images: int
    learning_rate: float

    def rule_choice(self) -> float:
        """The rate :func:`one_standard_error_choice` picks from this grid: the choice itself, unless
        it was fixed in advance (``tune_arms(fixed=...)``)."""
        return one_standard_error_choice(self.grid, self.validation_images).learning_rate

    def to_json(self) -> dict:
        """The tuning as JSON-serialisable values: ``{"arm", "grid": [...], "validation_images", "learning_rate"}``."""
        return {**dataclasses.asdict(self), "grid": [dataclasses.asdict(point) for point in self.grid]}

    @classmethod
    def from_json(cls, data: Mapping) -> ArmTuning:
        """The tuning from :meth:`to_json`'s values.

        Raises:
            KeyError: a field is missing.
        """
        return cls(
            arm=data["arm"],
            grid=tuple(TuningPoint(**point) for point in data["grid"]),
            validation_images=data["validation_images"],
            learning_rate=data["learning_rate"],
        )


@dataclasses.dataclass(frozen=True)
class ArmRates:
    """Every arm's tuned learning rate (:func:`tune_arms`), with the scratch baseline's tuning.

    Attributes:
        scratch: the scratch baseline's tuning (:func:`tune_scratch`); its ``steps`` set every arm's
            steps (:func:`tlbook.studies.arms.arm_steps`).
        arms: an :class:`ArmTuning` per other arm tuned, head only first.
    """

    scratch: ScratchTuning
    arms: tuple[ArmTuning, ...]

    def learning_rate(self, arm: str) -> float:
        """The rate ``arm`` trains with: the scratch network's, the head's (``"head only"``; also
        ``"AdaBN"``, a head on adapted features) or the base's (a fine-tuning arm).

        Raises:
            KeyError: an arm that was not tuned.
        """
        if arm == "scratch":
            return self.scratch.learning_rate
        tuned = {t.arm: t.learning_rate for t in self.arms}
        if arm == "AdaBN":
            arm = "head only"
        if arm not in tuned:
            raise KeyError(f"no learning rate tuned for arm {arm!r}; tuned: {', '.join(['scratch', *tuned])}")
        return tuned[arm]

    def to_json(self) -> dict:
        """``{"scratch": ScratchTuning JSON, "arms": [ArmTuning JSON, ...]}``."""
        return {"scratch": self.scratch.to_json(), "arms": [t.to_json() for t in self.arms]}

    @classmethod
    def from_json(cls, data: Mapping) -> ArmRates:
        """The rates from :meth:`to_json`'s values.

        Raises:
            KeyError: a field is missing.
        """
        return cls(
            scratch=ScratchTuning.from_json(data["scratch"]),
            arms=tuple(ArmTuning.from_json(t) for t in data["arms"]),
        )


@forget_on_failure
def _arm_point(
    arm, task, labels_per_class, seed, profile, learning_rate, head_learning_rate, steps, features, adapted=None
):
    """One (arm, learning rate) of :func:`tune_arms`: validation accuracy after the arm's steps.
    ``features``: the frozen base's features of the whole training split; ``adapted``: the same
    after AdaBN on it (for the arms of :data:`tlbook.studies.arms.ADAPTED`)."""
    from tlbook.data import sample_indices_per_class
    from tlbook.studies.arms import ArmData, train_arm

    labelled, rest = labelled_subset(task.train, labels_per_class, seed)
    idx = sample_indices_per_class(task.train.y, int(labels_per_class), seed=seed, class_names=task.train.class_names)
    rest_idx = np.setdiff1d(np.arange(len(task.train)), idx)
    data = ArmData(
        x=labelled.x.astype("float32"),
        y=labelled.y,
        test_x=rest.x.astype("float32"),
        test_y=rest.y,
        features=features[idx],
        test_features=features[rest_idx],
        adapted=None if adapted is None else adapted[idx],
        test_adapted=None if adapted is None else adapted[rest_idx],
        unlabelled=None if adapted is None else task.train.x.astype("float32"),
    )
    curve = train_arm(
        arm,
        data,
        num_classes=task.num_classes,
        profile=profile,
        seed=seed,
        steps=steps,
        learning_rate=learning_rate,
        head_learning_rate=head_learning_rate,
        chunk=steps,
        curve=False,  # only the end is compared
    )
    rate = head_learning_rate if arm == "head only" else learning_rate
    return TuningPoint(learning_rate=rate, steps=steps, validation_accuracy=curve[-1][1])


def tune_arms(
    profile=None,
    *,
    arms=("top block", "full", "gradual"),
    shift: str | None = None,
    scratch: ScratchTuning | None = None,
    labels_per_class: int = 30,
    head_learning_rates=(3e-4, 1e-3, 3e-3, 1e-2),
    learning_rates=(1e-4, 3e-4, 1e-3, 3e-3),
    seed: int | None = None,
    use_cache: bool = True,
    n_jobs: int | None = None,
    fixed: Mapping[str, float] | None = None,
) -> ArmRates:
    """Choose every arm's learning rate on validation images, as :func:`tune_scratch` chose the
    scratch baseline's: ``labels_per_class`` labelled images per class drawn with ``seed``, the rest
    of the training split as validation, never the test split, and the same rule
    (:func:`one_standard_error_choice`: the largest rate within one standard error of the best).

    The default budget is 30 per class, not the scratch tuning's 10: with 10, Chapter 7's validation
    accuracy moved by no more than its noise across the whole grid (the rule's pick flipped from one
    CPU to another), while the rates do matter once there are more labels and steps to use them.

    The head-only arm is tuned first, over ``head_learning_rates``; its rate then trains the head
    of every fine-tuning arm's first phase, and each fine-tuning arm's base rate is tuned over
    ``learning_rates`` (its head at 10x). Every point trains the arm's steps
    (:func:`tlbook.studies.arms.arm_steps` for ``labels_per_class``).

    Args:
        arms: the fine-tuning arms to tune (:data:`tlbook.studies.arms.UNFREEZE`).
        shift: ``None`` or ``"inverted"`` (tune on the photo-negative target, as
            :func:`~tlbook.studies.label_budget.label_budget_study` trains on it).
        scratch: the scratch tuning whose steps set the arms' steps (default: ``tune_scratch(profile)``).
        n_jobs: as :func:`tune_scratch`; the result is the same.
        fixed: the rates chosen in advance, ``{"head only": rate, arm: rate, ...}`` for the head and
            every arm of ``arms`` (as :func:`tune_scratch`'s ``fixed``): every grid is measured all the
            same, each fine-tuning arm's with the fixed head rate; :meth:`ArmTuning.rule_choice`
            tells what the rule picks here, and each :class:`ArmTuning` trains with the fixed rate.

    Returns:
        :class:`ArmRates` (the rule's choices cached as its :meth:`~ArmRates.to_json`).

    Raises:
        ValueError: an unknown arm or shift, a bad ``n_jobs``, or ``fixed`` without a rate for the head
            or an arm, with a rate for an arm not tuned, or with a rate that is not in the arm's grid.
    """
    from tlbook.config import get_profile
    from tlbook.studies.arms import ADAPTED, UNFREEZE, arm_steps

    profile = profile or get_profile()
    seed = profile.seed if seed is None else seed
    unknown = [arm for arm in arms if arm not in UNFREEZE]
    if unknown:
        raise ValueError(f"unknown fine-tuning arms {unknown}; choose from {', '.join(UNFREEZE)}")
    if shift not in (None, "inverted"):
        raise ValueError(f"unknown shift {shift!r}; choose None or 'inverted'")
    check_n_jobs(n_jobs)
    if fixed is not None:
        fixed = dict(fixed)
        missing = [arm for arm in ("head only", *arms) if arm not in fixed]
        extra = [arm for arm in fixed if arm not in ("head only", *arms)]
        if missing or extra:
            raise ValueError(
                f"fixed needs a rate for exactly the head and {list(arms)}; missing {missing}, not tuned {extra}"
            )
        off_grid = {
            arm: rate
            for arm, rate in fixed.items()
            if rate not in (head_learning_rates if arm == "head only" else learning_rates)
        }
        if off_grid:
            raise ValueError(
                f"fixed rates {off_grid} are not in the grid: the head tries {list(head_learning_rates)}, "
                f"the fine-tuning arms {list(learning_rates)}"
            )
    scratch = scratch or tune_scratch(profile, use_cache=use_cache, n_jobs=n_jobs)

    def compute():
        from tlbook.backbones import extract_features, pretrained_backbone
        from tlbook.data import invert_task, target_task

        task = target_task(profile)
        if shift == "inverted":
            task = invert_task(task)
        features = extract_features(pretrained_backbone(profile), task.train.x)
        adapted = None
        if set(arms) & set(ADAPTED):
            from tlbook.finetuning import adapt_batchnorm

            backbone = pretrained_backbone(profile)
            adapt_batchnorm(backbone, task.train.x.astype("float32"))
            adapted = extract_features(backbone, task.train.x)
        n_validation = len(labelled_subset(task.train, labels_per_class, seed)[1])
        steps = arm_steps(scratch.steps, labels_per_class * task.num_classes)
        common = (task, labels_per_class, seed, profile)
        heads = run_all(
            [(_arm_point, ("head only", *common, None, rate, steps, features), {}) for rate in head_learning_rates],
            n_jobs,
            "tuning the head-only arm",
        )
        rule_rate = one_standard_error_choice(heads, n_validation).learning_rate
        head_rate = fixed["head only"] if fixed else rule_rate  # the head every fine-tuning arm starts from
        tuned = [ArmTuning("head only", tuple(heads), n_validation, rule_rate)]
        calls = [
            (_arm_point, (arm, *common, rate, head_rate, steps, features), {"adapted": adapted})
            for arm in arms
            for rate in learning_rates
        ]
        points = run_all(calls, n_jobs, "tuning the fine-tuning arms")
        for i, arm in enumerate(arms):
            grid = points[i * len(learning_rates) : (i + 1) * len(learning_rates)]
            tuned.append(
                ArmTuning(arm, tuple(grid), n_validation, one_standard_error_choice(grid, n_validation).learning_rate)
            )
        return ArmRates(scratch=scratch, arms=tuple(tuned)).to_json()

    settings = {
        "profile": profile.name,
        "arms": list(arms),
        "shift": shift,
        "scratch": scratch.to_json(),
        "labels_per_class": labels_per_class,
        "head_learning_rates": list(head_learning_rates),
        "learning_rates": list(learning_rates),
        "seed": seed,
        "fixed_head_rate": fixed["head only"] if fixed else None,  # the arms' grids train after that head
    }
    rates = ArmRates.from_json(cached_study("tune-arms", settings, compute, use_cache=use_cache))
    if fixed is None:
        return rates
    return dataclasses.replace(
        rates, arms=tuple(dataclasses.replace(t, learning_rate=fixed[t.arm]) for t in rates.arms)
    )


def rates_table(rates: ArmRates):
    """The arms' tuning grids side by side: validation accuracy per arm and learning rate tried, the
    rate the rule picks from that grid, and the rate chosen.

    Returns:
        ``pandas.DataFrame`` indexed by arm (head only first), a column per learning rate tried
        (accuracies as fractions; empty where an arm did not try that rate), ``rule`` (what
        :func:`one_standard_error_choice` picks from the row) and ``chosen`` (the rate the arm trains
        with: the rule's, or the one fixed in advance, ``tune_arms(fixed=...)``).
    """
    import pandas as pd

    rows = {
        t.arm: {
            **{p.learning_rate: p.validation_accuracy for p in t.grid},
            "rule": t.rule_choice(),
            "chosen": t.learning_rate,
        }
        for t in rates.arms
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    tried = sorted(c for c in table.columns if c not in ("rule", "chosen"))
    return table[[*tried, "rule", "chosen"]].rename_axis("arm")
