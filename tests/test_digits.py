import dataclasses

import numpy as np
import pytest
from PIL import Image

from tlbook import data
from tlbook.config import get_profile


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


@pytest.fixture
def small_task():
    task = data.make_task([5, 6, 7], image_size=12, seed=0)
    pick = lambda s: data.sample_per_class(s, 4, seed=0)  # noqa: E731
    return data.Task("small", pick(task.train), pick(task.test))


def test_write_and_load_image_folder_round_trip(small_task, tmp_path):
    root = data.write_image_folder(small_task, tmp_path / "digits")
    assert sorted(p.name for p in (root / "train").iterdir()) == ["5", "6", "7"]
    assert len(list((root / "test" / "6").glob("*.png"))) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["digits"]  # no temporary folder left
    ds = data.load_image_folder(root / "train", image_size=12, batch_size=64)
    assert ds.class_names == ["5", "6", "7"]
    images, labels = next(iter(ds))
    assert images.shape == (12, 12, 12, 3)
    got = sorted(map(bytes, np.asarray(images, dtype=np.uint8)))
    assert got == sorted(map(bytes, small_task.train.x))  # PNG is lossless
    assert np.array_equal(np.bincount(np.asarray(labels)), [4, 4, 4])


def test_write_image_folder_refuses_existing_root(small_task, tmp_path):
    (tmp_path / "digits").mkdir()
    with pytest.raises(FileExistsError, match="digits"):
        data.write_image_folder(small_task, tmp_path / "digits")
    data.write_image_folder(small_task, tmp_path / "digits", overwrite=True)
    assert (tmp_path / "digits" / "train" / "5").is_dir()


def test_overwrite_replaces_only_a_tree_tlbook_wrote_and_never_a_users_folder(small_task, tmp_path):
    mine = tmp_path / "my photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"irreplaceable")
    with pytest.raises(FileExistsError, match=r"my photos.*was not written by tlbook.*will not delete it"):
        data.write_image_folder(small_task, mine, overwrite=True)
    assert (mine / "holiday.jpg").read_bytes() == b"irreplaceable" and sorted(p.name for p in mine.iterdir()) == [
        "holiday.jpg"
    ]

    root = data.write_image_folder(small_task, tmp_path / "digits")
    assert (root / data.IMAGE_FOLDER_MARK).is_file()
    (root / "train" / "5" / "stale.png").write_bytes(b"old")
    data.write_image_folder(small_task, root, overwrite=True)  # its own tree: replaced whole
    assert not (root / "train" / "5" / "stale.png").exists() and len(list((root / "train" / "5").glob("*.png"))) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits", "my photos"]  # nothing left aside


def test_a_failed_overwrite_keeps_the_old_tree(small_task, tmp_path, monkeypatch):
    root = data.write_image_folder(small_task, tmp_path / "digits")
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    monkeypatch.setattr(Image.Image, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        data.write_image_folder(small_task, root, overwrite=True)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["digits"]


@pytest.mark.slow
def test_two_processes_writing_the_same_tree_take_turns(small_task, tmp_path):
    import subprocess
    import sys

    # Writing image folders needs neither TensorFlow nor Keras: blocked, tlbook imports without
    # them (with a warning), so each process starts in a second instead of importing TensorFlow.
    # Both wait for each other before their first write, so their 20 writes overlap however
    # unevenly the two started.
    script = (
        "import os, sys, time\n"
        "sys.modules.update(tensorflow=None, keras=None)\n"
        "import tlbook.data as d\n"
        "t = d.make_task([5, 6, 7], image_size=12, seed=0)\n"
        "t = d.Task('small', d.sample_per_class(t.train, 4, seed=0), d.sample_per_class(t.test, 4, seed=0))\n"
        "open(os.path.join(sys.argv[2], str(os.getpid())), 'w').close()\n"
        "deadline = time.monotonic() + 120  # the other process may have failed to start\n"
        "while len(os.listdir(sys.argv[2])) < 2 and time.monotonic() < deadline: time.sleep(0.01)\n"
        "for _ in range(20): d.write_image_folder(t, sys.argv[1], overwrite=True)\n"
    )
    ready = tmp_path.parent / f"{tmp_path.name}-ready"  # outside tmp_path, whose listing is checked
    ready.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "digits"), str(ready)], stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits"]
    assert sorted(p.name for p in (tmp_path / "digits" / "train").iterdir()) == ["5", "6", "7"]


def test_interrupted_write_leaves_nothing(small_task, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = Image.Image.save

    def failing_save(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        data.write_image_folder(small_task, tmp_path / "digits")
    assert list(tmp_path.iterdir()) == []


def test_missing_image_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere.*does not exist"):
        data.load_image_folder(tmp_path / "nowhere")


def test_image_folder_without_classes(tmp_path):
    with pytest.raises(ValueError, match="no class sub-folders"):
        data.class_folders(tmp_path)


def test_empty_class_folder_is_named(small_task, tmp_path):
    root = data.write_image_folder(small_task, tmp_path / "digits")
    (root / "train" / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty.*holds no image"):
        data.load_image_folder(root / "train")


def test_split_labelled_partitions_the_split():
    task = data.make_task([5, 6], image_size=10, seed=0)
    labelled, rest = data.split_labelled(task.train, 4, seed=1)
    assert np.array_equal(labelled.counts(), [4, 4])
    assert len(labelled) + len(rest) == len(task.train)
    assert np.array_equal(labelled.x, data.sample_per_class(task.train, 4, seed=1).x)
    together = sorted(map(bytes, np.concatenate([labelled.x, rest.x])))
    assert together == sorted(map(bytes, task.train.x))


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
