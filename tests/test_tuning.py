"""tlbook.studies.tuning: the learning rates (and the scratch baseline's steps) of every arm, chosen on validation."""

import dataclasses
import json

import numpy as np
import pytest

from tlbook import studies


def _grid(accuracies):
    return [studies.TuningPoint(lr, steps, a) for (lr, steps), a in accuracies.items()]


def test_one_standard_error_choice_takes_the_fewest_steps_within_the_noise():
    # 400 images at p = 0.5: one standard error is 0.025
    flat = _grid({(1e-3, 100): 0.49, (1e-3, 200): 0.50, (3e-3, 100): 0.48, (3e-3, 200): 0.49})
    assert studies.one_standard_error_choice(flat, 400) == flat[2]  # 100 steps; the larger rate among them
    # a clear winner (three standard errors ahead) is taken, even with more steps
    clear = _grid({(1e-3, 100): 0.40, (1e-3, 300): 0.55, (3e-3, 100): 0.42})
    assert studies.one_standard_error_choice(clear, 400) == clear[1]
    # the choice does not move when the best accuracy moves in the third decimal
    nudged = _grid({(1e-3, 100): 0.49, (1e-3, 200): 0.503, (3e-3, 100): 0.48, (3e-3, 200): 0.489})
    assert studies.one_standard_error_choice(nudged, 400).steps == 100
    # few images: a wider margin
    assert studies.one_standard_error_choice(clear, 10).steps == 100
    with pytest.raises(ValueError, match="empty"):
        studies.one_standard_error_choice([], 400)
    with pytest.raises(ValueError, match="n_images"):
        studies.one_standard_error_choice(flat, 0)


def test_scratch_tuning_goes_to_json_and_back_unchanged():
    grid = tuple(_grid({(1e-3, 100): 0.49, (1e-3, 200): 0.5, (3e-3, 100): 0.48}))
    tuning = studies.ScratchTuning(grid=grid, validation_images=400, learning_rate=3e-3, steps=100)
    stored = tuning.to_json()
    # what the cache stores: tune_scratch's JSON, its keys and order as before the dataclasses
    assert list(stored) == ["grid", "validation_images", "learning_rate", "steps"]
    assert stored["grid"][0] == {"learning_rate": 1e-3, "steps": 100, "validation_accuracy": 0.49}
    assert stored["grid"] == [
        {"learning_rate": p.learning_rate, "steps": p.steps, "validation_accuracy": p.validation_accuracy} for p in grid
    ]
    back = studies.ScratchTuning.from_json(json.loads(json.dumps(stored)))
    assert back == tuning and isinstance(back.grid, tuple) and isinstance(back.grid[0], studies.TuningPoint)
    with pytest.raises(KeyError, match="validation_images"):
        studies.ScratchTuning.from_json({"grid": [], "learning_rate": 1e-3, "steps": 100})
    with pytest.raises(dataclasses.FrozenInstanceError):
        tuning.steps = 200


def test_rates_table_lines_up_the_arms_grids_and_their_choice():
    grid = (studies.TuningPoint(1e-3, 100, 0.5), studies.TuningPoint(1e-2, 100, 0.6))
    rates = studies.ArmRates(
        scratch=studies.ScratchTuning(grid=grid, validation_images=300, learning_rate=1e-3, steps=100),
        arms=(
            studies.ArmTuning("head only", grid, 300, 1e-2),
            studies.ArmTuning("full", (studies.TuningPoint(1e-4, 100, 0.7),), 300, 1e-4),
        ),
    )
    table = studies.rates_table(rates)
    assert list(table.index) == ["head only", "full"]
    assert list(table.columns) == [1e-4, 1e-3, 1e-2, "rule", "chosen"]
    assert table.loc["head only", 1e-2] == 0.6 and table.loc["full", "chosen"] == 1e-4
    assert table.loc["head only", "rule"] == 1e-2  # 0.6 is more than one standard error above 0.5
    assert np.isnan(table.loc["full", 1e-3])  # not tried by that arm
    # a rate fixed in advance: the rule's pick from the grid is still shown beside it
    fixed = dataclasses.replace(rates, arms=(dataclasses.replace(rates.arms[0], learning_rate=1e-3), rates.arms[1]))
    table = studies.rates_table(fixed)
    assert table.loc["head only", "rule"] == 1e-2 and table.loc["head only", "chosen"] == 1e-3


