"""The digits tasks (tlbook.data.digits): the scans, their drawing, the source and target tasks;
and the package tlbook.data itself, which re-exports every public name of its submodules."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tlbook import data
from tlbook.config import get_profile


def test_every_name_of_the_package_imports_and_the_package_does_not_import_tensorflow():
    """``from tlbook import data`` gives every name of ``data.__all__``; and importing it imports neither
    TensorFlow nor Keras (its functions import them when called). ``import tlbook`` imports TensorFlow on
    purpose, so the check blocks TensorFlow and Keras in a fresh process: any import of them by
    tlbook.data would then fail."""
    assert len(set(data.__all__)) == len(data.__all__)
    namespace = {}
    exec("from tlbook.data import *", namespace)
    assert [name for name in data.__all__ if name not in namespace] == []
    script = (
        "import sys, warnings\n"
        "sys.modules.update(tensorflow=None, keras=None)  # an import of either now raises ImportError\n"
        "warnings.simplefilter('ignore')  # tlbook warns that it runs without TensorFlow\n"
        "import tlbook.data\n"
        "assert all(hasattr(tlbook.data, name) for name in tlbook.data.__all__)\n"
        "assert sys.modules['tensorflow'] is None and sys.modules['keras'] is None\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_load_digits_gray():
    scans, digits = data.load_digits_gray()
    assert scans.shape == (1797, 8, 8) and scans.dtype == np.uint8
    assert scans.max() == 255 and scans.min() == 0
    assert set(digits) == set(range(10))


def test_place_digits_shape_determinism_and_bounds():
    scans, _ = data.load_digits_gray()
    a = data.place_digits(scans[:50], image_size=20, digit_size=(6, 10), seed=3)
    b = data.place_digits(scans[:50], image_size=20, digit_size=(6, 10), seed=3)
    c = data.place_digits(scans[:50], image_size=20, digit_size=(6, 10), seed=4)
    assert a.shape == (50, 20, 20, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a[..., 0], a[..., 2])  # gray copied to every channel
    for img in a[..., 0]:
        rows, cols = np.flatnonzero(img.any(1)), np.flatnonzero(img.any(0))
        assert np.ptp(rows) < 10 and np.ptp(cols) < 10  # the digit is at most 10 pixels wide


def test_place_digits_full_frame_matches_plain_resize():
    scans, _ = data.load_digits_gray()
    out = data.place_digits(scans[:1], image_size=16, digit_size=(16, 16))
    expected = np.asarray(Image.fromarray(scans[0]).resize((16, 16), Image.Resampling.BILINEAR))
    assert np.array_equal(out[0, ..., 0], expected)


@pytest.mark.parametrize("size, digit", [(4, (2, 3)), (16, (0, 4)), (16, (8, 17)), (16, (9, 8))])
def test_place_digits_rejects_bad_sizes(size, digit):
    scans, _ = data.load_digits_gray()
    with pytest.raises(ValueError, match="image_size|digit_size"):
        data.place_digits(scans[:1], image_size=size, digit_size=digit)


def test_make_task_labels_split_and_names():
    task = data.make_task([7, 3], image_size=16, test_fraction=0.25, seed=0)
    _, digits = data.load_digits_gray()
    n7, n3 = (digits == 7).sum(), (digits == 3).sum()
    assert task.class_names == ("7", "3")
    assert len(task.train) + len(task.test) == n7 + n3
    assert task.train.counts()[0] + task.test.counts()[0] == n7  # label 0 is digit 7
    assert abs(len(task.test) - 0.25 * (n7 + n3)) <= 2
    assert task.train.x.shape[1:] == (16, 16, 3)


def test_make_task_rotations_and_copies():
    task = data.make_task([0, 1], image_size=16, rotations=4, train_copies=2, seed=0)
    assert task.num_classes == 8
    assert task.class_names[:4] == ("0@0", "0@90", "0@180", "0@270")
    plain = data.make_task([0, 1], image_size=16, seed=0)
    assert len(task.train) == 4 * 2 * len(plain.train)
    assert len(task.test) == 4 * len(plain.test)
    assert np.array_equal(task.train.counts(), np.repeat(plain.train.counts() * 2, 4))


def test_make_task_is_reproducible():
    a, b = data.make_task([1, 2], image_size=12, seed=5), data.make_task([1, 2], image_size=12, seed=5)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.test.y, b.test.y)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(classes=[3]), "at least two"),
        (dict(classes=[3, 3]), "distinct"),
        (dict(classes=[3, 12]), "12"),
        (dict(classes=[1, 2], test_fraction=1.0), "test_fraction"),
        (dict(classes=[1, 2], rotations=3), "rotations"),
        (dict(classes=[1, 2], train_copies=0), "train_copies"),
    ],
)
def test_make_task_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.make_task(**kwargs)


def test_source_and_target_tasks_are_disjoint():
    profile = dataclasses.replace(get_profile("quick"), image_size=12, digit_size=(6, 10))
    source, target = data.source_task(profile), data.target_task(profile)
    source_digits = {name.split("@")[0] for name in source.class_names}
    assert source_digits == {"0", "1", "2", "3", "4"}
    assert set(target.class_names) == {"5", "6", "7", "8", "9"}
    assert source.num_classes == 5 * profile.source_rotations


def test_digits_tasks_refuse_a_profile_with_other_data():
    other = dataclasses.replace(get_profile("quick"), name="other", dataset="photos")
    for build in (data.target_task, data.source_task, data.profile_image_folder):
        with pytest.raises(ValueError, match="'other' uses the dataset 'photos'.*quick profile"):
            build(other)


def test_place_digits_distractors_are_dimmer_and_seeded():
    scans, _ = data.load_digits_gray()
    plain = data.place_digits(scans[:20], image_size=24, digit_size=(8, 12), seed=1)
    busy = data.place_digits(
        scans[:20], image_size=24, digit_size=(8, 12), seed=1, distractors=2, distractor_intensity=0.5
    )
    again = data.place_digits(
        scans[:20], image_size=24, digit_size=(8, 12), seed=1, distractors=2, distractor_intensity=0.5
    )
    assert np.array_equal(busy, again)
    assert np.all(busy >= plain)  # the digit is drawn on top: distractors only add dim pixels
    added = busy[..., 0].astype(int) - plain[..., 0]
    assert added.max() <= 128 and (added > 0).sum() > 0  # dimmed to half of 255 at most
    assert (busy[..., 0] > 0).sum() > (plain[..., 0] > 0).sum()
    with pytest.raises(ValueError, match="distractors"):
        data.place_digits(scans[:2], distractors=-1)
    with pytest.raises(ValueError, match="distractor_intensity"):
        data.place_digits(scans[:2], distractors=1, distractor_intensity=1.5)


def test_invert_task_makes_negatives():
    task = data.make_task([5, 6], image_size=10, seed=0)
    inverted = data.invert_task(task)
    assert np.array_equal(inverted.train.x.astype(int), 255 - task.train.x.astype(int))
    assert np.array_equal(inverted.test.y, task.test.y) and inverted.name == "task (inverted)"
    assert inverted.train.x.dtype == np.uint8


def test_require_digits_refuses_a_profile_without_the_digits():
    quick = get_profile("quick")
    data.require_digits(quick)  # the quick profile uses them: no error
    photos = dataclasses.replace(quick, name="photos-only", dataset="photos")
    with pytest.raises(ValueError, match="profile 'photos-only' uses the dataset 'photos', not the digits"):
        data.require_digits(photos)
