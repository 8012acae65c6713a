"""tlbook.models.heads: the article's head on φ(x), alone or inside a model, and read back as θ and b."""

import contextlib
import math

import keras
import numpy as np
import pytest

from tlbook import backbones, data, models, training


def test_prediction_is_softmax_of_theta_phi_plus_b(tiny_profile, tmp_cache):
    """The article's prediction = θ·φ(x), checked on a real trained model."""
    task = data.target_task(tiny_profile)
    model, backbone = models.transfer_classifier(task.num_classes, tiny_profile, learning_rate=1e-2)
    assert backbone.trainable_weights == [] and len(model.trainable_weights) == 2  # only θ and b learn
    model.fit(task.train.x.astype("float32"), task.train.y, epochs=2, verbose=0)
    theta, b = models.head_parameters(model)
    assert theta.shape == (backbone.output_shape[-1], task.num_classes) and b.shape == (task.num_classes,)
    x = task.test.x[:32]
    by_hand = models.predict_by_hand(backbones.extract_features(backbone, x), theta, b)
    np.testing.assert_allclose(model.predict(x.astype("float32"), verbose=0), by_hand, atol=1e-5)
    with pytest.raises(ValueError, match="no layer 'theta'"):
        models.head_parameters(model, head="theta")
    with pytest.raises(ValueError, match="do not chain"):
        models.predict_by_hand(np.zeros((2, 3)), theta, b)


