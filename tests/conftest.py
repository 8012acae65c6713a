"""Shared fixtures: small profiles and an isolated cache, so unit tests run in seconds."""

import dataclasses

import matplotlib
import pytest

import tlbook  # imports TensorFlow quietly once for the whole session
from tlbook.config import get_profile

# Pin TensorFlow's thread pool before any test runs an operation, as every notebook does in its
# first cell: the studies the unit tests compute and cache are then the ones a notebook computes.
tlbook.seed_everything(0)

matplotlib.use("Agg")  # tests draw figures without a screen


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A fresh, empty TLBOOK_CACHE for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("TLBOOK_CACHE", str(path))
    return path


@pytest.fixture
def tiny_profile():
    """The quick profile shrunk to 16x16 images and one source epoch (trains in about a second)."""
    return dataclasses.replace(
        get_profile("quick"), image_size=16, digit_size=(8, 12), source_epochs=1, source_rotations=1, source_copies=1
    )
