"""Running a study's many training runs: in this process or in worker processes, with compiled
models kept between runs.

- :func:`run_all` runs a list of calls, one after the other or spread over spawned worker
  processes (``n_jobs``), with the same bits either way; the workers are kept for the next study
  until :func:`stop_workers`;
- :func:`reuse_model` hands a run a model of the same kind that an earlier run compiled and traced,
  with the new run's fresh weights copied in (tracing costs as much as 100 training steps);
- :func:`forget_on_failure` and :func:`check_n_jobs` keep both honest.
"""

from __future__ import annotations

import functools

import numpy as np

from tlbook.progress import progress_bar

# Models compiled (and their training and evaluation graphs traced) by an earlier run of a study in
# this process, keyed by everything those graphs depend on. Tracing a fresh model's graphs costs
# about 3 s of CPU, as much as 100 training steps of the small CNN, and a study trains ~50 models
# of a few kinds; a later run of the same kind takes the kept model instead, with its own
# freshly initialised weights copied in and the optimizer put back to step 0, which computes the
# same bits as the fresh model would (tests/test_label_budget.py checks it). Only the runs of a study
# keep models (run_all and its worker processes set _keeping): here the kept ones end with the study,
# in a worker with the worker (its keys tell every study's models apart).
_kept_models: dict = {}
_keeping = False


def reuse_model(key, fresh):
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


def keep_result(key, compute):
    """``compute()``, or what it returned for ``key`` earlier in this study's runs in this process
    (a worker's runs: every study's since it started). For a result that several runs would
    compute alike, bit for bit (the head every fine-tuning arm of a draw starts from): ``key`` must
    determine it. Outside a study, ``compute()`` every time."""
    marked = ("result", key)
    if marked in _kept_models:
        return _kept_models[marked]
    result = compute()
    if _keeping:
        _kept_models[marked] = result
    return result


def forget_on_failure(run):
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


def check_n_jobs(n_jobs, strategy=None) -> None:
    """Refuse an ``n_jobs`` that :func:`run_all` cannot honour, before any cache is read.

    Raises:
        ValueError: ``n_jobs`` other than ``None``, -1 or a positive integer; ``n_jobs`` other than
            ``None``/1 with a ``tf.distribute`` ``strategy`` (it cannot be sent to another process);
            a bad ``TLBOOK_JOBS`` (:func:`tlbook.config.study_jobs`).
    """
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
    import signal

    from tlbook.config import CACHE_ENV, seed_everything

    global _keeping
    # Jupyter interrupts a kernel's whole process group: the study's caller stops (run_all cancels
    # what has not started); a kept worker must not die of it, or the next study finds no workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ[CACHE_ENV] = cache
    _keeping = True  # this process runs studies' runs only (run_all), and ends with them
    seed_everything(0, threads=1)
    import tensorflow as tf

    # This process is tlbook's own: its many fresh models make TensorFlow warn about retracing, on
    # the stderr it shares with the notebook or terminal that started the study.
    tf.get_logger().setLevel("ERROR")


def run_all(calls, n_jobs, desc: str):
    """``[function(*args, **kwargs) for function, args, kwargs in calls]``, in order; with ``n_jobs``
    other than ``None`` or 1, spread over that many worker processes (-1: one per core). A progress
    bar (:mod:`tlbook.progress`) named ``desc`` counts the finished calls.

    Every call seeds itself and each worker computes with one thread, so the results are the same
    bits as in one process, only sooner. The workers are spawned (not forked: TensorFlow is not
    fork-safe) by the first study that asks for them and kept for the next ones: starting one
    costs seconds (a fresh TensorFlow), and a chapter runs several studies. They hold about 0.7 GB
    each until this process ends or :func:`stop_workers` is called; a study whose worker count,
    cache directory or environment differs from theirs starts new ones. ``TLBOOK_JOBS``
    (:data:`tlbook.config.JOBS_ENV`), when set, caps the number of workers; ``1`` runs every call
    here. When a call fails, its error is raised and the calls not yet sent to a worker are
    cancelled (the few already sent, at most ``n_jobs`` + 1, end there, unread); an interrupt
    (``KeyboardInterrupt``: Jupyter's stop button, Ctrl-C) stops the workers at once. The
    workers themselves ignore the interrupt signal, which Jupyter sends to a kernel's whole process
    group: a study is stopped by its caller, not by workers dying.

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
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        executor = _worker_pool(n_jobs)
        futures = []
        try:
            futures += [executor.submit(function, *args, **kwargs) for function, args, kwargs in calls]
            for future in as_completed(futures):
                future.result()  # the first failure raises here, and the rest are cancelled below
                bar.update(1)
        except BrokenProcessPool:
            stop_workers()  # a worker died (killed, out of memory): the next study starts new ones
            raise
        except KeyboardInterrupt:
            stop_workers(terminate=True)  # the caller stopped the study: its runs stop too
            raise
        except BaseException:
            for future in futures:
                future.cancel()  # those not yet sent to a worker; the few sent end there, unread
            raise
        return [future.result() for future in futures]


# The worker processes studies share: (executor, what they were started with), or None.
_workers = None


def _worker_pool(n_jobs: int):
    """The kept worker processes, started now if there are none, if they are broken (one died),
    or if what a spawned worker took at its start changed: ``n_jobs``, the cache directory, the
    environment, the working directory, or tlbook's computing code (cache keys name the code that
    made a result: a worker must not serve an edited package's key with the code it imported)."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from tlbook.config import cache_dir, code_digest

    global _workers
    cache = str(cache_dir().resolve())
    started_with = (n_jobs, cache, tuple(sorted(os.environ.items())), os.getcwd(), code_digest())
    # a ProcessPoolExecutor marks itself broken when a worker dies (CPython's _broken, since 3.7)
    if _workers is not None and _workers[1] == started_with and not getattr(_workers[0], "_broken", False):
        return _workers[0]
    stop_workers()
    executor = ProcessPoolExecutor(
        n_jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker, initargs=(cache,)
    )
    _workers = (executor, started_with)
    return executor


def stop_workers(*, terminate: bool = False) -> bool:
    """End the worker processes that studies keep (:func:`run_all`), freeing their memory; the next
    study with ``n_jobs`` starts new ones. A worker still running a call finishes it first, or, with
    ``terminate``, is stopped at once. Returns whether there were any."""
    global _workers
    if _workers is None:
        return False
    executor, _ = _workers
    _workers = None
    if terminate:
        processes = list((getattr(executor, "_processes", None) or {}).values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
    executor.shutdown(wait=not terminate, cancel_futures=True)
    return True


def kept_models() -> int:
    """How many compiled models and kept results (:func:`keep_result`) this process keeps for the
    study it is running (0 between studies; a worker keeps them for every study it serves)."""
    return len(_kept_models)
