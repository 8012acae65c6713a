"""tlbook.backbones.small_cnn: the small CNN and a classifier on a backbone."""

import keras
import numpy as np
import pytest

from tlbook import backbones


def test_small_cnn_shapes_and_seeding():
    a = backbones.build_small_cnn((16, 16, 3), width=4, seed=1)
    b = backbones.build_small_cnn((16, 16, 3), width=4, seed=1)
    c = backbones.build_small_cnn((16, 16, 3), width=4, seed=2)
    x = np.random.default_rng(0).uniform(0, 255, (3, 16, 16, 3)).astype("float32")
    assert a.output_shape == (None, 16)
    assert np.array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    assert not np.allclose(a.predict(x, verbose=0), c.predict(x, verbose=0))
    assert a.layers[1].name == "rescale_0_1"  # preprocessing travels with the model


@pytest.mark.parametrize("shape", [(16, 16), (16, 16, 1), (4, 16, 3)])
def test_small_cnn_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="input_shape"):
        backbones.build_small_cnn(shape)


def test_classifier_outputs_probabilities():
    model = backbones.build_classifier(backbones.build_small_cnn((12, 12, 3), width=2), num_classes=4)
    p = model.predict(np.zeros((2, 12, 12, 3), "float32"), verbose=0)
    assert p.shape == (2, 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="num_classes >= 2"):
        backbones.build_classifier(backbones.build_small_cnn((12, 12, 3), width=2), num_classes=1)


def test_classifier_is_built_on_the_backbones_input_so_keras_can_cut_it():
    backbone = backbones.build_small_cnn((12, 12, 3), width=2)
    model = backbones.build_classifier(backbone, num_classes=3)
    assert model.inputs[0] is backbone.inputs[0]
    x = np.random.default_rng(0).uniform(0, 255, (2, 12, 12, 3)).astype("float32")
    phi = keras.Model(model.inputs, model.get_layer(backbone.name).output)
    np.testing.assert_allclose(phi.predict(x, verbose=0), backbone.predict(x, verbose=0), rtol=1e-6)
    assert keras.Model(model.inputs, backbone.get_layer("bn2").output).output_shape[-1] == 4
