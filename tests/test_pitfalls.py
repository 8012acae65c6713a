"""tlbook.studies.pitfalls: Chapter 6's fine-tuning mistakes against the right way."""

import json

import pytest

from tlbook import studies


def test_pitfall_table_costs_in_points():
    runs = tuple(
        studies.PitfallRun(variant=v, seed=s, accuracy=a, head_accuracy=0.5)
        for v, accs in (("right way", (0.8, 0.9)), ("learning rate too high (1e-2)", (0.4, 0.5)))
        for s, a in enumerate(accs)
    )
    table = studies.pitfall_table(studies.PitfallStudy(runs=runs))
    assert list(table.index) == ["right way", "learning rate too high (1e-2)"]
    assert table["mean"].tolist() == pytest.approx([0.85, 0.45])
    assert table["points vs right way"].tolist() == pytest.approx([0.0, -40.0])
    assert table.loc["right way", ["low", "high"]].tolist() == [0.0, 0.0]


def test_pitfall_table_intervals_are_paired_by_seed_and_agree_with_scipy():
    from scipy import stats

    right, wrong = (0.80, 0.70, 0.90), (0.76, 0.64, 0.85)  # seed by seed: -4, -6, -5 points
    runs = tuple(
        studies.PitfallRun(variant=v, seed=s, accuracy=a, head_accuracy=None)
        for v, accs in (("right way", right), ("BatchNorm unfrozen (training mode)", wrong))
        for s, a in enumerate(accs)
    )
    table = studies.pitfall_table(studies.PitfallStudy(runs=runs))
    d = [-4.0, -6.0, -5.0]
    low, high = stats.t.interval(0.95, 2, loc=sum(d) / 3, scale=stats.sem(d))
    row = table.loc["BatchNorm unfrozen (training mode)"]
    assert row["points vs right way"] == pytest.approx(-5.0)
    assert (row["low"], row["high"]) == (pytest.approx(low), pytest.approx(high))
    # unpaired, the spread of either arm (std about 10 points) would swamp the 5-point cost
    assert high < 0 < table.loc["right way", "std"] * 100 - 5
    missing = studies.PitfallStudy(runs=runs[:-1])  # the mistake lacks seed 2
    with pytest.raises(ValueError, match="needs exactly one run on each of the right way's seeds \\[0, 1, 2\\]"):
        studies.pitfall_table(missing)


def test_pitfall_study_goes_to_json_and_back_unchanged():
    study = studies.PitfallStudy(
        runs=(
            studies.PitfallRun(variant="right way", seed=0, accuracy=0.8, head_accuracy=0.6),
            studies.PitfallRun(variant="unfroze before the head converged", seed=0, accuracy=0.7, head_accuracy=None),
        )
    )
    stored = study.to_json()
    # what the cache stores: the keys and order finetuning_pitfalls stored before its dataclasses
    assert stored == {
        "runs": [
            {"variant": "right way", "seed": 0, "accuracy": 0.8, "head_accuracy": 0.6},
            {"variant": "unfroze before the head converged", "seed": 0, "accuracy": 0.7, "head_accuracy": None},
        ]
    }
    assert list(stored["runs"][0]) == ["variant", "seed", "accuracy", "head_accuracy"]
    back = studies.PitfallStudy.from_json(json.loads(json.dumps(stored)))
    assert back == study and isinstance(back.runs, tuple) and back.runs[1].head_accuracy is None
    with pytest.raises(KeyError, match="head_accuracy"):
        studies.PitfallRun.from_json({"variant": "right way", "seed": 0, "accuracy": 0.8})


@pytest.mark.slow
def test_finetuning_pitfalls_structure(tiny_profile, tiny_source_cache):
    """One run per variant and seed, in this process (that worker processes give the same bits is the
    test above, for label_budget_study's runs; Chapter 6 runs these in workers, checked within its
    tolerances); the variant without a head phase has no head accuracy. Seed 0 runs twice: the second
    time on the models the first compiled and traced (studies.pool.reuse_model), each variant its own, with the
    same bits as on fresh ones."""
    both = studies.finetuning_pitfalls(
        tiny_profile, seeds=(0, 0), head_steps=10, finetune_steps=10, unfreeze_from="conv3"
    )
    n = len(studies.PITFALLS)
    assert len(both.runs) == 2 * n and both.runs[:n] == both.runs[n:]
    study = studies.PitfallStudy(runs=both.runs[:n])
    assert [r.variant for r in study.runs] == list(studies.PITFALLS)
    assert all(0 <= r.accuracy <= 1 for r in study.runs)
    assert [r.head_accuracy is None for r in study.runs] == [
        c.get("head_steps") == 0 for c in studies.PITFALLS.values()
    ]
    table = studies.pitfall_table(study)  # one seed: a cost, but no interval
    assert list(table.index) == list(studies.PITFALLS) and table[["low", "high"]].isna().all().all()


# --- The claims Chapter 6 makes, on the real quick profile (minutes; they also fill the cache
# the notebooks then read, so the notebooks show exactly what these tests checked) ---------------
# They compute in the test worker itself (n_jobs=None), not in more processes: the test command's
# workers already keep every core busy, and more busy processes than cores made the run slower and
# cost more CPU time. The results are the same bits either way (tests/test_label_budget.py).


@pytest.mark.slow
def test_chapter6_claim_a_too_high_learning_rate_costs_the_most():
    table = studies.pitfall_table(studies.finetuning_pitfalls())
    costs = table["points vs right way"].drop("right way")
    assert costs.idxmin() == "learning rate too high (1e-2)" and costs.min() <= -10, table
