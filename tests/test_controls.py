"""tlbook.backbones.controls: the no-transfer controls, random weights and the raw pixels."""

import numpy as np

from tlbook import backbones


def test_pixel_backbone_is_the_flattened_image(tiny_profile):
    x = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    f = backbones.extract_features(backbones.pixel_backbone(tiny_profile), x)
    assert np.array_equal(f, x.reshape(2, -1).astype(np.float32))


def test_random_backbone_depends_on_seed(tiny_profile):
    x = np.full((1, 16, 16, 3), 128, np.uint8)
    f0 = backbones.extract_features(backbones.random_backbone(tiny_profile, seed=0), x)
    assert np.array_equal(f0, backbones.extract_features(backbones.random_backbone(tiny_profile, seed=0), x))
    assert not np.array_equal(f0, backbones.extract_features(backbones.random_backbone(tiny_profile, seed=1), x))
