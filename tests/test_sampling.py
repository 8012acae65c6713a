"""Few-shot sampling (tlbook.data.sampling): n labelled images per class, the rest, and a held-out share."""

import numpy as np
import pytest

from tlbook import data


def test_sample_indices_per_class_counts_and_seeds():
    labels = np.repeat(np.arange(3), [5, 7, 9])
    idx = data.sample_indices_per_class(labels, 4, seed=1)
    assert np.array_equal(np.bincount(labels[idx]), [4, 4, 4])
    assert len(set(idx)) == 12
    assert np.array_equal(idx, data.sample_indices_per_class(labels, 4, seed=1))
    assert not np.array_equal(idx, data.sample_indices_per_class(labels, 4, seed=2))


def test_sample_indices_too_many_labels_names_the_class():
    labels = np.repeat(np.arange(3), [5, 3, 9])
    with pytest.raises(ValueError, match=r"asked for 4 .*class 1 has only 3.*<= 3"):
        data.sample_indices_per_class(labels, 4)


def test_an_empty_class_is_named_not_silently_dropped():
    """The docstring promises K x n indices; a class with no example cannot give its n."""
    labels = np.repeat([0, 2], [5, 5])  # class 1 is empty
    with pytest.raises(ValueError, match=r"class 1 has only 0 examples.*drop the empty class"):
        data.sample_indices_per_class(labels, 2)
    with pytest.raises(ValueError, match=r"class 'cat' has only 0 examples"):
        data.sample_indices_per_class(np.zeros(6, dtype=int), 2, class_names=["dog", "cat"])
    with pytest.raises(ValueError, match=r"labels must lie in 0..1"):
        data.sample_indices_per_class(np.array([0, 1, 2]), 1, class_names=["dog", "cat"])


def test_the_draw_is_the_one_every_chapter_made():
    """The same indices as before empty classes were checked: the chapters' numbers depend on them."""
    labels = np.repeat(np.arange(3), [5, 7, 9])
    rng = np.random.default_rng(1)
    expected = np.concatenate([rng.choice(np.flatnonzero(labels == k), size=4, replace=False) for k in range(3)])
    assert np.array_equal(data.sample_indices_per_class(labels, 4, seed=1), expected)


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_sample_indices_rejects_bad_budgets(bad):
    with pytest.raises(ValueError, match="positive integer"):
        data.sample_indices_per_class(np.array([0, 1, 0, 1]), bad)


def test_sample_per_class_uses_class_names():
    task = data.make_task([5, 6], image_size=10, seed=0)
    few = data.sample_per_class(task.train, 3, seed=0)
    assert len(few) == 6 and np.array_equal(few.counts(), [3, 3])
    with pytest.raises(ValueError, match=r"class '[56]' has only"):
        data.sample_per_class(task.train, 10_000)


def test_split_labelled_partitions_the_split():
    task = data.make_task([5, 6], image_size=10, seed=0)
    labelled, rest = data.split_labelled(task.train, 4, seed=1)
    assert np.array_equal(labelled.counts(), [4, 4])
    assert len(labelled) + len(rest) == len(task.train)
    assert np.array_equal(labelled.x, data.sample_per_class(task.train, 4, seed=1).x)
    together = sorted(map(bytes, np.concatenate([labelled.x, rest.x])))
    assert together == sorted(map(bytes, task.train.x))


def test_hold_out_is_stratified_disjoint_and_seeded():
    y = np.repeat(np.arange(3), [40, 20, 8])
    split = data.Split(np.arange(len(y))[:, None], y, ("a", "b", "c"))
    kept, held = data.hold_out(split, 0.25, seed=0)
    assert held.counts().tolist() == [10, 5, 2] and kept.counts().tolist() == [30, 15, 6]
    assert sorted(np.concatenate([kept.x[:, 0], held.x[:, 0]]).tolist()) == list(range(len(y)))
    assert np.all(np.diff(held.x[:, 0]) > 0)  # in the original order
    assert np.array_equal(data.hold_out(split, 0.25, seed=0)[1].x, held.x)
    assert not np.array_equal(data.hold_out(split, 0.25, seed=1)[1].x, held.x)
    with pytest.raises(ValueError, match="between 0 and 1"):
        data.hold_out(split, 1.0)
    lonely = data.Split(np.zeros((3, 1)), np.array([0, 0, 1]), ("a", "b"))
    with pytest.raises(ValueError, match="class 'b' has 1 image"):
        data.hold_out(lonely, 0.5)
