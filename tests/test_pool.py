"""tlbook.studies.pool: a study's runs here or in worker processes (n_jobs, TLBOOK_JOBS), through a
small study."""

import re
import signal

import numpy as np
import pytest
from hang_guard import no_hang

from tlbook import studies
from tlbook.studies import pool


def _no_pool(monkeypatch, cores):
    """Make ProcessPoolExecutor record its worker count and fail, on a machine of ``cores`` cores."""
    import concurrent.futures
    import os

    started = []

    def record(workers, **kwargs):
        started.append(workers)
        raise RuntimeError("no pool in this test")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", record)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    return started


RATES = (1e-4, 1e-3, 1e-2, 1e-1)


def test_n_jobs_minus_1_counts_the_cores_this_process_may_run_on(tiny_profile, tmp_cache, monkeypatch):
    """Under `taskset -c 0` (or a container's CPU set) every core is one core, not the machine's:
    with one, the study runs here, with no worker process at all."""
    monkeypatch.delenv("TLBOOK_JOBS", raising=False)  # `make check` sets it (the test below)
    started = _no_pool(monkeypatch, cores=3)
    with pytest.raises(RuntimeError, match="no pool in this test"):
        studies.tune_scratch(tiny_profile, learning_rates=RATES, steps=10, chunk=10, use_cache=False, n_jobs=-1)
    assert started == [3]
    started = _no_pool(monkeypatch, cores=1)
    tuning = studies.tune_scratch(tiny_profile, learning_rates=RATES[1:3], steps=10, chunk=10, n_jobs=-1)
    assert started == [] and len(tuning.grid) == 2


def test_tlbook_jobs_caps_the_workers_and_1_runs_the_study_here(tiny_profile, tmp_cache, monkeypatch):
    """`make check` sets TLBOOK_JOBS=1: a notebook's n_jobs=-1 then starts no worker process. The cap
    never starts more workers than there are cores."""
    import tensorflow as tf

    started = _no_pool(monkeypatch, cores=2)
    monkeypatch.setenv("TLBOOK_JOBS", "3")
    for n_jobs in (-1, 4):
        with pytest.raises(RuntimeError, match="no pool in this test"):
            studies.tune_scratch(tiny_profile, learning_rates=RATES, steps=10, chunk=10, use_cache=False, n_jobs=n_jobs)
    assert started == [2, 3]  # -1: the 2 cores; 4: capped at 3

    monkeypatch.setenv("TLBOOK_JOBS", "1")
    level = tf.get_logger().level
    seen = []

    def curve(task, labels, seed, profile, learning_rate, *rest):
        seen.append(tf.get_logger().level)
        return [studies.TuningPoint(learning_rate=learning_rate, steps=10, validation_accuracy=0.5)]

    monkeypatch.setattr(studies.tuning, "_scratch_curve", curve)
    tuning = studies.tune_scratch(tiny_profile, learning_rates=RATES[1:3], steps=10, chunk=10, n_jobs=2)
    assert started == [2, 3] and seen == [40, 40] and len(tuning.grid) == 2  # here, quiet (ERROR = 40)
    assert tf.get_logger().level == level and not pool.kept_models()


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_tlbook_jobs_is_named_and_nothing_is_computed(tiny_profile, tmp_cache, monkeypatch, value):
    monkeypatch.setenv("TLBOOK_JOBS", value)
    with pytest.raises(ValueError, match=f"TLBOOK_JOBS='{value}' must be an integer >= 1"):
        studies.tune_scratch(tiny_profile, learning_rates=(1e-3,), steps=10, chunk=10, n_jobs=-1)
    assert not list(tmp_cache.rglob("*.json"))


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, True, "2"])
def test_studies_reject_a_bad_n_jobs_before_computing(tiny_profile, tmp_cache, n_jobs):
    with pytest.raises(ValueError, match="n_jobs must be None, -1"):
        studies.label_budget_study(tiny_profile, n_jobs=n_jobs)
    with pytest.raises(ValueError, match="n_jobs must be None, -1"):
        studies.finetuning_pitfalls(tiny_profile, n_jobs=n_jobs)
    assert not list(tmp_cache.rglob("*.json"))


def test_a_strategy_cannot_go_to_worker_processes(tiny_profile, tmp_cache):
    import tensorflow as tf

    with pytest.raises(ValueError, match="strategy cannot be sent to worker processes"):
        studies.tune_scratch(tiny_profile, strategy=tf.distribute.get_strategy(), n_jobs=2)


def _double(x):
    return 2 * x


def test_run_all_here_keeps_order_and_forgets_kept_models_at_the_end(monkeypatch):
    monkeypatch.delenv("TLBOOK_JOBS", raising=False)
    seen = []

    def call(x):
        pool.reuse_model(("k", x), object())  # kept while the study runs
        seen.append(pool.kept_models())
        return _double(x)

    assert pool.run_all([(call, (i,), {}) for i in range(3)], None, "test") == [0, 2, 4]
    assert seen == [1, 2, 3] and pool.kept_models() == 0
    assert pool.reuse_model(("k", 9), "fresh") == ("fresh", False) and pool.kept_models() == 0  # outside a study


