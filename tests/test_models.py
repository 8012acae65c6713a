import dataclasses
import json
import os
import warnings

import numpy as np
import pytest

from tlbook import backbones, data, files, models


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


def test_extract_features_and_shape_check(tiny_profile):
    backbone = backbones.random_backbone(tiny_profile)
    f = backbones.extract_features(backbone, np.zeros((5, 16, 16, 3), np.uint8))
    assert f.shape == (5, backbone.output_shape[-1]) and f.dtype == np.float32
    with pytest.raises(ValueError, match=r"\(5, 20, 20, 3\).*16, 16, 3"):
        backbones.extract_features(backbone, np.zeros((5, 20, 20, 3)))


def test_pixel_backbone_is_the_flattened_image(tiny_profile):
    x = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    f = backbones.extract_features(backbones.pixel_backbone(tiny_profile), x)
    assert np.array_equal(f, x.reshape(2, -1).astype(np.float32))


def test_random_backbone_depends_on_seed(tiny_profile):
    x = np.full((1, 16, 16, 3), 128, np.uint8)
    f0 = backbones.extract_features(backbones.random_backbone(tiny_profile, seed=0), x)
    assert np.array_equal(f0, backbones.extract_features(backbones.random_backbone(tiny_profile, seed=0), x))
    assert not np.array_equal(f0, backbones.extract_features(backbones.random_backbone(tiny_profile, seed=1), x))


def test_cache_key_follows_the_settings(tiny_profile, tmp_cache):
    import dataclasses

    a = backbones.source_cache_path(tiny_profile)
    assert a.parent == tmp_cache
    assert backbones.source_cache_path(dataclasses.replace(tiny_profile, source_epochs=2)) != a
    assert backbones.source_cache_path(dataclasses.replace(tiny_profile, seed=1)) != a
    assert backbones.source_cache_path(tiny_profile) == a


def test_source_classifier_trains_once_then_loads(tiny_profile, tmp_cache, monkeypatch):
    model, meta = backbones.source_classifier(tiny_profile)
    path = backbones.source_cache_path(tiny_profile)
    assert path.is_file() and json.loads(path.with_suffix(".json").read_text())["sha256"] == meta["sha256"]
    entries = sorted(p.name for p in tmp_cache.iterdir() if p.name != "locks")  # locks: empty lock files
    assert entries == sorted([path.name, path.with_suffix(".json").name])
    assert 0.0 <= meta["source_test_accuracy"] <= 1.0

    def no_training(profile=None):
        raise AssertionError("the cached model should have been loaded")

    monkeypatch.setattr(backbones, "pretrain_source_classifier", no_training)
    loaded, meta2 = backbones.source_classifier(tiny_profile)
    x = data.source_task(tiny_profile).test.x[:8].astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert meta2 == meta
    backbone = backbones.pretrained_backbone(tiny_profile)
    assert backbone.name == "backbone" and backbone.output_shape == (None, 4 * tiny_profile.source_width)


def test_damaged_cache_entry_is_never_loaded(tiny_profile, tmp_cache):
    backbones.source_classifier(tiny_profile)
    path = backbones.source_cache_path(tiny_profile)
    with open(path, "r+b") as fh:  # truncate: a half-copied file
        fh.truncate(path.stat().st_size // 2)
    with pytest.warns(RuntimeWarning, match="incomplete or damaged"):
        model, meta = backbones.source_classifier(tiny_profile)
    assert meta["sha256"] == files.file_digest(path, "sha256")
    assert model.get_layer("backbone") is not None


def test_interrupted_save_leaves_no_entry(tiny_profile, tmp_cache, monkeypatch):
    import keras

    def crash(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        backbones.source_classifier(tiny_profile)
    assert [p for p in tmp_cache.iterdir() if p.name != "locks"] == []
    lock = backbones.source_cache_path(tiny_profile).stem + ".lock"
    assert [p.name for p in (tmp_cache / "locks").iterdir()] == [lock]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing damaged to warn about: the entry is simply absent
        assert files.read_verified(backbones.source_cache_path(tiny_profile)) is None


def test_pretraining_refuses_a_profile_with_another_backbone(tiny_profile):
    with pytest.raises(ValueError, match="resnet50"):
        backbones.pretrain_source_classifier(dataclasses.replace(tiny_profile, name="other", backbone="resnet50"))


def test_set_trainable(tiny_profile):
    backbone = backbones.random_backbone(tiny_profile)
    assert models.set_trainable(backbone, None) == 0
    n3 = models.set_trainable(backbone, "conv3")
    assert n3 == 1  # conv3's kernel; bn3 stays frozen (its gamma and beta too)
    assert not backbone.get_layer("conv2").trainable and not backbone.get_layer("bn3").trainable
    assert models.set_trainable(backbone, "conv3", keep_batchnorm_frozen=False) == 3  # + bn3 gamma, beta
    assert models.set_trainable(backbone, "conv1") > n3
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        models.set_trainable(backbone, "conv9")


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


def test_transfer_classifier_rejects_bad_learning_rate(tiny_profile, tmp_cache):
    with pytest.raises(ValueError, match="learning_rate"):
        models.transfer_classifier(3, tiny_profile, learning_rate=0)


def test_batchnorm_layers_finds_nested_layers_with_their_path(tiny_profile):
    model = models.build_transfer_model(
        2, backbone="small_cnn", weights=None, input_shape=tiny_profile.input_shape, head_units=4
    )
    found = models.batchnorm_layers(model)
    assert [name for name, _ in found] == ["base/bn1", "base/bn2", "base/bn3"]
    assert found[2][1] is model.get_layer("base").get_layer("bn3")
    assert models.batchnorm_layers(backbones.pixel_backbone(tiny_profile)) == []


def test_cached_features_are_computed_once_per_backbone_images_and_kernels(tiny_profile, tmp_cache, monkeypatch):
    x = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3)).astype(np.uint8)
    backbone = backbones.random_backbone(tiny_profile, seed=0)
    first = backbones.cached_features(backbone, x)
    np.testing.assert_array_equal(first, backbones.extract_features(backbone, x))
    entries = list((tmp_cache / "features").glob("*.npy"))
    assert len(entries) == 1
    with monkeypatch.context() as patched:
        patched.setattr(backbones, "extract_features", lambda *a, **k: pytest.fail("computed again"))
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
    entry = tmp_cache / "features" / f"{backbones.features_key(backbone, x)}.npy"
    entry.write_bytes(b"half a file")
    np.testing.assert_array_equal(backbones.cached_features(backbone, x), good)
    assert np.load(entry).shape == good.shape


def test_phi_theta_diagram_is_read_from_the_model(tiny_profile):
    backbone = backbones.random_backbone(tiny_profile, seed=0)
    backbone.trainable = False
    model = backbones.build_classifier(backbone, 5)
    d = backbone.output_shape[-1]
    text = models.phi_theta_mermaid(model)
    lines = text.splitlines()
    assert lines[0] == "graph LR" and lines[-1].strip() == "X --> P --> F --> T --> Y"
    assert "16×16×3" in text and f"{d} features" in text and f"{d}×5 weights + 5 biases" in text
    assert f"{backbone.count_params():,} parameters, frozen" in text
    backbone.trainable = True
    assert "parameters, trainable" in models.phi_theta_mermaid(model)
    block = models.phi_theta_diagram(model).data
    assert block.startswith("```mermaid\ngraph LR\n") and block.endswith("\n```")
    with pytest.raises(ValueError, match="no layer 'base'"):
        models.phi_theta_mermaid(model, backbone="base")
