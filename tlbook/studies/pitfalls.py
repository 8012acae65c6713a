"""Chapter 6's fine-tuning pitfalls: each classic mistake against the right way, same data and seeds."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from tlbook.config import seeded
from tlbook.studies.pool import check_n_jobs, forget_on_failure, reuse_model, run_all
from tlbook.studies.results import cached_study
from tlbook.studies.runs import accuracy_on, labelled_subset

#: The fine-tuning variants of chapter 6: the right way and four classic mistakes.
PITFALLS = {
    "right way": {},
    "BatchNorm unfrozen (training mode)": {"keep_batchnorm_frozen": False},
    "learning rate too high (1e-2)": {"finetune_lr": 1e-2},
    "forgot to recompile": {"recompile": False},
    "unfroze before the head converged": {"head_steps": 0, "finetune_lr": 1e-3},
}


@dataclasses.dataclass(frozen=True)
class PitfallRun:
    """One (variant, seed) run of :func:`finetuning_pitfalls`.

    Attributes:
        variant: the :data:`PITFALLS` variant, ``"right way"`` or a mistake.
        seed: the seed that drew the labelled images and initialised the head.
        accuracy: test accuracy after fine-tuning, a fraction in [0, 1].
        head_accuracy: test accuracy after phase 1 (the head trained on the frozen base), a fraction;
            ``None`` for a variant without a head phase.
    """

    variant: str
    seed: int
    accuracy: float
    head_accuracy: float | None

    def to_json(self) -> dict:
        """The run as JSON-serialisable values, as the cache stores it: ``{"variant", "seed",
        "accuracy", "head_accuracy"}``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> PitfallRun:
        """The run from :meth:`to_json`'s values (as the cache returns them).

        Raises:
            KeyError: a field is missing.
        """
        return cls(
            variant=data["variant"], seed=data["seed"], accuracy=data["accuracy"], head_accuracy=data["head_accuracy"]
        )


@dataclasses.dataclass(frozen=True)
class PitfallStudy:
    """Chapter 6's fine-tuning pitfalls (:func:`finetuning_pitfalls`).

    Attributes:
        runs: every :class:`PitfallRun`, a tuple in the order run: by seed, then variant in
            :data:`PITFALLS`' order.
    """

    runs: tuple[PitfallRun, ...]

    def to_json(self) -> dict:
        """The study as JSON-serialisable values, as the cache stores it: ``{"runs": [each run's JSON]}``
        (:meth:`PitfallRun.to_json`)."""
        return {"runs": [run.to_json() for run in self.runs]}

    @classmethod
    def from_json(cls, data: Mapping) -> PitfallStudy:
        """The study from :meth:`to_json`'s values (as the cache returns them).

        Raises:
            KeyError: a field is missing.
        """
        return cls(runs=tuple(PitfallRun.from_json(run) for run in data["runs"]))


@forget_on_failure
def _pitfall_run(
    name, change, task, labels_per_class, seed, profile, head_steps, finetune_steps, finetune_lr, unfreeze_from
) -> PitfallRun:
    """One (variant, seed) run of :func:`finetuning_pitfalls`."""
    from tlbook import models, training
    from tlbook.backbones import extract_features, pretrained_backbone

    x_test, y_test = task.test.x.astype("float32"), task.test.y
    labelled, _ = labelled_subset(task.train, labels_per_class, seed)
    features = extract_features(pretrained_backbone(profile), labelled.x)  # phase 1 on cached features (Chapter 6)
    fresh = models.pretrained_model(task.num_classes, profile, seed=seed)
    hs = change.get("head_steps", head_steps)
    with seeded(seed):
        if hs:
            head, _ = reuse_model(
                ("head", features.shape[1], task.num_classes, None),
                models.head_model(features.shape[1], task.num_classes, seed=seed),
            )
            training.fit_steps(head, features, labelled.y, hs, seed=seed)
            training.copy_head(head, fresh)
        # a kept model is already unfrozen and (re)compiled as this variant does (its first run did it)
        variant = (name, repr(sorted(change.items())), finetune_lr, unfreeze_from)
        model, reused = reuse_model(("pitfall", variant, task.num_classes, repr(profile)), fresh)
        head_accuracy = accuracy_on(model, x_test, y_test) if hs else None
        training.fine_tune(
            model,
            labelled.x,
            labelled.y,
            head_steps=0,
            finetune_steps=finetune_steps + (head_steps - hs),
            chunk=finetune_steps + (head_steps - hs),
            finetune_lr=change.get("finetune_lr", finetune_lr),
            recompile=change.get("recompile", True) and not reused,
            keep_batchnorm_frozen=change.get("keep_batchnorm_frozen", True),
            unfreeze_from=unfreeze_from,
            seed=seed,
        )
        accuracy = accuracy_on(model, x_test, y_test)
    return PitfallRun(variant=name, seed=seed, accuracy=accuracy, head_accuracy=head_accuracy)


