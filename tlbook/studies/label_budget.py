"""The studies of chapters 6 and 7: many training runs, seeded, cached, summarised.

- :func:`label_budget_study` - scratch vs linear probe vs fine-tuning for each label budget and
  seed (Chapter 7), with the scratch baseline tuned on a validation split (:func:`tune_scratch`);
- :func:`finetuning_pitfalls` - each classic fine-tuning mistake against the right way (Chapter 6);
- :func:`budget_table`, :func:`transfer_gain`, :func:`time_to_accuracy`, :func:`pitfall_table` -
  the tables and numbers the chapters print from them.

Each study is computed once per setting and cached (:func:`cached_study`); ``n_jobs`` spreads its
runs over worker processes, with the same bits as one after the other.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from tlbook.config import seeded
from tlbook.diagnostics import accuracy_standard_error
from tlbook.probes import linear_probe
from tlbook.progress import progress_bar


def cached_study(name: str, settings: dict, compute, *, use_cache: bool = True) -> dict:
    """Run ``compute()`` once per ``settings`` and keep its (JSON) result in the tlbook cache.

    The key is a hash of ``name``, ``settings``, the versions of tlbook and Keras and the code
    that computes (:func:`tlbook.config.code_digest`), so a change to any of
    them recomputes. The file is written atomically; a damaged one
    is recomputed. Only the same code, run on this machine (for example by the test suite before
    the notebooks), can have produced a cached result. Processes that ask for the same result at
    the same time compute it once: the others wait for it (:func:`tlbook.config.cache_lock`).
    """
    import hashlib
    import importlib.metadata
    import json

    import tlbook
    from tlbook.config import cache_dir, cache_lock, code_digest, seed_offset
    from tlbook.files import atomic_write_text

    key_source = json.dumps(
        {
            "name": name,
            "settings": settings,
            "seed_offset": seed_offset(),  # TLBOOK_SEED_OFFSET perturbs every run: its own entry
            "code": code_digest(),
            "tlbook": tlbook.__version__,
            "keras": importlib.metadata.version("keras"),  # the installed one; no need to import it
        },
        sort_keys=True,
        default=str,
    )
    key = hashlib.sha256(key_source.encode()).hexdigest()[:12]
    path = cache_dir() / "results" / f"{name}-{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Another process computing the same result (a second notebook, a parallel test worker)
    # holds this lock until its file is written; this one then reads it instead of recomputing.
    with cache_lock(f"{name}-{key}"):
        if use_cache and path.is_file():
            try:
                return json.loads(path.read_text())
            except ValueError:
                pass
        result = compute()
        atomic_write_text(path, json.dumps(result))
    return result


# Models compiled (and their training and evaluation graphs traced) by an earlier run of a study in
# this process, keyed by everything those graphs depend on. Tracing a fresh model's graphs costs
# about 3 s of CPU, as much as 100 training steps of the small CNN, and a study trains ~50 models
# of a few kinds; a later run of the same kind takes the kept model instead, with its own
# freshly initialised weights copied in and the optimizer put back to step 0, which computes the
# same bits as the fresh model would (tests/test_studies.py checks it). Only the runs of a study
# keep models (_run_all and its worker processes set _keeping); the kept ones end with the study.
_kept_models: dict = {}
_keeping = False


def _reuse(key, fresh):
    """``(model, reused)``: ``fresh`` and ``False`` the first time ``key`` is seen in this process
    (``fresh`` is then kept under it, while a study runs); afterwards the kept model, holding
    ``fresh``'s weights (``get_weights``: trainable and non-trainable, BatchNorm statistics
    included; not a ``SeedGenerator``'s state, which these models, with no random layers, do not
    have) with its optimizer's slots and step count set back to zero, and ``True``. ``key`` must
    determine the kept model's architecture, which layers are trainable, its optimizer and
    learning rate, and whether it was recompiled. A run that fails leaves its key unkept."""
    kept = _kept_models.get(key)
    if kept is None:
        if _keeping:
            _kept_models[key] = fresh
        return fresh, False
    kept.set_weights(fresh.get_weights())
    learning_rate = float(np.asarray(kept.optimizer.learning_rate))
    for variable in kept.optimizer.variables:
        variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
    kept.optimizer.learning_rate.assign(learning_rate)
    return kept, True


def _forget_on_failure(run):
    """``run`` (a study's run function) with the models it kept forgotten if it raises: a model
    is kept before the run has put it in the state its key names (unfrozen, recompiled)."""

    @functools.wraps(run)
    def wrapper(*args, **kwargs):
        before = set(_kept_models)
        try:
            return run(*args, **kwargs)
        except BaseException:
            for key in set(_kept_models) - before:
                del _kept_models[key]
            raise

    return wrapper


def _check_n_jobs(n_jobs, strategy=None) -> None:
    from tlbook.config import study_jobs

    study_jobs()  # a bad TLBOOK_JOBS is refused before the cache is read, not only when computing
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1
    ):
        raise ValueError(f"n_jobs must be None, -1 (every core) or a positive integer, got {n_jobs!r}")
    if strategy is not None and n_jobs not in (None, 1):
        raise ValueError(
            "a tf.distribute strategy cannot be sent to worker processes; pass n_jobs=None with a strategy"
        )


def _start_worker(cache: str) -> None:
    """Prepare a worker process: the caller's cache, TensorFlow pinned to one intra-op thread like
    the notebooks' (before the worker's first TensorFlow operation), and its logger quiet."""
    import os

    from tlbook.config import CACHE_ENV, seed_everything

    global _keeping
    os.environ[CACHE_ENV] = cache
    _keeping = True  # this process runs one study's runs, and ends with it
    seed_everything(0, threads=1)
    import tensorflow as tf

    # This process is tlbook's own: its many fresh models make TensorFlow warn about retracing, on
    # the stderr it shares with the notebook or terminal that started the study.
    tf.get_logger().setLevel("ERROR")


def _run_all(calls, n_jobs, desc: str):
    """``[function(*args, **kwargs) for function, args, kwargs in calls]``, in order; with ``n_jobs``
    other than ``None`` or 1, spread over that many worker processes (-1: one per core). A progress
    bar (:mod:`tlbook.progress`) named ``desc`` counts the finished calls.

    Every call seeds itself and each worker computes with one thread, so the results are the same
    bits as in one process, only sooner. The workers are started afresh for each study (spawned,
    not forked: TensorFlow is not fork-safe) and end with it. ``TLBOOK_JOBS``
    (:data:`tlbook.config.JOBS_ENV`), when set, caps the number of workers; ``1`` runs every call
    here.

    Raises:
        ValueError: ``TLBOOK_JOBS`` set to anything but a positive integer
            (:func:`tlbook.config.study_jobs`).
    """
    import os

    from tlbook.config import study_jobs

    # the cores this process may run on (taskset, a container's CPU set), not the machine's
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n_jobs == -1:
        n_jobs = cores
    cap = study_jobs()
    if cap is not None and n_jobs is not None:
        n_jobs = min(n_jobs, cap)
    with progress_bar(len(calls), desc=desc, unit="run") as bar:
        if n_jobs in (None, 1):
            import tensorflow as tf

            global _keeping
            results = []
            _keeping = True
            # the many fresh models of a study make TensorFlow warn about retracing (as in a worker,
            # _start_worker): not the caller's business, and not for a notebook's page
            logger = tf.get_logger()
            level = logger.level
            logger.setLevel("ERROR")
            try:
                for function, args, kwargs in calls:
                    results.append(function(*args, **kwargs))
                    bar.update(1)
            finally:
                logger.setLevel(level)
                _keeping = False
                _kept_models.clear()  # a worker's end with the study frees them; here, this does
            return results
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        from tlbook.config import cache_dir

        workers = min(n_jobs, len(calls))
        with ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(str(cache_dir()),),
        ) as pool:
            futures = [pool.submit(function, *args, **kwargs) for function, args, kwargs in calls]
            for _ in as_completed(futures):
                bar.update(1)
            return [future.result() for future in futures]


def _labelled(split, labels_per_class, seed):
    """The few-shot training subset and the rest of the training split (for validation)."""
    from tlbook.data import split_labelled

    if labels_per_class == "all":
        return split, None
    return split_labelled(split, int(labels_per_class), seed=seed)


def _accuracy(model, x, y) -> float:
    return float(model.evaluate(np.asarray(x, dtype="float32"), y, batch_size=256, verbose=0)[1])


@_forget_on_failure
def _scratch_curve(task, labels_per_class, seed, profile, learning_rate, steps, chunk, strategy=None) -> list[dict]:
    """One learning rate of :func:`tune_scratch`: validation accuracy after each chunk of steps."""
    from tlbook import training

    labelled, rest = _labelled(task.train, labels_per_class, seed)
    model, _ = _reuse(
        ("scratch", task.num_classes, repr(profile), learning_rate, strategy),
        training.scratch_model(task.num_classes, profile, learning_rate=learning_rate, seed=seed, strategy=strategy),
    )
    curve = []
    with seeded(seed):
        for i in range(steps // chunk):
            training.fit_steps(model, labelled.x, labelled.y, chunk, seed=seed + 1000 * i)
            training.recalibrate_batchnorm(model, labelled.x)
            curve.append(
                {
                    "learning_rate": learning_rate,
                    "steps": chunk * (i + 1),
                    "validation_accuracy": _accuracy(model, rest.x, rest.y),
                }
            )
    return curve


def one_standard_error_choice(grid: Sequence[Mapping], n_images: int) -> Mapping:
    """The cheapest point of a tuning grid that is as good as the best, given the noise.

    An accuracy p measured on ``n_images`` images has a standard error of √(p(1 − p)/n)
    (:func:`tlbook.diagnostics.accuracy_standard_error`). Every
    point within one standard error of the best accuracy is as good as the best; of those, this
    returns the one with the fewest ``steps``, and among equal steps the larger ``learning_rate``
    (the "one-standard-error rule" of Breiman et al., *Classification and Regression Trees*).
    Unlike the best point itself, the choice does not flip on a difference in the third decimal.

    Args:
        grid: mappings with ``"learning_rate"``, ``"steps"`` and ``"validation_accuracy"`` (a
            fraction in [0, 1]).
        n_images: the number of validation images the accuracies were measured on.

    Raises:
        ValueError: an empty grid or ``n_images`` below 1.
    """
    if not grid:
        raise ValueError("the tuning grid is empty")
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images!r}")
    best = max(g["validation_accuracy"] for g in grid)
    margin = accuracy_standard_error(best, n_images)
    good = [g for g in grid if g["validation_accuracy"] >= best - margin]
    return min(good, key=lambda g: (g["steps"], -g["learning_rate"]))


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
) -> dict:
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
        A dict with ``"grid"`` (a list of ``{"learning_rate", "steps", "validation_accuracy"}``),
        ``"validation_images"``, ``"learning_rate"`` and ``"steps"``.

    Raises:
        ValueError: a bad ``n_jobs``, or ``n_jobs`` other than ``None``/1 with a ``strategy``.
    """
    from tlbook.config import get_profile
    from tlbook.data import target_task

    profile = profile or get_profile()
    seed = profile.seed if seed is None else seed
    _check_n_jobs(n_jobs, strategy)

    def compute():
        task = target_task(profile)
        calls = [
            (_scratch_curve, (task, labels_per_class, seed, profile, lr, steps, chunk, strategy), {})
            for lr in learning_rates
        ]
        grid = [point for curve in _run_all(calls, n_jobs, "tuning the scratch baseline") for point in curve]
        n_validation = len(_labelled(task.train, labels_per_class, seed)[1])
        choice = one_standard_error_choice(grid, n_validation)
        return {
            "grid": grid,
            "validation_images": n_validation,
            "learning_rate": choice["learning_rate"],
            "steps": choice["steps"],
        }

    settings = {
        "profile": profile.name,
        "labels_per_class": labels_per_class,
        "learning_rates": list(learning_rates),
        "steps": steps,
        "chunk": chunk,
        "seed": seed,
    }
    return cached_study("tune-scratch", settings, compute, use_cache=use_cache)


