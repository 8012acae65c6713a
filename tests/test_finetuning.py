"""tlbook.finetuning: per-layer learning rates, gradual unfreezing and AdaBN, on small models."""

import numpy as np
import pytest

from tlbook import finetuning, models


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    y = np.arange(24) % 2
    x = (rng.uniform(0, 155, (24, 16, 16, 3)) + 100 * y[:, None, None, None]).astype("float32")
    return x, y


def _model(seed=0):
    return models.build_transfer_model(
        2, backbone="small_cnn", weights=None, input_shape=(16, 16, 3), head_units=8, seed=seed
    )


def _weights(model, name):
    return [np.array(w) for w in finetuning.find_layer(model, name).get_weights()]


def test_find_layer_looks_inside_the_base_and_names_what_exists():
    model = _model()
    assert finetuning.find_layer(model, "head").name == "head"
    assert finetuning.find_layer(model, "conv2") is model.get_layer("base").get_layer("conv2")
    with pytest.raises(ValueError, match="no layer 'conv9'.*conv1"):
        finetuning.find_layer(model, "conv9")


def test_layerwise_fit_moves_only_the_named_layers_and_their_rates_differ(batch):
    model = _model()
    before = {name: _weights(model, name) for name in ("conv1", "conv2", "conv3", "bn3", "hidden", "head")}
    losses = finetuning.layerwise_fit(model, *batch, 5, learning_rates={"conv3": 1e-5, "head": 1e-2}, seed=0)
    assert len(losses) == 5 and all(np.isfinite(losses))
    moved = {
        name: max(float(np.abs(a - b).max()) for a, b in zip(_weights(model, name), w, strict=True))
        for name, w in before.items()
    }
    assert moved["conv1"] == moved["conv2"] == moved["hidden"] == 0.0
    assert moved["bn3"] == 0.0  # BatchNorm not named: frozen, statistics kept
    # Adam's step is about the learning rate per step whatever the gradient: 5 steps at 1e-5 vs 1e-2
    assert 0 < moved["conv3"] <= 5e-5 * 1.01
    assert moved["head"] > 100 * moved["conv3"]


def test_layerwise_fit_is_reproducible_and_calls_back_each_step(batch):
    steps = []
    a, b = _model(), _model()
    la = finetuning.layerwise_fit(a, *batch, 4, learning_rates={"head": 1e-2}, seed=3, callback=steps.append)
    lb = finetuning.layerwise_fit(b, *batch, 4, learning_rates={"head": 1e-2}, seed=3)
    assert steps == [1, 2, 3, 4]
    assert la == lb
    np.testing.assert_array_equal(_weights(a, "head")[0], _weights(b, "head")[0])


def test_layerwise_fit_refuses_bad_arguments(batch):
    model = _model()
    with pytest.raises(ValueError, match="learning_rates is empty"):
        finetuning.layerwise_fit(model, *batch, 2, learning_rates={})
    with pytest.raises(ValueError, match="'head' must be a positive number"):
        finetuning.layerwise_fit(model, *batch, 2, learning_rates={"head": 0})
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        finetuning.layerwise_fit(model, *batch, 0, learning_rates={"head": 1e-3})
    with pytest.raises(ValueError, match="no layer 'top'"):
        finetuning.layerwise_fit(model, *batch, 2, learning_rates={"top": 1e-3})


def test_layerwise_fit_lowers_the_training_loss(batch):
    model = _model()
    losses = finetuning.layerwise_fit(
        model, *batch, 40, learning_rates={"conv3": 1e-3, "hidden": 1e-2, "head": 1e-2}, seed=0
    )
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_gradual_unfreeze_unfreezes_top_first_and_counts_steps_over_stages(batch):
    model = _model()
    conv1 = _weights(model, "conv1")[0]
    seen = []
    losses = finetuning.gradual_unfreeze(
        model,
        *batch,
        7,
        stages=[["conv3"], ["conv2", "conv1"]],
        learning_rates={"conv3": 1e-3, "conv2": 1e-3, "conv1": 1e-3, "head": 1e-2},
        callback=seen.append,
    )
    assert len(losses) == 7 and seen == list(range(1, 8))  # 3 steps, then the last stage's 4
    assert np.abs(_weights(model, "conv1")[0] - conv1).max() > 0  # unfrozen in stage 2


def test_gradual_unfreeze_keeps_the_first_stage_alone_at_first(batch):
    model = _model()
    conv1 = _weights(model, "conv1")[0]
    finetuning.gradual_unfreeze(
        model, *batch, 2, stages=[["conv3"], ["conv1"]], learning_rates={"conv3": 1e-3, "conv1": 1e-3, "head": 1e-2}
    )
    # stage 2 had one step: conv1 moved by about one learning rate at most
    assert np.abs(_weights(model, "conv1")[0] - conv1).max() <= 1.01e-3


