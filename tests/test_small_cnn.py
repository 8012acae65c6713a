"""tlbook.backbones.small_cnn: the small CNN and a classifier on a backbone."""

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
