"""tlbook.studies.label_budget: Chapter 7's study, its tables and intervals, and the claims it makes."""

import dataclasses
import json

import numpy as np
import pytest

from tlbook import data, studies
from tlbook.studies import pool


def _tuning(steps=100):
    """A scratch tuning made by hand: two grid points, the first chosen."""
    grid = (studies.TuningPoint(1e-3, 100, 0.5), studies.TuningPoint(1e-3, 200, 0.49))
    return studies.ScratchTuning(grid=grid, validation_images=300, learning_rate=1e-3, steps=steps)


def _study():
    runs = []
    for b, accs in (
        (1, {"scratch": [0.2, 0.3], "linear probe": [0.5, 0.5], "fine-tuning": [0.4, 0.6]}),
        (10, {"scratch": [0.5, 0.6], "linear probe": [0.8, 0.9], "fine-tuning": [0.7, 0.7]}),
    ):
        for method, values in accs.items():
            for seed, a in enumerate(values):
                runs.append(
                    studies.BudgetRun(
                        method=method,
                        labels_per_class=b,
                        seed=seed,
                        accuracy=a,
                        seconds=1.0,
                        curve=((0.5, a / 2), (1.0 + seed, a)),
                    )
                )
    return studies.LabelBudgetStudy(scratch=_tuning(), runs=tuple(runs))


def test_label_budget_study_goes_to_json_and_back_unchanged():
    study = _study()
    stored = study.to_json()
    # what the cache stores: the keys and order label_budget_study stored before its dataclasses
    assert list(stored) == ["scratch", "runs"] and stored["scratch"] == study.scratch.to_json()
    assert list(stored["runs"][0]) == ["method", "labels_per_class", "seed", "accuracy", "seconds", "curve"]
    assert stored["runs"][1] == {
        "method": "scratch",
        "labels_per_class": 1,
        "seed": 1,
        "accuracy": 0.3,
        "seconds": 1.0,
        "curve": [[0.5, 0.15], [2.0, 0.3]],
    }
    assert json.loads(json.dumps(stored)) == stored
    back = studies.LabelBudgetStudy.from_json(json.loads(json.dumps(stored)))
    assert back == study and back.runs[1].curve == ((0.5, 0.15), (2.0, 0.3))
    assert isinstance(back.scratch, studies.ScratchTuning) and isinstance(back.runs[0], studies.BudgetRun)
    everything = dataclasses.replace(study.runs[0], labels_per_class="all")
    assert studies.BudgetRun.from_json(json.loads(json.dumps(everything.to_json()))) == everything
    with pytest.raises(KeyError, match="curve"):
        studies.BudgetRun.from_json({k: v for k, v in stored["runs"][0].items() if k != "curve"})


def test_budget_table_gain_and_time_to_accuracy():
    study = _study()
    table = studies.budget_table(study)
    assert list(table.index) == [1, 10]
    assert list(table.columns) == [(m, s) for m in ("scratch", "linear probe", "fine-tuning") for s in ("mean", "std")]
    assert table.loc[10, ("linear probe", "mean")] == pytest.approx(0.85)
    assert table.loc[1, ("fine-tuning", "std")] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    gain = studies.transfer_gain(study, 10)
    assert isinstance(gain, studies.Gain)
    assert gain.best_method == "linear probe" and gain.gain == pytest.approx(0.30)
    times = studies.time_to_accuracy(study, 0.6, 10)
    assert isinstance(times, studies.TimeToAccuracy)
    assert times.target == 0.6 and times.labels_per_class == 10
    assert times.seconds == {
        "scratch": pytest.approx(2.0),
        "linear probe": pytest.approx(1.5),
        "fine-tuning": pytest.approx(1.5),
    }
    assert list(times.seconds) == list(studies.METHODS)  # the study's order
    assert studies.time_to_accuracy(study, 0.95, 10).seconds["scratch"] is None
    assert studies.time_to_accuracy(study, 0.3, 1).seconds["scratch"] == pytest.approx(2.0)  # seed 0 never at 0.3


def test_scratch_steps_grow_with_the_data():
    assert studies.scratch_steps(_tuning(100), 50) == 100
    assert studies.scratch_steps(_tuning(100), 448) == 350  # 25 epochs of 14 batches
    assert studies.scratch_steps(_tuning(120), 5, chunk=50) == 150  # whole chunks


def test_run_method_rejects_unknown_methods(tiny_profile):
    task = data.target_task(tiny_profile)
    with pytest.raises(ValueError, match="unknown method 'magic'"):
        studies.run_method("magic", task, 2, 0, tiny_profile, _tuning(50))


def test_label_budget_study_takes_only_a_scratch_tuning(tiny_profile, tmp_cache):
    with pytest.raises(TypeError, match="scratch must be a tune_scratch result"):
        studies.label_budget_study(tiny_profile, scratch={"learning_rate": 1e-3, "steps": 100})
    assert not list(tmp_cache.rglob("*.json"))  # refused before computing anything


