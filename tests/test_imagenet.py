"""tlbook.models.imagenet: what EfficientNet-Lite0's ImageNet head sees in two photos, on the weights
converted into a cache of the tests' own (the backbone's own tests: tests/test_lite0.py)."""

import numpy as np
import pytest

from tlbook import models, pytorch_weights


@pytest.mark.slow
def test_imagenet_head_names_the_sample_photos(lite0_cache, sample_photos, monkeypatch):
    # converted once: a later call reads the verified cache entry, never the PyTorch file again
    monkeypatch.setattr(pytorch_weights, "read_state_dict", lambda path: pytest.fail("converted twice"))
    top = models.imagenet_predictions(sample_photos, top=5)
    assert [row[0][1] for row in top] == ["palace", "daisy"]
    assert all(len(row) == 5 and row[0][2] > 0.15 for row in top)
    assert all(a[2] >= b[2] for row in top for a, b in zip(row, row[1:], strict=False))
    random = models.imagenet_predictions(sample_photos, top=1, weights=None)
    assert all(abs(row[0][2] - 1 / 1000) < 1e-3 for row in random)  # nearly uniform over 1000 classes
    with pytest.raises(ValueError, match="top must be"):
        models.imagenet_predictions(sample_photos, top=0)
    with pytest.raises(ValueError, match="backbone='efficientnet_lite0'"):
        models.imagenet_predictions(sample_photos, backbone="resnet50")


def test_imagenet_input_crops_the_centre_and_resizes():
    wide = np.zeros((100, 300, 3), dtype="uint8")
    wide[:, 100:200] = 255  # the centred square is white, the sides black
    out = models.imagenet_input(wide, image_size=(50, 50))
    assert out.shape == (1, 50, 50, 3) and out.dtype == np.float32
    assert out.min() > 250
    assert models.imagenet_input([wide, np.zeros((20, 10, 3))], image_size=(8, 8)).shape == (2, 8, 8, 3)
    with pytest.raises(ValueError, match=r"image 0 has shape \(4, 4\)"):
        models.imagenet_input([np.zeros((4, 4))])
