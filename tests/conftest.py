"""Shared fixtures: small profiles and an isolated cache, so unit tests run in seconds."""

import dataclasses
import shutil

import matplotlib
import pytest

import tlbook  # imports TensorFlow quietly once for the whole session
from tlbook.config import get_profile

# Pin TensorFlow's thread pool before any test runs an operation, as every notebook does in its
# first cell: the studies the unit tests compute and cache are then the ones a notebook computes.
tlbook.seed_everything(0)

matplotlib.use("Agg")  # tests draw figures without a screen


@pytest.fixture(autouse=True)
def _no_workers_left():
    """Worker processes a study keeps (tlbook.studies.pool) end with the test that started them:
    the next test's environment and cache are its own."""
    yield
    from tlbook.studies import pool

    pool.stop_workers()


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A fresh, empty TLBOOK_CACHE for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("TLBOOK_CACHE", str(path))
    return path


def _tiny_profile():
    return dataclasses.replace(
        get_profile("quick"), image_size=16, digit_size=(8, 12), source_epochs=1, source_rotations=1, source_copies=1
    )


@pytest.fixture
def tiny_profile():
    """The quick profile shrunk to 16x16 images and one source epoch (trains in about a second)."""
    return _tiny_profile()


@pytest.fixture(scope="session")
def _tiny_source_entry(tmp_path_factory):
    """The tiny profile's source-pretrained classifier, trained once per test process (each xdist
    worker) in a cache of its own: its cache entry (a folder) and the entry's side-car."""
    from tlbook import backbones

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TLBOOK_CACHE", str(tmp_path_factory.mktemp("tiny-source-cache")))
        backbones.source_classifier(_tiny_profile())  # seeded: the same bits as trained in any test
        item = backbones.source_entry(_tiny_profile())
    return [item.path, item.sidecar]


@pytest.fixture
def tiny_source_cache(tmp_cache, _tiny_source_entry):
    """``tmp_cache`` holding only the tiny profile's source-pretrained classifier, for tests of what is
    built on the backbone (each would otherwise spend ~6 s of CPU pretraining it again). Tests of the
    source cache itself (tests/test_source.py) keep the empty ``tmp_cache``."""
    folder = tmp_cache / _tiny_source_entry[0].parent.name
    folder.mkdir(parents=True)
    shutil.copytree(_tiny_source_entry[0], folder / _tiny_source_entry[0].name)
    shutil.copy2(_tiny_source_entry[1], folder / _tiny_source_entry[1].name)
    return tmp_cache


@pytest.fixture(scope="session")
def _lite0_converted(tmp_path_factory):
    """EfficientNet-Lite0's ImageNet weights converted once per test process, in a cache of their own."""
    from tlbook import backbones

    path = tmp_path_factory.mktemp("lite0-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TLBOOK_CACHE", str(path))
        backbones.efficientnet_lite0()
    return path


@pytest.fixture
def lite0_cache(monkeypatch, _lite0_converted):
    """A TLBOOK_CACHE that holds EfficientNet-Lite0's converted weights (and nothing a test wrote)."""
    monkeypatch.setenv("TLBOOK_CACHE", str(_lite0_converted))
    return _lite0_converted


@pytest.fixture(scope="session")
def sample_photos():
    """scikit-learn's two sample photos (a palace, a daisy), RGB uint8 arrays of 427x640."""
    from sklearn.datasets import load_sample_image

    return [load_sample_image("china.jpg"), load_sample_image("flower.jpg")]