def test_rule_choice_is_what_the_one_standard_error_rule_picks_from_the_grid():
    grid = tuple(_grid({(1e-3, 100): 0.40, (1e-3, 300): 0.55, (3e-3, 100): 0.42}))
    tuning = studies.ScratchTuning(grid=grid, validation_images=400, learning_rate=3e-3, steps=100)
    assert tuning.rule_choice() == (1e-3, 300)  # whatever learning_rate and steps it trains with
    arm = studies.ArmTuning("full", tuple(_grid({(1e-4, 100): 0.7, (1e-3, 100): 0.69})), 400, 1e-4)
    assert arm.rule_choice() == 1e-3  # within one standard error: the larger rate


def test_fixed_choices_off_the_grid_are_refused_before_computing(tiny_profile, tmp_cache):
    with pytest.raises(ValueError, match=r"fixed=\(0.02, 100\) is not a point of the grid"):
        studies.tune_scratch(tiny_profile, fixed=(0.02, 100))
    with pytest.raises(ValueError, match=r"steps one of \[100, 200, 300\]"):
        studies.tune_scratch(tiny_profile, fixed=(1e-3, 150))
    scratch = studies.ScratchTuning(grid=(), validation_images=400, learning_rate=1e-3, steps=100)
    with pytest.raises(ValueError, match=r"missing \['full'\], not tuned \['gradual'\]"):
        studies.tune_arms(tiny_profile, arms=("full",), scratch=scratch, fixed={"head only": 1e-3, "gradual": 1e-3})
    with pytest.raises(ValueError, match=r"fixed rates \{'full': 0.01\} are not in the grid"):
        studies.tune_arms(tiny_profile, arms=("full",), scratch=scratch, fixed={"head only": 1e-3, "full": 1e-2})
    assert not list(tmp_cache.rglob("*.json"))


def test_tune_arms_refuses_unknown_arms_and_shifts_before_computing(tiny_profile, tmp_cache):
    with pytest.raises(ValueError, match=r"unknown fine-tuning arms \['magic'\]"):
        studies.tune_arms(tiny_profile, arms=("magic",))
    with pytest.raises(ValueError, match="unknown shift"):
        studies.tune_arms(tiny_profile, shift="blurred")
    assert not list(tmp_cache.rglob("*.json"))


def test_fixed_head_rate_trains_the_arms_grids_and_keys_their_cache_entry(tiny_profile, tmp_cache, monkeypatch):
    # every fine-tuning arm's grid starts from the head the study will use: the fixed one, not the
    # rule's pick; and a grid measured after another head is another cache entry
    from tlbook import backbones
    from tlbook.studies import tuning

    monkeypatch.setattr(backbones, "pretrained_backbone", lambda profile: None)
    monkeypatch.setattr(backbones, "extract_features", lambda backbone, x: np.zeros((len(x), 4), "float32"))
    heads_seen, computed = [], []

    def fake_run_all(calls, n_jobs, desc):
        computed.append(desc)
        points = []
        for _, args, _ in calls:
            arm, rate, head_rate = args[0], args[5], args[6]
            if arm == "head only":  # the rule picks the largest head rate: 1e-2 beats 1e-3 by far
                points.append(studies.TuningPoint(head_rate, 100, 0.9 if head_rate == 1e-2 else 0.5))
            else:
                heads_seen.append(head_rate)
                points.append(studies.TuningPoint(rate, 100, 0.5))
        return points

    monkeypatch.setattr(tuning, "run_all", fake_run_all)
    scratch = studies.ScratchTuning(grid=(), validation_images=400, learning_rate=1e-3, steps=100)
    options = dict(arms=("full",), scratch=scratch, head_learning_rates=(1e-3, 1e-2), learning_rates=(1e-4, 1e-3))
    free = studies.tune_arms(tiny_profile, **options)
    assert free.learning_rate("head only") == 1e-2 and heads_seen == [1e-2, 1e-2]
    heads_seen.clear()
    fixed = studies.tune_arms(tiny_profile, **options, fixed={"head only": 1e-3, "full": 1e-4})
    assert heads_seen == [1e-3, 1e-3]  # computed again (not the first entry), after the fixed head
    assert fixed.learning_rate("head only") == 1e-3 and fixed.arms[0].rule_choice() == 1e-2
    assert len(computed) == 4 and len(list(tmp_cache.rglob("tune-arms/*.sidecar.json"))) == 2
