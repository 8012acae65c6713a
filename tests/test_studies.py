"""The studies of chapters 6 and 7: caching, tables, and the claims the chapters make."""

import json

import numpy as np
import pytest

from tlbook import data, experiments, models, studies


def test_cached_study_computes_once_per_settings(tmp_cache):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    assert studies.cached_study("demo", {"a": 1}, compute) == {"value": 1}
    assert studies.cached_study("demo", {"a": 1}, compute) == {"value": 1} and len(calls) == 1
    assert studies.cached_study("demo", {"a": 2}, compute) == {"value": 2}
    assert studies.cached_study("demo", {"a": 1}, compute, use_cache=False) == {"value": 3}
    files = sorted((tmp_cache / "results").iterdir())
    assert len(files) == 2 and not [f for f in files if f.name.startswith(".")]
    files[0].write_text("{half a fi")  # damaged: recomputed, not loaded
    studies.cached_study("demo", {"a": 1}, compute)
    studies.cached_study("demo", {"a": 2}, compute)
    assert len(calls) == 4


def _study():
    runs = []
    for b, accs in (
        (1, {"scratch": [0.2, 0.3], "linear probe": [0.5, 0.5], "fine-tuning": [0.4, 0.6]}),
        (10, {"scratch": [0.5, 0.6], "linear probe": [0.8, 0.9], "fine-tuning": [0.7, 0.7]}),
    ):
        for method, values in accs.items():
            for seed, a in enumerate(values):
                runs.append(
                    {
                        "method": method,
                        "labels_per_class": b,
                        "seed": seed,
                        "accuracy": a,
                        "seconds": 1.0,
                        "curve": [[0.5, a / 2], [1.0 + seed, a]],
                    }
                )
    return {"scratch": {"learning_rate": 1e-3, "steps": 100}, "runs": runs}


def test_budget_table_gain_and_time_to_accuracy():
    study = _study()
    table = studies.budget_table(study)
    assert list(table.index) == [1, 10]
    assert list(table.columns) == [(m, s) for m in ("scratch", "linear probe", "fine-tuning") for s in ("mean", "std")]
    assert table.loc[10, ("linear probe", "mean")] == pytest.approx(0.85)
    assert table.loc[1, ("fine-tuning", "std")] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    gain = studies.transfer_gain(study, 10)
    assert gain["best_method"] == "linear probe" and gain["gain"] == pytest.approx(0.30)
    times = studies.time_to_accuracy(study, 0.6, 10)
    assert times == {
        "scratch": pytest.approx(2.0),
        "linear probe": pytest.approx(1.5),
        "fine-tuning": pytest.approx(1.5),
    }
    assert studies.time_to_accuracy(study, 0.95, 10)["scratch"] is None


def test_pitfall_table_costs_in_points():
    runs = [
        {"variant": v, "seed": s, "accuracy": a, "head_accuracy": 0.5}
        for v, accs in (("right way", (0.8, 0.9)), ("learning rate too high (1e-2)", (0.4, 0.5)))
        for s, a in enumerate(accs)
    ]
    table = studies.pitfall_table({"runs": runs})
    assert list(table.index) == ["right way", "learning rate too high (1e-2)"]
    assert table["points vs right way"].tolist() == pytest.approx([0.0, -40.0])


def _grid(accuracies):
    return [{"learning_rate": lr, "steps": steps, "validation_accuracy": a} for (lr, steps), a in accuracies.items()]


def test_one_standard_error_choice_takes_the_fewest_steps_within_the_noise():
    # 400 images at p = 0.5: one standard error is 0.025
    flat = _grid({(1e-3, 100): 0.49, (1e-3, 200): 0.50, (3e-3, 100): 0.48, (3e-3, 200): 0.49})
    assert studies.one_standard_error_choice(flat, 400) == flat[2]  # 100 steps; the larger rate among them
    # a clear winner (three standard errors ahead) is taken, even with more steps
    clear = _grid({(1e-3, 100): 0.40, (1e-3, 300): 0.55, (3e-3, 100): 0.42})
    assert studies.one_standard_error_choice(clear, 400) == clear[1]
    # the choice does not move when the best accuracy moves in the third decimal
    nudged = _grid({(1e-3, 100): 0.49, (1e-3, 200): 0.503, (3e-3, 100): 0.48, (3e-3, 200): 0.489})
    assert studies.one_standard_error_choice(nudged, 400)["steps"] == 100
    # few images: a wider margin
    assert studies.one_standard_error_choice(clear, 10)["steps"] == 100
    with pytest.raises(ValueError, match="empty"):
        studies.one_standard_error_choice([], 400)
    with pytest.raises(ValueError, match="n_images"):
        studies.one_standard_error_choice(flat, 0)


def test_scratch_steps_grow_with_the_data():
    assert studies.scratch_steps({"steps": 100}, 50) == 100
    assert studies.scratch_steps({"steps": 100}, 448) == 350  # 25 epochs of 14 batches
    assert studies.scratch_steps({"steps": 120}, 5, chunk=50) == 150  # whole chunks