def test_forget_on_failure_drops_what_a_failed_run_kept(monkeypatch):
    monkeypatch.setattr(pool, "_keeping", True)

    @pool.forget_on_failure
    def run(fail):
        pool.reuse_model(("fails" if fail else "works",), object())
        if fail:
            raise RuntimeError("run failed")
        return "ok"

    try:
        assert run(False) == "ok" and pool.kept_models() == 1
        with pytest.raises(RuntimeError, match="run failed"):
            run(True)
        assert pool.kept_models() == 1  # the failed run's model is forgotten, the good one kept
    finally:
        pool._kept_models.clear()


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, True, "2"])
def test_check_n_jobs_names_a_bad_value(n_jobs):
    with pytest.raises(
        ValueError, match=re.escape(f"n_jobs must be None, -1 (every core) or a positive integer, got {n_jobs!r}")
    ):
        pool.check_n_jobs(n_jobs)
    for fine in (None, -1, 1, np.int64(2)):
        pool.check_n_jobs(fine)
    with pytest.raises(ValueError, match="strategy cannot be sent"):
        pool.check_n_jobs(2, strategy=object())


def test_keep_result_computes_once_in_a_study_and_every_time_outside(monkeypatch):
    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    assert pool.keep_result(("k",), compute) == 1 and pool.keep_result(("k",), compute) == 2  # outside
    monkeypatch.setattr(pool, "_keeping", True)
    try:
        assert [pool.keep_result(("k",), compute) for _ in range(3)] == [3, 3, 3]
        assert pool.keep_result(("other",), compute) == 4 and pool.kept_models() == 2
    finally:
        pool._kept_models.clear()


@pytest.mark.slow
def test_worker_processes_are_kept_between_studies_until_stopped(tmp_cache, monkeypatch):
    """Starting a worker costs seconds (a fresh TensorFlow): the next study reuses it. A changed
    environment (which a worker copies once) starts new ones; so does stop_workers()."""
    import math
    import os
    import signal
    import time

    monkeypatch.delenv("TLBOOK_JOBS", raising=False)
    pids = [(os.getpid, (), {})] * 4
    first = set(pool.run_all(pids, 2, "test"))
    first |= set(pool.run_all(pids, 2, "test"))
    with pytest.raises(ValueError, match="math domain error"):  # a failing call fails the study ...
        pool.run_all([(math.sqrt, (-1.0,), {})], 2, "test")
    first |= set(pool.run_all(pids, 2, "test"))  # ... and leaves the workers usable
    for pid in first:  # Jupyter's interrupt reaches the kernel's whole process group
        os.kill(pid, signal.SIGINT)
    time.sleep(1)  # time to die, had they not ignored it
    first |= set(pool.run_all(pids, 2, "test"))  # the kept workers survive it
    assert os.getpid() not in first and 1 <= len(first) <= 2  # the same (at most 2) processes throughout
    monkeypatch.setenv("TLBOOK_POOL_TEST", "changed")  # another environment: the workers copied the old one
    started = _no_pool(monkeypatch, cores=2)  # so new ones are started (here: refused), the old ones ended
    with pytest.raises(RuntimeError, match="no pool in this test"):
        pool.run_all(pids, 2, "test")
    assert started == [2] and not pool.stop_workers()  # nothing left to stop
    for pid in first:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the old workers have ended


@pytest.mark.slow
def test_a_broken_or_outdated_pool_is_replaced_and_an_interrupt_stops_the_workers(tmp_cache, tmp_path, monkeypatch):
    """A pool whose worker died, or that was started before tlbook's code changed, is not served
    again. Jupyter's stop button raises KeyboardInterrupt in the caller: the workers stop at once,
    not after their runs."""
    import concurrent.futures
    import os
    import time

    import tlbook.config

    monkeypatch.delenv("TLBOOK_JOBS", raising=False)
    pids = [(os.getpid, (), {})] * 4
    old = set(pool.run_all(pids, 2, "test"))
    os.kill(next(iter(old)), signal.SIGKILL)  # a worker dies between studies (out of memory)
    with no_hang():
        while not getattr(pool._workers[0], "_broken", False):  # the pool notices (CPython's flag)
            time.sleep(0.05)
    fresh = set(pool.run_all(pids, 2, "test"))  # the next study gets new workers
    assert fresh and not fresh & old

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tlbook.config, "code_digest", lambda *a, **k: "edited")  # the package changed
        started = _no_pool(patch, cores=2)
        with pytest.raises(RuntimeError, match="no pool in this test"):
            pool.run_all(pids, 2, "test")
    assert started == [2]  # a new start was asked for, and the outdated workers ended
    for pid in fresh:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    def interrupted(futures):  # the stop button, once both workers are inside their long calls
        with no_hang():
            while len(list(tmp_path.glob("*.pid"))) < 2:
                time.sleep(0.05)
        raise KeyboardInterrupt

    monkeypatch.setattr(concurrent.futures, "as_completed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pool.run_all([(_note_pid_then_sleep, (str(tmp_path), 3600), {})] * 2, 2, "test")
    assert pool._workers is None
    for pid in (int(f.stem) for f in tmp_path.glob("*.pid")):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # stopped in their hour-long calls, not left running them


def _note_pid_then_sleep(folder, seconds):
    """A long call in a worker that says which process runs it."""
    import os
    import time
    from pathlib import Path

    (Path(folder) / f"{os.getpid()}.pid").touch()
    time.sleep(seconds)