def test_head_model_weights_move_into_the_full_model(tiny_profile, tiny_source_cache):
    full = models.pretrained_model(3, tiny_profile, seed=2)
    head = models.head_model(full.get_layer("hidden").input.shape[-1], 3, seed=5)
    assert not np.array_equal(head.get_layer("hidden").get_weights()[0], full.get_layer("hidden").get_weights()[0])
    head.get_layer("head").set_weights([np.full_like(w, 0.5) for w in head.get_layer("head").get_weights()])
    training.copy_head(head, full)
    for name in ("hidden", "head"):
        for a, b in zip(head.get_layer(name).get_weights(), full.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_the_head_alone_and_the_full_model_start_from_the_same_head_for_the_same_seed(tiny_profile, tiny_source_cache):
    full = models.pretrained_model(3, tiny_profile, seed=4)
    head = models.head_model(full.get_layer("hidden").input.shape[-1], 3, seed=4)
    for name in ("hidden", "head"):
        for a, b in zip(head.get_layer(name).get_weights(), full.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    seeded = [keras.Model(*_head_on(8, seed=s)).get_layer("hidden").get_weights()[0] for s in (5, 5, 6)]
    np.testing.assert_array_equal(seeded[0], seeded[1])
    assert not np.array_equal(seeded[0], seeded[2])


def _head_on(feature_dim, seed):
    inputs = keras.Input(shape=(feature_dim,))
    return inputs, models.article_head(inputs, 3, head_units=16, seed=seed)


def test_article_head_shapes_and_names():
    model = keras.Model(*_head_on(8, seed=0))
    assert model.output_shape == (None, 3)
    assert [layer.name for layer in model.layers[1:]] == ["hidden", "head"]
    assert model.get_layer("hidden").units == 16
    np.testing.assert_allclose(model.predict(np.ones((2, 8), "float32"), verbose=0).sum(axis=1), 1.0, rtol=1e-6)


def test_strategy_scope_enters_the_strategys_scope_or_nothing():
    entered = []

    class Strategy:
        @contextlib.contextmanager
        def scope(self):
            entered.append("in")
            yield

    with models.strategy_scope(Strategy()):
        assert entered == ["in"]
    with models.strategy_scope(None):
        pass
    assert entered == ["in"]
    model = models.head_model(4, 2, head_units=3, strategy=Strategy())
    assert entered == ["in", "in"] and model.output_shape == (None, 2)


def _first_loss(model, x, num_classes):
    """The cross-entropy of an untrained model on ``x`` with labels cycling through the K classes."""
    y = np.arange(len(x)) % num_classes
    loss = keras.losses.SparseCategoricalCrossentropy()(y, model(x, training=False))
    return float(loss)


def _init(init):
    """The keyword for a builder: nothing for ``None``, so the builder's own default is what is tested."""
    return {} if init is None else {"head_initializer": init}


FRESH_HEADS = {
    "article_head": lambda k, init: keras.Model(
        *(lambda i: (i, models.article_head(i, k, head_units=16, seed=3, **_init(init))))(keras.Input((8,)))
    ),
    "head_model": lambda k, init: models.head_model(8, k, head_units=16, seed=3, **_init(init)),
    "build_classifier": lambda k, init: backbones.build_classifier(
        backbones.build_small_cnn((16, 16, 3), width=4, seed=3), k, seed=3, **_init(init)
    ),
    "build_transfer_model": lambda k, init: models.build_transfer_model(
        k, backbone="small_cnn", weights=None, input_shape=(16, 16, 3), head_units=16, seed=3, **_init(init)
    ),
}


@pytest.mark.parametrize("builder", sorted(FRESH_HEADS))
@pytest.mark.parametrize("num_classes", [2, 5, 10])
@pytest.mark.parametrize("init", ["zeros", None])  # None: the builder's default
def test_every_fresh_head_starts_at_ln_k(builder, num_classes, init):
    """The one first-loss rule: a new head's kernel and bias start at zero, so every class gets 1/K
    and the loss before training is ln K, on any inputs; Keras's default kernel starts elsewhere."""
    model = FRESH_HEADS[builder](num_classes, init)
    shape = model.inputs[0].shape[1:]
    x = np.random.default_rng(0).uniform(0, 255, (12, *shape)).astype("float32")
    assert abs(_first_loss(model, x, num_classes) - math.log(num_classes)) < 1e-3
    kernel, bias = model.get_layer("head").get_weights()
    assert not kernel.any() and not bias.any()
    glorot = FRESH_HEADS[builder](num_classes, "glorot_uniform")
    assert glorot.get_layer("head").get_weights()[0].any()
    assert abs(_first_loss(glorot, x, num_classes) - math.log(num_classes)) > 1e-3


def test_the_default_head_is_zero_in_every_model_a_chapter_builds(tiny_profile, tiny_source_cache):
    """The builders the chapters call, with their defaults: every new head on a pretrained base
    starts at ln K; the scratch network, all of it new, keeps Keras's default (its docstring says why)."""
    x = data.target_task(tiny_profile).test.x[:10].astype("float32")
    built = [models.pretrained_model(5, tiny_profile, seed=1), models.transfer_classifier(5, tiny_profile)[0]]
    for model in built:
        assert abs(_first_loss(model, x, 5) - math.log(5)) < 1e-3, model.name
    scratch = models.scratch_model(5, tiny_profile, seed=1)
    assert scratch.get_layer("head").get_weights()[0].any()
    glorot = models.build_transfer_model(
        5,
        backbone="small_cnn",
        weights=None,
        input_shape=tiny_profile.input_shape,
        seed=1,
        head_initializer="glorot_uniform",
        profile=tiny_profile,
    )
    np.testing.assert_array_equal(scratch.get_layer("head").get_weights()[0], glorot.get_layer("head").get_weights()[0])


def test_a_zero_head_still_learns():
    """A zero kernel is not a dead layer: the hidden layer below it keeps its random weights, so
    the head's gradient is not zero on the first step, and training lowers the loss."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = models.head_model(8, 2, head_units=16, learning_rate=1e-2, seed=0)
    before = model.evaluate(x, y, verbose=0)[0]
    hidden_before = model.get_layer("hidden").get_weights()[0].copy()
    model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert before == pytest.approx(math.log(2), abs=1e-3)
    assert model.evaluate(x, y, verbose=0)[0] < 0.5 * before
    assert (
        np.abs(model.get_layer("hidden").get_weights()[0] - hidden_before).max() > 1e-3
    )  # the layer below learned too


@pytest.mark.parametrize("init", ["he_normal", "Zeros", None])
def test_an_unknown_head_initializer_is_refused_by_name(init):
    with pytest.raises(ValueError, match="head_initializer must be one of 'zeros', 'glorot_uniform'"):
        models.head_kernel_initializer(init)
    with pytest.raises(ValueError, match=repr(init)):
        models.build_transfer_model(
            2, backbone="small_cnn", weights=None, input_shape=(16, 16, 3), head_initializer=init
        )
