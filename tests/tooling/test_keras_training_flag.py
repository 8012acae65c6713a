"""What ``base(x, training=False)`` does in Keras 3 (the version requirements.txt pins), for the
three ways a model runs: a direct call, ``predict`` and ``fit``. Chapter 4 (Fix 4) states it.

In a functional model, the ``training`` argument of the outer call reaches every layer inside and
replaces the ``training=False`` written on the inner call (keras-team/keras#20285): a direct call
with ``training=True`` and ``fit`` both run BatchNorm on the batch's statistics and update its
moving averages. What keeps a BatchNorm layer in inference mode in every case is
``trainable=False`` on the layer."""

import numpy as np
import pytest


def _model(inner_training):
    import keras

    inputs = keras.Input((4,))
    base_inputs = keras.Input((4,))
    batchnorm = keras.layers.BatchNormalization(momentum=0.0, name="bn")  # moving stats = last batch's
    base = keras.Model(base_inputs, batchnorm(base_inputs), name="base")
    kwargs = {} if inner_training is None else {"training": inner_training}
    model = keras.Model(inputs, base(inputs, **kwargs))
    return model, batchnorm


def _behaviour(inner_training, bn_trainable):
    """For each way of running: did BatchNorm normalise with the batch's statistics, and did it
    change its moving averages?"""
    x = np.random.default_rng(0).normal(5.0, 2.0, (64, 4)).astype("float32")  # mean 5: far from the stored 0
    out = {}
    for way in ("call", "call(training=True)", "predict", "fit"):
        model, batchnorm = _model(inner_training)
        batchnorm.trainable = bn_trainable
        model.compile(optimizer="sgd", loss="mse")
        if way == "call":
            y = model(x).numpy()
        elif way == "call(training=True)":
            y = model(x, training=True).numpy()
        elif way == "predict":
            y = model.predict(x, verbose=0)
        else:
            model.fit(x, np.zeros_like(x), epochs=1, batch_size=64, verbose=0)
            y = None
        batch_statistics = None if y is None else bool(abs(y.mean()) < 0.5)  # normalised to mean 0
        moved = bool(np.abs(batchnorm.moving_mean.numpy()).max() > 0)
        out[way] = (batch_statistics, moved)
    return out


@pytest.mark.parametrize("inner_training", [False, None])
def test_training_false_on_the_inner_call_is_replaced_by_the_outer_training_flag(inner_training):
    behaviour = _behaviour(inner_training, bn_trainable=True)
    assert behaviour["call"] == (False, False)  # inference mode: a direct call defaults to training=False
    assert behaviour["predict"] == (False, False)  # inference mode
    assert behaviour["call(training=True)"] == (True, True)  # batch statistics, despite training=False inside
    assert behaviour["fit"] == (None, True)  # fit calls with training=True: the moving averages change


def test_trainable_false_keeps_batchnorm_in_inference_mode_everywhere():
    for inner_training in (False, None):
        behaviour = _behaviour(inner_training, bn_trainable=False)
        assert behaviour == {
            "call": (False, False),
            "call(training=True)": (False, False),
            "predict": (False, False),
            "fit": (None, False),
        }
