import random
import tempfile

import numpy as np
import pytest

from tlbook import config


def test_default_profile_is_quick(monkeypatch):
    monkeypatch.delenv("TLBOOK_PROFILE", raising=False)
    profile = config.get_profile()
    assert profile.name == "quick"
    assert profile.input_shape == (32, 32, 3)
    assert set(profile.source_classes).isdisjoint(profile.target_classes)


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("TLBOOK_PROFILE", " Full ")
    profile = config.get_profile()
    assert profile.name == "full"
    assert profile.image_size == 224 and profile.backbone == "resnet50" and profile.backbone_weights == "imagenet"


def test_unknown_profile_in_environment_names_value_and_variable(monkeypatch):
    monkeypatch.setenv("TLBOOK_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"'fast'.*TLBOOK_PROFILE.*full, quick"):
        config.get_profile()


def test_unknown_profile_argument():
    with pytest.raises(ValueError, match="'huge'"):
        config.get_profile("huge")


def test_cache_dir_from_environment_is_created(tmp_path, monkeypatch):
    target = tmp_path / "a" / "b"
    monkeypatch.setenv("TLBOOK_CACHE", str(target))
    assert config.cache_dir() == target
    assert target.is_dir()
    assert list(target.iterdir()) == []  # the writability probe leaves nothing behind


def test_cache_dir_default_is_user_cache(monkeypatch):
    monkeypatch.delenv("TLBOOK_CACHE", raising=False)
    path = config.cache_dir(create=False)
    assert path.name == "tlbook"


def test_cache_dir_that_cannot_be_created(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TLBOOK_CACHE", str(blocker / "cache"))
    with pytest.raises(PermissionError, match=r"Cannot create.*a-file.*TLBOOK_CACHE"):
        config.cache_dir()


def test_cache_path_that_is_a_file(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("TLBOOK_CACHE", str(blocker))
    with pytest.raises(PermissionError, match="not a directory"):
        config.cache_dir()


def test_unwritable_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TLBOOK_CACHE", str(tmp_path))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(PermissionError, match=r"not writable.*Permission denied.*TLBOOK_CACHE"):
        config.cache_dir()


def test_seed_everything_repeats_every_generator():
    import tensorflow as tf

    def draw():
        return random.random(), np.random.rand(), float(tf.random.uniform(()))

    config.seed_everything(7)
    first = draw()
    config.seed_everything(7)
    assert draw() == first
    config.seed_everything(8)
    assert draw() != first


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        config.seed_everything(bad)