def finetuning_pitfalls(
    profile=None,
    *,
    labels_per_class: int = 10,
    seeds=(0, 1, 2),
    head_steps: int = 200,
    finetune_steps: int = 200,
    finetune_lr: float = 1e-4,
    unfreeze_from: str = "conv1",
    use_cache: bool = True,
    n_jobs: int | None = None,
) -> PitfallStudy:
    """Test accuracy of each :data:`PITFALLS` variant against the right way, same data and seeds.

    The right way: the article's head trained on the frozen pretrained base for ``head_steps``
    (on features computed once, which is the same computation, faster),
    then the base unfrozen from ``unfreeze_from`` on (default ``conv1``: all of it, where mistakes
    cost most), the model recompiled with Adam at
    ``finetune_lr`` (10x below the head's 1e-3) and trained ``finetune_steps`` more, BatchNorm
    kept frozen on its pretrained statistics. Each variant changes one thing.
    The variant without a head phase trains for ``head_steps + finetune_steps`` in one phase.

    ``n_jobs`` runs the (seed, variant) runs in that many worker processes (-1: every core;
    ``None``: here, one after the other); the result is the same.

    Returns:
        :class:`PitfallStudy`, a :class:`PitfallRun` per seed and variant (cached as its
        :meth:`~PitfallStudy.to_json`, see :func:`~tlbook.studies.results.cached_study`); a run's
        ``head_accuracy`` is the test accuracy after phase 1.

    Raises:
        ValueError: a bad ``n_jobs``.
    """
    from tlbook.config import get_profile
    from tlbook.data import target_task

    profile = profile or get_profile()
    check_n_jobs(n_jobs)

    def compute():
        from tlbook.backbones import pretrained_backbone

        task = target_task(profile)
        pretrained_backbone(profile)  # pretrained (and cached) here, once, before any worker reads it
        steps = {
            "head_steps": head_steps,
            "finetune_steps": finetune_steps,
            "finetune_lr": finetune_lr,
            "unfreeze_from": unfreeze_from,
        }
        calls = [
            (_pitfall_run, (name, change, task, labels_per_class, seed, profile), steps)
            for seed in seeds
            for name, change in PITFALLS.items()
        ]
        return PitfallStudy(runs=tuple(run_all(calls, n_jobs, "fine-tuning pitfalls: variant x seed"))).to_json()

    settings = {
        "profile": profile.name,
        "labels_per_class": labels_per_class,
        "seeds": list(seeds),
        "head_steps": head_steps,
        "finetune_steps": finetune_steps,
        "finetune_lr": finetune_lr,
        "unfreeze_from": unfreeze_from,
        "variants": PITFALLS,
    }
    return PitfallStudy.from_json(cached_study("finetuning-pitfalls", settings, compute, use_cache=use_cache))


def pitfall_table(study: PitfallStudy, *, confidence: float = 0.95):
    """Test accuracy per variant, and what each mistake costs against the right way, paired by seed.

    Each seed draws the labelled images and the initial weights that every variant shares, so a
    mistake's cost is compared seed by seed: its accuracy minus the right way's on the same seed,
    then the mean of those differences and its t interval (:func:`tlbook.stats.paired_t_interval`).

    Returns:
        ``pandas.DataFrame`` indexed by variant (``"fine-tuning variant"``), in the study's order,
        with columns ``mean`` and ``std`` (test accuracy over the seeds, a fraction), ``points vs
        right way`` (the mean paired difference, in accuracy points: negative means the mistake loses
        accuracy) and ``low``, ``high`` (the ends of its ``confidence`` interval, in points; both 0
        for the right way itself, and NaN for every variant when the study has one seed: one
        difference gives no interval).

    Raises:
        ValueError: fewer than two seeds, or a variant without a run on one of the right way's seeds.
    """
    import pandas as pd

    from tlbook.stats import paired_t_interval

    frame = pd.DataFrame([run.to_json() for run in study.runs])
    order = list(dict.fromkeys(frame["variant"]))
    table = frame.groupby("variant", sort=False)["accuracy"].agg(["mean", "std"]).reindex(order)
    right = frame[frame["variant"] == "right way"].set_index("seed")["accuracy"]
    intervals = []
    for variant in order:
        runs = frame[frame["variant"] == variant].set_index("seed")["accuracy"]
        if not set(right.index) <= set(runs.index) or runs.index.has_duplicates:
            raise ValueError(
                f"{variant!r} needs exactly one run on each of the right way's seeds {sorted(right.index)}, "
                f"has {sorted(runs.index)}; run finetuning_pitfalls with the same seeds for every variant"
            )
        differences = 100 * (runs[right.index] - right).to_numpy()
        if len(differences) < 2:
            intervals.append((float(differences.mean()), float("nan"), float("nan")))
        else:
            interval = paired_t_interval(differences, confidence=confidence)
            intervals.append((interval.estimate, interval.low, interval.high))
    table["points vs right way"] = [estimate for estimate, _, _ in intervals]
    table["low"] = [low for _, low, _ in intervals]
    table["high"] = [high for _, _, high in intervals]
    return table.rename_axis("fine-tuning variant")
