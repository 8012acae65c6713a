"""tlbook.models.heads: the article's head on φ(x), alone or inside a model, and read back as θ and b."""

import contextlib

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
    assert not np.array_equal(head.get_layer("head").get_weights()[0], full.get_layer("head").get_weights()[0])
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
