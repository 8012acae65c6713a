"""Tuning the scratch baseline on a validation split, with a choice that does not flip on noise."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from tlbook.config import seeded
from tlbook.diagnostics import accuracy_standard_error
from tlbook.studies.pool import check_n_jobs, forget_on_failure, reuse_model, run_all
from tlbook.studies.results import cached_study
from tlbook.studies.runs import accuracy_on, labelled_subset


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
        learning_rate: the chosen learning rate (by :func:`one_standard_error_choice`).
        steps: the chosen number of optimizer steps.
    """

    grid: tuple[TuningPoint, ...]
    validation_images: int
    learning_rate: float
    steps: int

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

    Returns:
        :class:`ScratchTuning`: the grid of :class:`TuningPoint`, the number of validation images and
        the chosen ``learning_rate`` and ``steps`` (cached as its :meth:`~ScratchTuning.to_json`; see
        :func:`~tlbook.studies.results.cached_study`).

    Raises:
        ValueError: a bad ``n_jobs``, or ``n_jobs`` other than ``None``/1 with a ``strategy``.
    """
    from tlbook.config import get_profile
    from tlbook.data import target_task

    profile = profile or get_profile()
    seed = profile.seed if seed is None else seed
    check_n_jobs(n_jobs, strategy)

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
    return ScratchTuning.from_json(cached_study("tune-scratch", settings, compute, use_cache=use_cache))
