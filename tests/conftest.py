"""Shared fixtures: small profiles and an isolated cache, so unit tests run in seconds."""

import dataclasses
import os

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


def _slow_seconds(item) -> float:
    mark = item.get_closest_marker("slow")
    return float(mark.kwargs.get("seconds", 0)) if mark else 0.0


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected: xdist splits what is left
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, start every worker on one of the longest tests.

    The longest tests (``@pytest.mark.slow(seconds=...)``, their duration on 2 cores) compute the
    studies the notebooks of chapters 6 and 7 then read; started last, they would leave one worker
    busy for minutes after the other ran out of tests. xdist's ``worksteal`` scheduler gives each
    worker a contiguous slice of the collection first (worker i: what is left // workers left),
    so the tests are dealt, longest first, into slices of those sizes; the rest keep their order.
    Every worker computes the same order, as xdist requires. Only speed depends on this.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2 or len(items) < workers:
        return
    sizes, left = [], len(items)
    for i in range(workers):
        sizes.append(left // (workers - i))
        left -= sizes[-1]
    slices = [[] for _ in sizes]
    turn = 0
    for item in sorted(items, key=_slow_seconds, reverse=True):  # stable: ties keep their order
        while len(slices[turn]) == sizes[turn]:
            turn = (turn + 1) % workers
        slices[turn].append(item)
        turn = (turn + 1) % workers
    items[:] = [item for part in slices for item in part]
