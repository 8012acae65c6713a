"""tlbook.backbones.features: φ(x) of every image, and the feature cache."""

import os

import numpy as np
import pytest

from tlbook import backbones


def test_extract_features_and_shape_check(tiny_profile):
    backbone = backbones.random_backbone(tiny_profile)
    f = backbones.extract_features(backbone, np.zeros((5, 16, 16, 3), np.uint8))
    assert f.shape == (5, backbone.output_shape[-1]) and f.dtype == np.float32
    with pytest.raises(ValueError, match=r"\(5, 20, 20, 3\).*16, 16, 3"):
        backbones.extract_features(backbone, np.zeros((5, 20, 20, 3)))


def test_cached_features_are_computed_once_per_backbone_images_and_kernels(tiny_profile, tmp_cache, monkeypatch):
    x = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3)).astype(np.uint8)
    backbone = backbones.random_backbone(tiny_profile, seed=0)
    first = backbones.cached_features(backbone, x)
    np.testing.assert_array_equal(first, backbones.extract_features(backbone, x))
    entries = list((tmp_cache / "features").glob("*.npy"))
    assert len(entries) == 1
    with monkeypatch.context() as patched:
        patched.setattr(backbones.features, "extract_features", lambda *a, **k: pytest.fail("computed again"))
        np.testing.assert_array_equal(backbones.cached_features(backbone, x), first)  # read, not computed
    keys = {
        backbones.features_key(backbone, x),
        backbones.features_key(backbones.random_backbone(tiny_profile, seed=1), x),  # other weights
        backbones.features_key(backbone, x[:5]),  # other images
        backbones.features_key(backbone, x.astype(np.float32)),  # other dtype
    }
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1" else "1")
    keys.add(backbones.features_key(backbone, x))  # other kernels
    assert len(keys) == 5
    with pytest.raises(ValueError, match="do not fit the backbone"):
        backbones.cached_features(backbone, np.zeros((2, 20, 20, 3)))


def test_a_damaged_features_entry_is_computed_again(tiny_profile, tmp_cache):
    x = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3)).astype(np.uint8)
    backbone = backbones.random_backbone(tiny_profile, seed=0)
    good = backbones.cached_features(backbone, x)
    (entry,) = (tmp_cache / "features").glob("*.npy")
    entry.write_bytes(b"half a file")
    with pytest.warns(RuntimeWarning, match="computing it again"):
        np.testing.assert_array_equal(backbones.cached_features(backbone, x), good)
    assert np.load(entry).shape == good.shape