def test_run_method_rejects_unknown_methods(tiny_profile):
    task = data.target_task(tiny_profile)
    with pytest.raises(ValueError, match="unknown method 'magic'"):
        studies.run_method("magic", task, 2, 0, tiny_profile, {"learning_rate": 1e-3, "steps": 50})


def test_feature_caching_speedup_reports_consistent_numbers():
    # The small CNN, not ResNet50: the numbers' bookkeeping is tested here, which any frozen base
    # shows, and ResNet50's build and traced training step cost ~10 s of CPU more (Chapter 6 runs
    # the function on the article's ResNet50, checked by the notebook check).
    model = models.build_transfer_model(2, backbone="small_cnn", weights=None, input_shape=(16, 16, 3), head_units=16)
    x = np.random.default_rng(0).uniform(0, 255, (64, 16, 16, 3)).astype("float32")
    result = experiments.feature_caching_speedup(model, x, np.arange(64) % 2, epochs=2)
    assert result["speedup"] == pytest.approx(result["seconds_per_epoch_in_loop"] / result["seconds_per_epoch_cached"])
    assert result["speedup"] > 0 and result["extraction_seconds"] > 0  # times, not their ratio: machine load
    with pytest.raises(ValueError, match="epochs must be >= 2"):
        experiments.feature_caching_speedup(model, x, np.arange(64) % 2, epochs=1)


@pytest.mark.slow
def test_label_budget_study_structure_and_the_same_bits_in_worker_processes(
    tiny_profile, tiny_source_cache, monkeypatch
):
    monkeypatch.delenv("TLBOOK_JOBS", raising=False)  # `make check` sets 1, which would keep n_jobs=2 here
    # two learning rates x two step counts (of 10 steps: the structure, not the choice, is tested here);
    # the default grid (four rates, 300 steps in chunks of 100) is Chapter 7's
    tuning = studies.tune_scratch(tiny_profile, learning_rates=(1e-3, 1e-2), steps=20, chunk=10)
    # which grid point the tuning picks depends on the machine's float arithmetic: only that it is one
    grid = {(p["learning_rate"], p["steps"]) for p in tuning["grid"]}
    assert len(grid) == 4 and (tuning["learning_rate"], tuning["steps"]) in grid
    # seed 1 first: seed 0's runs then train the models seed 1's compiled, traced and trained
    # (studies._reuse); below, they are compared with fresh models in worker processes
    study = studies.label_budget_study(tiny_profile, budgets=(2,), seeds=(1, 0), scratch=tuning)
    assert [r["seed"] for r in study["runs"]] == [1, 1, 1, 0, 0, 0]
    assert {r["method"] for r in study["runs"]} == set(studies.METHODS)
    assert all(0 <= r["accuracy"] <= 1 and r["curve"] for r in study["runs"])
    assert study["scratch"] == tuning
    assert json.loads(json.dumps(study)) == study  # what the cache stores
    with pytest.raises(ValueError, match="unknown shift"):
        studies.label_budget_study(tiny_profile, shift="blurred")
    with pytest.raises(ValueError, match="scratch must be a tune_scratch result"):
        studies.label_budget_study(tiny_profile, scratch={"learning_rate": 1e-3})

    # seed 0's trained methods once more, each in a worker process of its own, on a fresh model
    parallel = studies.label_budget_study(
        tiny_profile, budgets=(2,), seeds=(0,), methods=("scratch", "fine-tuning"), scratch=tuning, n_jobs=2
    )
    here = [r for r in strip_seconds(study["runs"][3:]) if r["method"] != "linear probe"]
    assert len(here) == 2 and strip_seconds(parallel["runs"]) == here
    assert not studies._kept_models  # a study's kept models end with it


def strip_seconds(runs):
    """The runs without the wall-clock seconds they report: what must be the same bits."""
    return [{**r, "seconds": None, "curve": [a for _, a in r["curve"]]} for r in runs]


