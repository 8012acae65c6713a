"""tlbook.studies.arms: every arm trains, for the steps the rule gives, from the head-only arm's head."""

import numpy as np
import pytest

from tlbook import data, studies
from tlbook.studies import arms


def test_arm_steps_grow_with_the_data_in_whole_chunks():
    assert arms.arm_steps(100, 50) == 100  # the tuned number: 25 epochs of 2 batches are fewer
    assert arms.arm_steps(100, 448) == 350  # 25 epochs of 14 batches
    assert arms.arm_steps(120, 5, chunk=50) == 150  # whole chunks
    with pytest.raises(ValueError, match=">= 1"):
        arms.arm_steps(100, 0)


def test_every_arm_is_named_once_and_the_fine_tuning_arms_unfreeze_the_small_cnn():
    assert len(set(arms.ARMS)) == len(arms.ARMS) and set(arms.UNFREEZE) < set(arms.ARMS)
    assert {name for stages in arms.UNFREEZE.values() for stage in stages for name in stage} == {
        "conv1",
        "conv2",
        "conv3",
    }
    assert arms.UNFREEZE["gradual"][0] == ("conv3",)  # top first


@pytest.fixture
def arm_data(tiny_profile, tiny_source_cache):
    from tlbook.backbones import extract_features, pretrained_backbone
    from tlbook.finetuning import adapt_batchnorm

    task = data.invert_task(data.target_task(tiny_profile))
    idx = data.sample_indices_per_class(task.train.y, 3, seed=0)
    backbone = pretrained_backbone(tiny_profile)
    features = extract_features(backbone, task.train.x), extract_features(backbone, task.test.x)
    adapt_batchnorm(backbone, task.train.x.astype("float32"))
    adapted = extract_features(backbone, task.train.x), extract_features(backbone, task.test.x)
    return task, arms.ArmData(
        x=task.train.x[idx].astype("float32"),
        y=task.train.y[idx],
        test_x=task.test.x.astype("float32"),
        test_y=task.test.y,
        features=features[0][idx],
        test_features=features[1],
        adapted=adapted[0][idx],
        test_adapted=adapted[1],
        unlabelled=task.train.x.astype("float32"),
    )


def _train(arm, task, arm_data, profile, steps=20, chunk=10, curve=True):
    return arms.train_arm(
        arm,
        arm_data,
        num_classes=task.num_classes,
        profile=profile,
        seed=0,
        steps=steps,
        learning_rate=1e-3,
        head_learning_rate=1e-3,
        chunk=chunk,
        curve=curve,
    )


@pytest.mark.slow
def test_each_arm_returns_a_curve_of_test_accuracies(tiny_profile, arm_data):
    task, d = arm_data
    curves = {arm: _train(arm, task, d, tiny_profile) for arm in arms.ARMS}
    for arm, curve in curves.items():
        assert all(0 <= a <= 1 for _, a in curve), arm
        assert [t for t, _ in curve] == sorted(t for t, _ in curve), arm  # seconds since the start
    assert len(curves["scratch"]) == 2  # a point per chunk
    assert len(curves["head only"]) == len(curves["AdaBN"]) == 1
    assert len(curves["full"]) == 3  # before fine-tuning, then a point per chunk
    # every fine-tuning arm starts where its frozen arm ended: the same head on the same features
    for arm in arms.UNFREEZE:
        frozen = "AdaBN" if arm in arms.ADAPTED else "head only"
        assert curves[arm][0][1] == pytest.approx(curves[frozen][0][1], abs=1e-6), arm
    # AdaBN changes the features the head sees on the shifted target
    assert not np.array_equal(d.adapted, d.features)
    # scored at the end only: one point, the same final accuracy, bit for bit
    for arm in ("scratch", "full", "gradual", "AdaBN + full"):
        ended = _train(arm, task, d, tiny_profile, curve=False)
        assert len(ended) == 1 and ended[0][1] == curves[arm][-1][1], arm
    # a step count that is not a whole number of chunks still ends with the end's accuracy
    assert len(_train("full", task, d, tiny_profile, steps=15, chunk=10)) == 3  # before, after 10, after 15


@pytest.mark.slow
def test_a_study_trains_a_draws_head_once_and_every_arm_counts_its_seconds(tiny_profile, arm_data, monkeypatch):
    from tlbook import training
    from tlbook.studies import pool

    task, d = arm_data
    fits = []
    fit_steps = training.fit_steps
    monkeypatch.setattr(training, "fit_steps", lambda *a, **k: fits.append(a[3]) or fit_steps(*a, **k))
    alone = _train("head only", task, d, tiny_profile)
    assert fits == [20]  # outside a study: trained for each arm
    monkeypatch.setattr(pool, "_keeping", True)
    try:
        first = _train("head only", task, d, tiny_profile)
        full = _train("full", task, d, tiny_profile)
        top = _train("top block", task, d, tiny_profile)
    finally:
        pool._kept_models.clear()
    assert fits == [20, 20]  # in a study: once, for the draw's head-only arm; full and top block reuse it
    assert first[0][1] == alone[0][1] == full[0][1] == top[0][1]  # the same head, bit for bit
    # a kept head's training seconds count in every arm that starts from it
    monkeypatch.setattr(arms, "keep_result", lambda key, compute: (compute()[0], 1000.0))
    for arm in ("head only", "full"):
        assert _train(arm, task, d, tiny_profile)[0][0] >= 1000, arm
    with pytest.raises(ValueError, match=r"steps \(15\) must be a multiple of chunk \(10\)"):
        _train("scratch", task, d, tiny_profile, steps=15, chunk=10)


def test_train_arm_refuses_unknown_arms_and_missing_features(tiny_profile, arm_data):
    task, d = arm_data
    with pytest.raises(ValueError, match="unknown arm 'magic'"):
        _train("magic", task, d, tiny_profile)
    import dataclasses

    with pytest.raises(ValueError, match="AdaBN arm needs"):
        _train("AdaBN", task, dataclasses.replace(d, adapted=None), tiny_profile)
    with pytest.raises(ValueError, match=r"AdaBN \+ full arm needs"):
        _train("AdaBN + full", task, dataclasses.replace(d, unlabelled=None), tiny_profile)


def test_arm_rates_name_every_arm_and_go_to_json_and_back():
    import json

    grid = (studies.TuningPoint(1e-3, 100, 0.5),)
    rates = studies.ArmRates(
        scratch=studies.ScratchTuning(grid=grid, validation_images=300, learning_rate=3e-3, steps=100),
        arms=(studies.ArmTuning("head only", grid, 300, 1e-2), studies.ArmTuning("full", grid, 300, 3e-4)),
    )
    assert rates.learning_rate("scratch") == 3e-3
    assert rates.learning_rate("head only") == rates.learning_rate("AdaBN") == 1e-2
    assert rates.learning_rate("full") == 3e-4
    with pytest.raises(KeyError, match="no learning rate tuned for arm 'gradual'"):
        rates.learning_rate("gradual")
    assert studies.ArmRates.from_json(json.loads(json.dumps(rates.to_json()))) == rates