def test_gradual_unfreeze_refuses_bad_stages(batch):
    model = _model()
    with pytest.raises(ValueError, match="stages is empty"):
        finetuning.gradual_unfreeze(model, *batch, 4, stages=[], learning_rates={"head": 1e-3})
    with pytest.raises(ValueError, match=">= the number of stages"):
        finetuning.gradual_unfreeze(model, *batch, 1, stages=[["conv3"], ["conv2"]], learning_rates={})
    with pytest.raises(ValueError, match=r"no learning rate for the layers \['conv2'\]"):
        finetuning.gradual_unfreeze(
            model, *batch, 4, stages=[["conv3"], ["conv2"]], learning_rates={"conv3": 1e-3, "head": 1e-3}
        )


def test_adapt_batchnorm_sets_the_target_statistics_and_keeps_the_frozen_flags(batch):
    x, _ = batch
    model = _model()
    base = model.get_layer("base")
    for layer in base.layers:  # as a frozen pretrained base: BatchNorm frozen
        layer.trainable = False
    assert finetuning.adapt_batchnorm(base, x) == 3
    bn1 = base.get_layer("bn1")
    assert not bn1.trainable
    # bn1's input is conv1's output on the rescaled images: its moving mean is now their channel mean
    conv_out = base.get_layer("conv1")(base.get_layer("rescale_0_1")(x)).numpy()
    np.testing.assert_allclose(bn1.moving_mean.numpy(), conv_out.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn1.moving_variance.numpy(), conv_out.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5)
    with pytest.raises(ValueError, match="needs target images"):
        finetuning.adapt_batchnorm(base, x[:0])


def test_adapt_batchnorm_undoes_a_change_of_scale_but_leaves_weights(batch):
    x, _ = batch
    base = _model().get_layer("base")  # frozen, BatchNorm included
    finetuning.adapt_batchnorm(base, x)
    reference = base.predict(x, verbose=0)
    kernels = base.get_layer("conv1").get_weights()[0].copy()
    finetuning.adapt_batchnorm(base, 0.5 * x)  # a darker target: conv1's outputs halve, bn1 rescales them
    np.testing.assert_array_equal(base.get_layer("conv1").get_weights()[0], kernels)
    # equal up to BatchNorm's epsilon (1e-3), which is not scaled with the variance
    np.testing.assert_allclose(base.predict(0.5 * x, verbose=0), reference, rtol=0.02, atol=0.01)


def test_a_second_call_reuses_the_traced_step_with_fresh_optimizers_and_the_same_bits(batch):
    rates = {"conv3": 1e-3, "head": 1e-2}
    fresh = _model()
    expected = finetuning.layerwise_fit(fresh, *batch, 4, learning_rates=rates, seed=1)
    model = _model()
    start = model.get_weights()
    finetuning.layerwise_fit(model, *batch, 3, learning_rates=rates, seed=5)  # traces, moves the optimizers
    model.set_weights(start)
    again = finetuning.layerwise_fit(model, *batch, 4, learning_rates=rates, seed=1)
    assert again == expected  # Adam's slots and step count were back at zero
    for a, b in zip(model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(finetuning._STEPS[model]) == 1  # one trace for one layer-and-rate set


def test_steps_run_in_blocks_give_the_same_bits_and_call_back_at_block_ends(batch):
    rates = {"conv2": 1e-3, "head": 1e-2}
    one, seen_one = _model(), []
    by_one = finetuning.layerwise_fit(one, *batch, 5, learning_rates=rates, seed=2, callback=seen_one.append)
    block, seen_block = _model(), []
    by_block = finetuning.layerwise_fit(
        block, *batch, 5, learning_rates=rates, seed=2, callback=seen_block.append, every=3
    )
    assert seen_one == [1, 2, 3, 4, 5] and seen_block == [3, 5]
    assert by_block == by_one
    for a, b in zip(one.get_weights(), block.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="every must be a positive integer"):
        finetuning.layerwise_fit(block, *batch, 5, learning_rates=rates, every=0)


def test_gradual_blocks_end_at_multiples_of_every_counted_over_all_stages(batch):
    seen = []
    rates = {"conv3": 1e-3, "conv2": 1e-3, "head": 1e-2}
    finetuning.gradual_unfreeze(
        _model(), *batch, 7, stages=[["conv3"], ["conv2"]], learning_rates=rates, callback=seen.append, every=4
    )
    assert seen == [3, 4, 7]  # stage 1 ends at 3; stage 2 reaches 4, a multiple of every, then ends at 7
