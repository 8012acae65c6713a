"""tlbook.studies.budget_tables: Chapter 7's tables and paired intervals, read from a study made by
hand with known numbers."""

import dataclasses

import numpy as np
import pytest
from made_up_studies import budget_study as _study

from tlbook import studies


def test_budget_table_gain_and_time_to_accuracy():
    study = _study()
    table = studies.budget_table(study)
    assert list(table.index) == [1, 10]
    assert list(table.columns) == [(m, s) for m in ("scratch", "head only", "full") for s in ("mean", "std")]
    assert table.loc[10, ("head only", "mean")] == pytest.approx(0.85)
    assert table.loc[1, ("full", "std")] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    gain = studies.transfer_gain(study, 10)
    assert isinstance(gain, studies.Gain)
    assert gain.best_method == "head only" and gain.gain == pytest.approx(0.30)
    assert studies.transfer_gain(study, 1).best_method == "head only"  # 0.50 vs full's 0.50: the first
    times = studies.time_to_accuracy(study, 0.6, 10)
    assert isinstance(times, studies.TimeToAccuracy)
    assert times.target == 0.6 and times.labels_per_class == 10
    assert times.seconds == {
        "scratch": pytest.approx(2.0),
        "head only": pytest.approx(1.5),
        "full": pytest.approx(1.5),
    }
    assert list(times.seconds) == ["scratch", "head only", "full"]  # the study's order
    assert studies.time_to_accuracy(study, 0.95, 10).seconds["scratch"] is None
    assert studies.time_to_accuracy(study, 0.3, 1).seconds["scratch"] == pytest.approx(2.0)  # seed 0 never at 0.3
    ended_only = dataclasses.replace(study, curve_budgets=(1,))  # budget 10 scored at the end only
    with pytest.raises(ValueError, match=r"no curves at 10 labels per class .*curve_budgets=\(10,\)"):
        studies.time_to_accuracy(ended_only, 0.6, 10)


def test_paired_table_holds_every_arm_against_the_baseline():
    study = _study()
    table = studies.paired_table(study)
    assert list(table.index) == [1, 10]
    assert list(table.columns) == [(m, s) for m in ("scratch", "full") for s in ("mean", "low", "high")]
    assert table.loc[10, ("full", "mean")] == pytest.approx(-0.15)  # 0.7 - 0.8, 0.7 - 0.9
    g = studies.gain_interval(study, 10, method="full", baseline="head only")
    assert g.baseline == "head only" and g.differences == pytest.approx([-0.1, -0.2])
    assert (table.loc[10, ("full", "low")], table.loc[10, ("full", "high")]) == pytest.approx((g.low, g.high))
    assert studies.paired_table(study, baseline="scratch").loc[10, ("head only", "mean")] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="no runs of the baseline 'gradual'"):
        studies.paired_table(study, baseline="gradual")


def test_gain_interval_pairs_the_seeds_and_widens_with_their_spread():
    from scipy import stats

    study = _study()
    interval = studies.gain_interval(study, 10)
    table = studies.budget_table(study)
    assert isinstance(interval, studies.GainInterval)
    assert interval.method == "head only" and interval.seeds == sorted(interval.seeds)
    pairs = [
        r.accuracy - s.accuracy
        for r in study.runs
        for s in study.runs
        if r.method == "head only"
        and s.method == "scratch"
        and r.seed == s.seed
        and r.labels_per_class == s.labels_per_class == 10
    ]
    assert interval.differences == pytest.approx(pairs)
    assert interval.mean == pytest.approx(table.loc[10, ("head only", "mean")] - table.loc[10, ("scratch", "mean")])
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


def test_interval_strings_show_points_with_their_interval():
    table = studies.paired_table(_study())
    text = studies.interval_strings(table)
    assert list(text.columns) == ["scratch", "full"] and list(text.index) == [1, 10]
    g = studies.gain_interval(_study(), 10, method="full", baseline="head only")
    assert text.loc[10, "full"] == g.points()
    assert studies.interval_strings(table, digits=1).loc[10, "full"].startswith("-15.0 (")


def test_gain_interval_points_reads_as_signed_points():
    g = studies.GainInterval("full", "head only", [0.1, 0.2], 0.15, 0.02, 0.284, [0, 1])
    assert g.points() == "+15 (+2 to +28)" and g.points(1) == "+15.0 (+2.0 to +28.4)"
    # a bound that rounds to zero is +0 whichever side it came from: "-0" reads as a sign it lacks
    near_zero = studies.GainInterval("full", "head only", [0.0, 0.02], 0.013, -0.003, 0.029, [0, 1])
    assert near_zero.points() == "+1 (+0 to +3)" and near_zero.points(1) == "+1.3 (-0.3 to +2.9)"


def test_regime_table_holds_fixed_comparisons_per_target_and_budget():
    study = _study()
    table = studies.regime_table({"similar": study, "again": study}, budgets=(1, 10))
    assert list(table.index) == [("similar", 1), ("similar", 10), ("again", 1), ("again", 10)]
    assert list(dict.fromkeys(c for c, _ in table.columns)) == [
        "head only - scratch",
        "full - head only",
        "full - scratch",
    ]
    g = studies.gain_interval(study, 10, method="full", baseline="head only")
    assert table.loc[("similar", 10), ("full - head only", "mean")] == pytest.approx(g.mean)
    assert table.loc[("similar", 10), ("full - head only", "low")] == pytest.approx(g.low)
    assert studies.interval_strings(table).loc[("again", 10), "full - head only"] == g.points()
    with pytest.raises(ValueError, match="at least 2 seeds"):
        studies.regime_table({"similar": study}, budgets=(30,))