@pytest.mark.slow
def test_label_budget_study_structure_and_the_same_bits_in_worker_processes(
    tiny_profile, tiny_source_cache, monkeypatch
):
    monkeypatch.delenv("TLBOOK_JOBS", raising=False)  # `make check` sets 1, which would keep n_jobs=2 here
    # two learning rates x two step counts (of 10 steps: the structure, not the choice, is tested here);
    # the default grid (four rates, 300 steps in chunks of 100) is Chapter 7's
    tuning = studies.tune_scratch(tiny_profile, learning_rates=(1e-3, 1e-2), steps=20, chunk=10)
    # which grid point the tuning picks depends on the machine's float arithmetic: only that it is one
    grid = {(p.learning_rate, p.steps) for p in tuning.grid}
    assert len(grid) == 4 and (tuning.learning_rate, tuning.steps) in grid
    # seed 1 first: seed 0's runs then train the models seed 1's compiled, traced and trained
    # (studies.pool.reuse_model); below, they are compared with fresh models in worker processes
    study = studies.label_budget_study(tiny_profile, budgets=(2,), seeds=(1, 0), scratch=tuning)
    assert [r.seed for r in study.runs] == [1, 1, 1, 0, 0, 0]
    assert {r.method for r in study.runs} == set(studies.METHODS)
    assert all(0 <= r.accuracy <= 1 and r.curve for r in study.runs)
    assert study.scratch == tuning
    assert studies.LabelBudgetStudy.from_json(json.loads(json.dumps(study.to_json()))) == study  # what the cache stores
    with pytest.raises(ValueError, match="unknown shift"):
        studies.label_budget_study(tiny_profile, shift="blurred")

    # seed 0's trained methods once more, each in a worker process of its own, on a fresh model
    parallel = studies.label_budget_study(
        tiny_profile, budgets=(2,), seeds=(0,), methods=("scratch", "fine-tuning"), scratch=tuning, n_jobs=2
    )
    here = [r for r in strip_seconds(study.runs[3:]) if r.method != "linear probe"]
    assert len(here) == 2 and strip_seconds(parallel.runs) == here
    assert not pool.kept_models()  # a study's kept models end with it


def strip_seconds(runs):
    """The runs without the wall-clock seconds they report: what must be the same bits."""
    return [dataclasses.replace(r, seconds=None, curve=tuple((None, a) for _, a in r.curve)) for r in runs]


def test_gain_interval_pairs_the_seeds_and_widens_with_their_spread():
    from scipy import stats

    study = _study()
    interval = studies.gain_interval(study, 10)
    table = studies.budget_table(study)
    assert isinstance(interval, studies.GainInterval)
    assert interval.method == "linear probe" and interval.seeds == sorted(interval.seeds)
    pairs = [
        r.accuracy - s.accuracy
        for r in study.runs
        for s in study.runs
        if r.method == "linear probe"
        and s.method == "scratch"
        and r.seed == s.seed
        and r.labels_per_class == s.labels_per_class == 10
    ]
    assert interval.differences == pytest.approx(pairs)
    assert interval.mean == pytest.approx(table.loc[10, ("linear probe", "mean")] - table.loc[10, ("scratch", "mean")])
    half = stats.t.ppf(0.975, len(pairs) - 1) * np.std(pairs, ddof=1) / np.sqrt(len(pairs))
    assert interval.low == pytest.approx(interval.mean - half)
    assert interval.high == pytest.approx(interval.mean + half)
    wider = studies.gain_interval(study, 10, confidence=0.99)
    assert wider.low <= interval.low and wider.high >= interval.high
    with pytest.raises(ValueError, match="confidence"):
        studies.gain_interval(study, 10, confidence=1.0)
    one_seed = dataclasses.replace(study, runs=tuple(r for r in study.runs if r.seed == study.runs[0].seed))
    with pytest.raises(ValueError, match="at least 2 seeds"):
        studies.gain_interval(one_seed, 10)


# --- The claims Chapter 7 makes, on the real quick profile (minutes; they also fill the cache
# the notebooks then read, so the notebooks show exactly what these tests checked) ---------------
# They compute in the test worker itself (n_jobs=None), not in more processes: the test command's
# workers already keep every core busy, and more busy processes than cores made the run slower and
# cost more CPU time. The results are the same bits either way (tests/test_label_budget.py).


@pytest.mark.slow
def test_chapter7_claim_transfer_beats_honest_scratch_by_20_points_at_10_labels():
    study = studies.label_budget_study()
    gain = studies.transfer_gain(study, 10)
    assert gain.gain >= 0.20, gain
    assert len({r.seed for r in study.runs}) >= 3


@pytest.mark.slow
def test_chapter7_claim_the_inverted_target_reverses_the_advantage():
    # the inverted study first: the normal one is the claim above's, which another worker may be computing
    shifted = studies.label_budget_study(budgets=(10,), seeds=tuple(range(10)), shift="inverted")  # Chapter 7's
    inverted = studies.transfer_gain(shifted, 10)
    normal = studies.transfer_gain(studies.label_budget_study(), 10)
    assert inverted.gain < 0 < normal.gain, (normal, inverted)
    interval = studies.gain_interval(shifted, 10)  # Chapter 7: "falls behind", over the whole interval
    assert interval.high < 0, interval