@_forget_on_failure
def run_method(
    method: str,
    task,
    labels_per_class,
    seed: int,
    profile,
    scratch: dict,
    *,
    head_steps: int = 200,
    finetune_steps: int = 100,
    chunk: int = 50,
    features: tuple | None = None,
    strategy=None,
) -> dict:
    """Train one method on one few-shot draw and measure it on the test split.

    Methods: ``"scratch"`` (random weights, ``scratch["learning_rate"]`` for
    :func:`scratch_steps` steps, BatchNorm recalibrated on the labelled images after each chunk),
    ``"linear probe"`` (:func:`tlbook.probes.linear_probe` on frozen pretrained features) and ``"fine-tuning"``
    (the head trained on cached features, copied into the full model, then the top block
    unfrozen at a 10x lower learning rate, :func:`tlbook.training.fine_tune`).

    Returns:
        ``{"method", "labels_per_class", "seed", "accuracy", "seconds", "curve"}``; ``curve`` lists
        ``[seconds, test accuracy]`` after each chunk of training (for time-to-accuracy).
    """
    import time

    from tlbook import training
    from tlbook.backbones import extract_features, pretrained_backbone

    labelled, _ = _labelled(task.train, labels_per_class, seed)
    x, y = labelled.x.astype("float32"), labelled.y
    x_test, y_test = task.test.x.astype("float32"), task.test.y
    start = time.perf_counter()
    curve = []
    if method == "scratch":
        lr = scratch["learning_rate"]
        model, _ = _reuse(
            ("scratch", task.num_classes, repr(profile), lr, strategy),
            training.scratch_model(task.num_classes, profile, learning_rate=lr, seed=seed, strategy=strategy),
        )
        with seeded(seed):
            for i in range(scratch_steps(scratch, len(x), chunk=chunk) // chunk):
                training.fit_steps(model, x, y, chunk, seed=seed + 1000 * i)
                training.recalibrate_batchnorm(model, x)
                curve.append([time.perf_counter() - start, _accuracy(model, x_test, y_test)])
        accuracy = curve[-1][1]
    elif method in ("linear probe", "fine-tuning"):
        if features is None:
            backbone = pretrained_backbone(profile)
            features = (extract_features(backbone, task.train.x), extract_features(backbone, task.test.x))
        idx = _few_shot_indices(task.train, labels_per_class, seed)
        if method == "linear probe":
            accuracy = linear_probe(features[0][idx], y, features[1], y_test)
            curve.append([time.perf_counter() - start, accuracy])
        else:
            head, _ = _reuse(
                ("head", features[0].shape[1], task.num_classes, strategy),
                training.head_model(features[0].shape[1], task.num_classes, seed=seed, strategy=strategy),
            )
            with seeded(seed):
                training.fit_steps(head, features[0][idx], y, head_steps, seed=seed)
                fresh = training.pretrained_model(task.num_classes, profile, seed=seed, strategy=strategy)
                training.copy_head(head, fresh)
                # a kept model is already unfrozen and compiled for fine-tuning (its first run did it)
                model, reused = _reuse(("fine-tuning", task.num_classes, repr(profile), strategy), fresh)
                curve.append([time.perf_counter() - start, _accuracy(model, x_test, y_test)])
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
                    curve.append([time.perf_counter() - start, _accuracy(model, x_test, y_test)])
            accuracy = curve[-1][1]
    else:
        raise ValueError(f"unknown method {method!r}; choose scratch, linear probe or fine-tuning")
    return {
        "method": method,
        "labels_per_class": labels_per_class,
        "seed": seed,
        "accuracy": accuracy,
        "seconds": time.perf_counter() - start,
        "curve": curve,
    }


def scratch_steps(scratch: dict, n_images: int, *, chunk: int = 50, min_epochs: int = 25, batch_size: int = 32) -> int:
    """Steps for the scratch baseline on ``n_images``: the tuned number, or ``min_epochs`` passes
    over the data if that is more (a larger budget needs more steps to be seen enough), rounded up
    to whole chunks."""
    steps = max(int(scratch["steps"]), min_epochs * -(-n_images // batch_size))
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
    scratch: Mapping | None = None,
    strategy=None,
    use_cache: bool = True,
    n_jobs: int | None = None,
) -> dict:
    """Accuracy of each method for each label budget and seed, on the quick profile's target task.

    Args:
        budgets: labelled images per class; ``"all"`` uses the whole training split.
        shift: ``None``, or ``"inverted"``: the target images as photo negatives (255 - pixel),
            a distribution shift between the source the backbone learned on and the target.
        scratch: the scratch baseline's tuning, a :func:`tune_scratch` result (its
            ``"learning_rate"`` and ``"steps"`` are used; the whole mapping is stored and keys the
            cache); default: ``tune_scratch(profile)``, its default grid. It is not checked against
            ``profile`` or ``shift``: pass one tuned on the same profile.
        n_jobs: run the (budget, seed, method) runs in that many worker processes (-1: every
            core; ``None``: here, one after the other). Each run seeds itself and computes with
            one thread, so the result is the same bits either way (the cache does not depend on
            it); only the ``seconds`` it reports grow when workers share a core. Each worker
            holds its own TensorFlow, about 0.7 GB (measured on Linux): on a machine with little
            memory and many cores, pass a number rather than -1.

    Returns:
        ``{"scratch": tune_scratch result, "runs": [run_method results]}`` (cached; see
        :func:`cached_study`). Turn it into tables with :func:`budget_table`.

    Raises:
        ValueError: an unknown ``shift``, a bad ``n_jobs``, ``n_jobs`` with a ``strategy``, or a
            ``scratch`` without ``"learning_rate"`` and ``"steps"``.
    """
    from tlbook.backbones import extract_features, pretrained_backbone
    from tlbook.config import get_profile
    from tlbook.data import invert_task, target_task

    profile = profile or get_profile()
    if shift not in (None, "inverted"):
        raise ValueError(f"unknown shift {shift!r}; choose None or 'inverted'")
    _check_n_jobs(n_jobs, strategy)
    if scratch is None:
        scratch = tune_scratch(profile, strategy=strategy, use_cache=use_cache, n_jobs=n_jobs)
    elif not {"learning_rate", "steps"} <= set(scratch):
        raise ValueError(
            f"scratch must be a tune_scratch result with 'learning_rate' and 'steps', got keys {sorted(scratch)}"
        )
    else:
        scratch = dict(scratch)

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
        runs = _run_all(
            calls, n_jobs, f"label-budget study{' (inverted target)' if shift else ''}: budget x seed x method runs"
        )
        return {"scratch": scratch, "runs": runs}

    settings = {
        "profile": profile.name,
        "budgets": list(map(str, budgets)),
        "seeds": list(seeds),
        "methods": list(methods),
        "shift": shift,
        "scratch": scratch,
    }
    return cached_study("label-budget", settings, compute, use_cache=use_cache)


def budget_table(study: dict):
    """Mean and standard deviation of test accuracy per method and label budget.

    Returns:
        ``pandas.DataFrame`` indexed by labels per class (in the study's order) with a column pair
        (``mean``, ``std``) per method, accuracies as fractions, over the seeds.
    """
    import pandas as pd

    frame = pd.DataFrame([{k: r[k] for k in ("method", "labels_per_class", "seed", "accuracy")} for r in study["runs"]])
    order = list(dict.fromkeys(frame["labels_per_class"]))
    table = frame.groupby(["labels_per_class", "method"], sort=False)["accuracy"].agg(["mean", "std"]).unstack("method")
    table = table.reindex(order)
    table.columns = table.columns.swaplevel(0, 1)
    methods = list(dict.fromkeys(frame["method"]))
    return table[[(m, stat) for m in methods for stat in ("mean", "std")]].rename_axis("labels per class")


def transfer_gain(study: dict, labels_per_class=10) -> dict:
    """The best transfer method's mean accuracy minus the scratch baseline's, at one budget.

    Returns:
        ``{"best_method", "best", "scratch", "gain"}`` (fractions; ``gain`` in accuracy units,
        multiply by 100 for points).
    """
    table = budget_table(study)
    row = table.loc[labels_per_class]
    transfer = {m: row[(m, "mean")] for m in ("linear probe", "fine-tuning") if (m, "mean") in row.index}
    best = max(transfer, key=transfer.get)
    return {
        "best_method": best,
        "best": float(transfer[best]),
        "scratch": float(row[("scratch", "mean")]),
        "gain": float(transfer[best] - row[("scratch", "mean")]),
    }


def gain_interval(study: dict, labels_per_class=10, *, method: str | None = None, confidence: float = 0.95) -> dict:
    """How sure the transfer gain is: the per-seed differences between a transfer method and the
    scratch baseline (paired: the same seed draws the same labelled images for both), their mean
    and a Student-t confidence interval for it.

    With 3 seeds the interval is wide (t has 2 degrees of freedom): a claim should hold over the
    whole interval, not just at its mean.

    Args:
        study: a :func:`label_budget_study` result.
        labels_per_class: the budget to compare at.
        method: the transfer method (default: the best one by mean, as :func:`transfer_gain`).
        confidence: the interval's coverage, between 0 and 1.

    Returns:
        ``{"method", "differences" (per seed, in accuracy units), "mean", "low", "high", "seeds"}``.

    Raises:
        ValueError: fewer than 2 seeds with both methods, or a bad ``confidence``.
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    method = method or transfer_gain(study, labels_per_class)["best_method"]
    runs = [r for r in study["runs"] if r["labels_per_class"] == labels_per_class]
    by_seed = {}
    for r in runs:
        by_seed.setdefault(r["seed"], {})[r["method"]] = r["accuracy"]
    pairs = {seed: m[method] - m["scratch"] for seed, m in sorted(by_seed.items()) if method in m and "scratch" in m}
    if len(pairs) < 2:
        raise ValueError(f"an interval needs at least 2 seeds with both {method!r} and 'scratch'; found {len(pairs)}")
    differences = np.array(list(pairs.values()), dtype=float)
    mean = float(differences.mean())
    t = stats.t.ppf((1 + confidence) / 2, len(differences) - 1)
    half = float(t * differences.std(ddof=1) / np.sqrt(len(differences)))
    return {
        "method": method,
        "differences": differences.tolist(),
        "mean": mean,
        "low": mean - half,
        "high": mean + half,
        "seeds": list(pairs),
    }


def time_to_accuracy(study: dict, target: float, labels_per_class=10) -> dict:
    """Seconds each method needed, in the study's runs at one budget, to first reach ``target``
    test accuracy (mean over the seeds that reached it; ``None`` if none did)."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in study["runs"]):
        times = []
        for r in study["runs"]:
            if r["method"] == method and r["labels_per_class"] == labels_per_class:
                hit = next((t for t, a in r["curve"] if a >= target), None)
                if hit is not None:
                    times.append(hit)
        out[method] = float(np.mean(times)) if times else None
    return out


#: The fine-tuning variants of chapter 6: the right way and four classic mistakes.
PITFALLS = {
    "right way": {},
    "BatchNorm unfrozen (training mode)": {"keep_batchnorm_frozen": False},
    "learning rate too high (1e-2)": {"finetune_lr": 1e-2},
    "forgot to recompile": {"recompile": False},
    "unfroze before the head converged": {"head_steps": 0, "finetune_lr": 1e-3},
}


@_forget_on_failure
def _pitfall_run(
    name, change, task, labels_per_class, seed, profile, head_steps, finetune_steps, finetune_lr, unfreeze_from
) -> dict:
    """One (variant, seed) run of :func:`finetuning_pitfalls`."""
    from tlbook import training
    from tlbook.backbones import extract_features, pretrained_backbone

    x_test, y_test = task.test.x.astype("float32"), task.test.y
    labelled, _ = _labelled(task.train, labels_per_class, seed)
    features = extract_features(pretrained_backbone(profile), labelled.x)  # phase 1 on cached features (Chapter 6)
    fresh = training.pretrained_model(task.num_classes, profile, seed=seed)
    hs = change.get("head_steps", head_steps)
    with seeded(seed):
        if hs:
            head, _ = _reuse(
                ("head", features.shape[1], task.num_classes, None),
                training.head_model(features.shape[1], task.num_classes, seed=seed),
            )
            training.fit_steps(head, features, labelled.y, hs, seed=seed)
            training.copy_head(head, fresh)
        # a kept model is already unfrozen and (re)compiled as this variant does (its first run did it)
        variant = (name, repr(sorted(change.items())), finetune_lr, unfreeze_from)
        model, reused = _reuse(("pitfall", variant, task.num_classes, repr(profile)), fresh)
        head_accuracy = _accuracy(model, x_test, y_test) if hs else None
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
        accuracy = _accuracy(model, x_test, y_test)
    return {"variant": name, "seed": seed, "accuracy": accuracy, "head_accuracy": head_accuracy}


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
) -> dict:
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
        ``{"runs": [{"variant", "seed", "accuracy", "head_accuracy"}]}`` (cached, see
        :func:`cached_study`); ``head_accuracy`` is the test accuracy after phase 1.

    Raises:
        ValueError: a bad ``n_jobs``.
    """
    from tlbook.config import get_profile
    from tlbook.data import target_task

    profile = profile or get_profile()
    _check_n_jobs(n_jobs)

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
        return {"runs": _run_all(calls, n_jobs, "fine-tuning pitfalls: variant x seed")}

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
    return cached_study("finetuning-pitfalls", settings, compute, use_cache=use_cache)


def pitfall_table(study: dict):
    """Mean and standard deviation of test accuracy per variant, and the cost of each mistake in
    accuracy points against the right way (negative: the mistake loses accuracy)."""
    import pandas as pd

    frame = pd.DataFrame(study["runs"])
    order = list(dict.fromkeys(frame["variant"]))
    table = frame.groupby("variant", sort=False)["accuracy"].agg(["mean", "std"]).reindex(order)
    right = frame[frame["variant"] == "right way"].set_index("seed")["accuracy"]
    table["points vs right way"] = [
        100 * float((frame[frame["variant"] == v].set_index("seed")["accuracy"] - right).mean()) for v in order
    ]
    return table.rename_axis("fine-tuning variant")