@pytest.mark.slow
def test_finetuning_pitfalls_structure(tiny_profile, tiny_source_cache):
    """One run per variant and seed, in this process (that worker processes give the same bits is the
    test above, for label_budget_study's runs; Chapter 6 runs these in workers, checked within its
    tolerances); the variant without a head phase has no head accuracy. Seed 0 runs twice: the second
    time on the models the first compiled and traced (studies._reuse), each variant its own, with the
    same bits as on fresh ones."""
    both = studies.finetuning_pitfalls(
        tiny_profile, seeds=(0, 0), head_steps=10, finetune_steps=10, unfreeze_from="conv3"
    )
    n = len(studies.PITFALLS)
    assert len(both["runs"]) == 2 * n and both["runs"][:n] == both["runs"][n:]
    study = {"runs": both["runs"][:n]}
    assert [r["variant"] for r in study["runs"]] == list(studies.PITFALLS)
    assert all(0 <= r["accuracy"] <= 1 for r in study["runs"])
    assert [r["head_accuracy"] is None for r in study["runs"]] == [
        c.get("head_steps") == 0 for c in studies.PITFALLS.values()
    ]
    assert list(studies.pitfall_table(study).index) == list(studies.PITFALLS)


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
    assert started == [] and len(tuning["grid"]) == 2


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
        return [{"learning_rate": learning_rate, "steps": 10, "validation_accuracy": 0.5}]

    monkeypatch.setattr(studies, "_scratch_curve", curve)
    tuning = studies.tune_scratch(tiny_profile, learning_rates=RATES[1:3], steps=10, chunk=10, n_jobs=2)
    assert started == [2, 3] and seen == [40, 40] and len(tuning["grid"]) == 2  # here, quiet (ERROR = 40)
    assert tf.get_logger().level == level and not studies._kept_models


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_tlbook_jobs_is_named_and_nothing_is_computed(tiny_profile, tmp_cache, monkeypatch, value):
    monkeypatch.setenv("TLBOOK_JOBS", value)
    with pytest.raises(ValueError, match=f"TLBOOK_JOBS='{value}' must be an integer >= 1"):
        studies.tune_scratch(tiny_profile, learning_rates=(1e-3,), steps=10, chunk=10, n_jobs=-1)
    assert not list((tmp_cache / "results").glob("*.json"))


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, True, "2"])
def test_studies_reject_a_bad_n_jobs_before_computing(tiny_profile, tmp_cache, n_jobs):
    with pytest.raises(ValueError, match="n_jobs must be None, -1"):
        studies.label_budget_study(tiny_profile, n_jobs=n_jobs)
    with pytest.raises(ValueError, match="n_jobs must be None, -1"):
        studies.finetuning_pitfalls(tiny_profile, n_jobs=n_jobs)
    assert not (tmp_cache / "results").exists()


def test_a_strategy_cannot_go_to_worker_processes(tiny_profile, tmp_cache):
    import tensorflow as tf

    with pytest.raises(ValueError, match="strategy cannot be sent to worker processes"):
        studies.tune_scratch(tiny_profile, strategy=tf.distribute.get_strategy(), n_jobs=2)


# --- The claims chapters 6 and 7 make, on the real quick profile (minutes; they also fill the cache
# the notebooks then read, so the notebooks show exactly what these tests checked) ---------------
# They compute in the test worker itself (n_jobs=None), not in more processes: the test command's
# workers already keep every core busy, and more busy processes than cores made the run slower and
# cost more CPU time. The results are the same bits either way (the structure test above).


@pytest.mark.slow
def test_chapter7_claim_transfer_beats_honest_scratch_by_20_points_at_10_labels():
    study = studies.label_budget_study()
    gain = studies.transfer_gain(study, 10)
    assert gain["gain"] >= 0.20, gain
    assert len({r["seed"] for r in study["runs"]}) >= 3


@pytest.mark.slow
def test_chapter7_claim_the_inverted_target_reverses_the_advantage():
    # the inverted study first: the normal one is the claim above's, which another worker may be computing
    shifted = studies.label_budget_study(budgets=(10,), seeds=tuple(range(10)), shift="inverted")  # Chapter 7's
    inverted = studies.transfer_gain(shifted, 10)
    normal = studies.transfer_gain(studies.label_budget_study(), 10)
    assert inverted["gain"] < 0 < normal["gain"], (normal, inverted)
    interval = studies.gain_interval(shifted, 10)  # Chapter 7: "falls behind", over the whole interval
    assert interval["high"] < 0, interval


@pytest.mark.slow
def test_chapter6_claim_a_too_high_learning_rate_costs_the_most():
    table = studies.pitfall_table(studies.finetuning_pitfalls())
    costs = table["points vs right way"].drop("right way")
    assert costs.idxmin() == "learning rate too high (1e-2)" and costs.min() <= -10, table


def test_gain_interval_pairs_the_seeds_and_widens_with_their_spread():
    from scipy import stats

    study = _study()
    interval = studies.gain_interval(study, 10)
    table = studies.budget_table(study)
    assert interval["method"] == "linear probe" and interval["seeds"] == sorted(interval["seeds"])
    pairs = [
        r["accuracy"] - s["accuracy"]
        for r in study["runs"]
        for s in study["runs"]
        if r["method"] == "linear probe"
        and s["method"] == "scratch"
        and r["seed"] == s["seed"]
        and r["labels_per_class"] == s["labels_per_class"] == 10
    ]
    assert interval["differences"] == pytest.approx(pairs)
    assert interval["mean"] == pytest.approx(
        table.loc[10, ("linear probe", "mean")] - table.loc[10, ("scratch", "mean")]
    )
    half = stats.t.ppf(0.975, len(pairs) - 1) * np.std(pairs, ddof=1) / np.sqrt(len(pairs))
    assert interval["low"] == pytest.approx(interval["mean"] - half)
    assert interval["high"] == pytest.approx(interval["mean"] + half)
    wider = studies.gain_interval(study, 10, confidence=0.99)
    assert wider["low"] <= interval["low"] and wider["high"] >= interval["high"]
    with pytest.raises(ValueError, match="confidence"):
        studies.gain_interval(study, 10, confidence=1.0)
    one_seed = {"runs": [r for r in study["runs"] if r["seed"] == study["runs"][0]["seed"]]}
    with pytest.raises(ValueError, match="at least 2 seeds"):
        studies.gain_interval(one_seed, 10)
