"""tlbook.backbones.source: source pretraining and its cache entry."""

import dataclasses
import warnings

import numpy as np
import pytest

from tlbook import backbones, cache, data


def test_cache_key_follows_the_settings(tiny_profile, tmp_cache):
    import dataclasses

    a = backbones.source_cache_path(tiny_profile)
    assert a.parent == tmp_cache / "source"
    assert backbones.source_cache_path(dataclasses.replace(tiny_profile, source_epochs=2)) != a
    assert backbones.source_cache_path(dataclasses.replace(tiny_profile, seed=1)) != a
    assert backbones.source_cache_path(tiny_profile) == a


def test_source_classifier_trains_once_then_loads(tiny_profile, tmp_cache, monkeypatch):
    model, meta = backbones.source_classifier(tiny_profile)
    item = backbones.source_entry(tiny_profile)
    assert sorted(p.name for p in item.path.iterdir()) == ["metrics.json", "model.keras"]
    assert cache.verified(item)["settings"] == item.settings
    entries = sorted(p.name for p in (tmp_cache / "source").iterdir())
    assert entries == sorted([item.path.name, item.sidecar.name])
    assert 0.0 <= meta["source_test_accuracy"] <= 1.0
    assert backbones.cached_source_metrics(tiny_profile)["source_test_accuracy"] == meta["source_test_accuracy"]

    def no_training(profile=None):
        raise AssertionError("the cached model should have been loaded")

    monkeypatch.setattr(backbones.source, "pretrain_source_classifier", no_training)
    loaded, meta2 = backbones.source_classifier(tiny_profile)
    x = data.source_task(tiny_profile).test.x[:8].astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert meta2 == meta
    backbone = backbones.pretrained_backbone(tiny_profile)
    assert backbone.name == "backbone" and backbone.output_shape == (None, 4 * tiny_profile.source_width)


def test_damaged_cache_entry_is_never_loaded(tiny_profile, tmp_cache):
    backbones.source_classifier(tiny_profile)
    item = backbones.source_entry(tiny_profile)
    path = item.path / "model.keras"
    with open(path, "r+b") as fh:  # truncate: a half-copied file
        fh.truncate(path.stat().st_size // 2)
    assert backbones.cached_source_metrics(tiny_profile) is None  # doctor: not ready
    with pytest.warns(RuntimeWarning, match="incomplete, damaged"):
        model, meta = backbones.source_classifier(tiny_profile)
    assert cache.verified(item) is not None
    assert model.get_layer("backbone") is not None


def test_interrupted_save_leaves_no_entry(tiny_profile, tmp_cache, monkeypatch):
    import keras

    def crash(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        backbones.source_classifier(tiny_profile)
    assert list((tmp_cache / "source").iterdir()) == []
    item = backbones.source_entry(tiny_profile)
    assert [p.name for p in (tmp_cache / "locks").iterdir()] == [f"source-{item.key}.lock"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing damaged to warn about: the entry is simply absent
        assert cache.verified(item) is None and backbones.cached_source_metrics(tiny_profile) is None


def test_pretraining_refuses_a_profile_with_another_backbone(tiny_profile):
    with pytest.raises(ValueError, match="resnet50"):
        backbones.pretrain_source_classifier(dataclasses.replace(tiny_profile, name="other", backbone="resnet50"))


def test_source_settings_name_what_changes_the_weights(tiny_profile):
    settings = backbones.source_settings(tiny_profile)
    assert settings["width"] == tiny_profile.source_width and settings["epochs"] == tiny_profile.source_epochs
    assert settings["architecture"] == "small_cnn" and "keras" in settings
    wider = backbones.source_settings(dataclasses.replace(tiny_profile, source_width=tiny_profile.source_width * 2))
    assert wider != settings
