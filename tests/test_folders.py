"""Image folders (tlbook.data.folders): trees written atomically and never over a user's folder; and their
validation (chapter 4): every bad tree gets an error that names the path."""

import numpy as np
import pytest
from PIL import Image

from tlbook import data


def _tree(root, classes=("cat", "dog"), n=3, size=10, splits=("train", "test")):
    rng = np.random.default_rng(0)
    for split in splits:
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                    root / split / c / f"{i}.png"
                )
    return root


def test_valid_tree_counts_and_loads_both_splits(tmp_path):
    root = _tree(tmp_path / "t")
    assert data.validate_image_folder(root / "train") == {"cat": 3, "dog": 3}
    train, test = data.load_image_folders(root, image_size=10, batch_size=8, num_classes=2)
    assert train.class_names == test.class_names == ["cat", "dog"]
    assert sum(int(np.asarray(y).shape[0]) for _, y in test) == 6


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"gone/train.*does not exist"):
        data.load_image_folders(tmp_path / "gone")


def test_empty_class_folder_is_named(tmp_path):
    root = _tree(tmp_path / "t")
    (root / "train" / "bird").mkdir()
    (root / "train" / "bird" / ".DS_Store").write_bytes(b"x")  # hidden files do not count as images
    with pytest.raises(data.ImageFolderError, match=r"train/bird.*holds no image"):
        data.load_image_folder(root / "train")


def test_file_that_is_not_an_image_is_named(tmp_path):
    root = _tree(tmp_path / "t")
    (root / "train" / "dog" / "notes.txt").write_text("labels checked by hand")
    with pytest.raises(data.ImageFolderError, match=r"dog/notes.txt.*not an image file.*Move it"):
        data.load_image_folder(root / "train")


def test_text_disguised_as_jpeg_is_named(tmp_path):
    root = _tree(tmp_path / "t")
    (root / "train" / "cat" / "photo.jpg").write_text("<html>404 Not Found</html>")
    with pytest.raises(data.ImageFolderError, match=r"cat/photo.jpg.*is not an image"):
        data.load_image_folder(root / "train")


def test_truncated_image_is_named(tmp_path):
    root = _tree(tmp_path / "t")
    rng = np.random.default_rng(1)
    good = root / "train" / "cat" / "big.jpg"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good, quality=95)
    good.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(data.ImageFolderError, match=r"cat/big.jpg.*corrupt or truncated"):
        data.load_image_folder(root / "train")


def test_format_keras_cannot_decode_is_named(tmp_path):
    root = _tree(tmp_path / "t")
    Image.new("RGB", (8, 8)).save(root / "train" / "cat" / "odd.png", format="TIFF")
    with pytest.raises(data.ImageFolderError, match=r"odd.png.*TIFF.*Convert"):
        data.load_image_folder(root / "train")


def test_train_and_test_with_different_classes(tmp_path):
    root = _tree(tmp_path / "t")
    (root / "test" / "dog").rename(root / "test" / "wolf")
    with pytest.raises(data.ImageFolderError, match=r"t/test.*missing here: dog.*only here: wolf"):
        data.load_image_folders(root, image_size=10)


def test_num_classes_that_does_not_match_the_folders(tmp_path):
    root = _tree(tmp_path / "t")
    with pytest.raises(data.ImageFolderError, match=r"num_classes=10.*2 class folders \(cat, dog\)"):
        data.load_image_folder(root / "train", image_size=10, num_classes=10)


def test_grayscale_palette_and_rgba_are_converted_to_rgb(tmp_path):
    root = tmp_path / "t"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    Image.new("L", (6, 6), 200).save(root / "a" / "gray.png")
    Image.new("L", (6, 6), 90).save(root / "a" / "gray.jpg")
    Image.new("RGB", (6, 6), (10, 20, 30)).convert("P").save(root / "b" / "palette.gif")
    Image.new("RGBA", (6, 6), (250, 5, 60, 128)).save(root / "b" / "rgba.png")
    modes = sorted(data.check_image_file(p) for p in sorted(root.rglob("*.*")))
    assert modes == ["L", "L", "P", "RGBA"]
    ds = data.load_image_folder(root, image_size=6, batch_size=8)
    images, labels = next(iter(ds))
    images = np.asarray(images)
    assert images.shape == (4, 6, 6, 3)
    by_label = {int(label): [] for label in np.asarray(labels)}
    for img, label in zip(images, np.asarray(labels), strict=True):
        by_label[int(label)].append(tuple(np.round(img[0, 0]).astype(int)))
    grays = np.array(sorted(by_label[0]))
    assert np.abs(grays - [[90] * 3, [200] * 3]).max() <= 2  # gray copied to R, G, B (JPEG may be off by 1-2)
    assert (250, 5, 60) in by_label[1]  # alpha dropped, colour kept


def test_profile_image_folder_is_written_once(tiny_profile, tmp_cache):
    root = data.profile_image_folder(tiny_profile)
    stamp = (root / "train").stat().st_mtime_ns
    assert sorted(p.name for p in (root / "train").iterdir()) == ["5", "6", "7", "8", "9"]
    assert data.profile_image_folder(tiny_profile) == root and (root / "train").stat().st_mtime_ns == stamp
    counts = data.validate_image_folder(root / "test")
    assert sum(counts.values()) == len(data.target_task(tiny_profile).test)


def test_validation_is_held_out_of_the_training_folder(tmp_path):
    root = _tree(tmp_path / "t", n=10)
    train, val, test = data.load_image_folders(root, image_size=10, batch_size=64, validation_fraction=0.2, seed=1)
    n = lambda ds: sum(int(np.asarray(y).shape[0]) for _, y in ds)  # noqa: E731
    assert (n(train), n(val), n(test)) == (16, 4, 20)
    again = data.load_image_folders(root, image_size=10, batch_size=64, validation_fraction=0.2, seed=1)[1]
    np.testing.assert_array_equal(next(iter(val))[0], next(iter(again))[0])  # the same held-out images
    train_imgs = {bytes(np.asarray(x, np.uint8)) for batch, _ in train for x in batch}
    assert not train_imgs & {bytes(np.asarray(x, np.uint8)) for batch, _ in val for x in batch}
    with pytest.raises(ValueError, match="validation_fraction"):
        data.load_image_folders(root, validation_fraction=1.5)


def test_image_size_is_taken_as_keras_takes_it(tmp_path):
    """`image_size=(h, w)`, the form of keras.utils.image_dataset_from_directory and the book's Fix 3 table."""
    small = data.make_task([5, 6], image_size=12, seed=0)
    task = data.Task(
        "small", data.sample_per_class(small.train, 3, seed=0), data.sample_per_class(small.test, 3, seed=0)
    )
    root = data.write_image_folder(task, tmp_path / "digits")
    images, _ = next(iter(data.load_image_folder(root / "train", image_size=(8, 10), batch_size=64)))
    assert images.shape == (6, 8, 10, 3)
    train, test = data.load_image_folders(root, image_size=[9, 7], batch_size=64)
    assert next(iter(test))[0].shape == (6, 9, 7, 3)
    assert data.image_size_pair(32) == (32, 32) and data.image_size_pair((224, 224)) == (224, 224)
    for bad in ((32,), (0, 32), (32.0, 32), "32", True, None):
        with pytest.raises(ValueError, match=r"image_size must be \(height, width\)"):
            data.load_image_folder(root / "train", image_size=bad)
    with pytest.raises(TypeError):
        data.load_image_folder(root / "train", 32)  # keyword-only, as Keras spells it


def test_a_link_loop_ends_the_walk_and_a_link_to_nothing_is_named(tmp_path):
    """Folders are walked as Keras walks them, without following links: a link back to the class
    folder ends the walk (once it recursed until the path was too long), and counts and Keras agree."""
    import os

    root = _tree(tmp_path / "t", classes=("a", "b"), n=2, splits=("train",)) / "train"
    os.symlink(root / "a", root / "a" / "loop")  # a link to the folder it is in
    os.symlink(root, root / "b" / "up")
    assert data.validate_image_folder(root) == {"a": 2, "b": 2}  # links followed, the loops would count more
    assert sum(int(np.asarray(y).shape[0]) for _, y in data.load_image_folder(root, image_size=10)) == 4
    os.symlink(root / "a" / "missing.png", root / "a" / "dangling.png")
    with pytest.raises(data.ImageFolderError, match=r"dangling\.png' is a link to nothing"):
        data.validate_image_folder(root)


def test_an_image_over_pillows_pixel_limit_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    """A decompression bomb (a small file that decodes to a huge image), with the limit lowered so
    the test's images stay small: over the limit (Pillow warns) and over twice it (Pillow raises)."""
    root = tmp_path / "t"
    (root / "a").mkdir(parents=True)
    Image.new("L", (40, 40)).save(root / "a" / "big.png")  # 1,600 pixels: over 1,000, under 2,000
    Image.new("L", (100, 100)).save(root / "a" / "bomb.png")  # 10,000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    for name in ("big.png", "bomb.png"):
        with pytest.raises(data.ImageFolderError, match=rf"{name}' is too large to decode safely"):
            data.check_image_file(root / "a" / name)


@pytest.mark.parametrize(("mode", "what"), [("P", "palette BMP: TensorFlow would read its palette"), ("1", "1-bit")])
def test_bmps_tensorflow_misreads_are_named(tmp_path, mode, what):
    """TensorFlow reads a palette BMP's indices as grey levels (a red image comes out grey) and
    cannot decode a 1-bit BMP at all; Pillow's RGB BMPs are fine."""
    path = tmp_path / "x.bmp"
    Image.new("RGB", (6, 6), (200, 10, 10)).convert(mode).save(path)
    with pytest.raises(data.ImageFolderError, match=rf"x\.bmp' is a {what}"):
        data.check_image_file(path)
    Image.new("RGB", (6, 6), (200, 10, 10)).save(path)
    assert data.check_image_file(path) == "RGB"


def test_appledouble_files_are_named_and_other_hidden_files_ignored(tmp_path):
    """Keras reads every file with an image suffix, hidden or not: macOS's ._cat.png beside a copied
    cat.png would fail mid-epoch. .DS_Store has no image suffix: Keras and the check skip it."""
    root = _tree(tmp_path / "t", classes=("a", "b"), n=1, splits=("train",)) / "train"
    (root / "a" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    assert data.validate_image_folder(root) == {"a": 1, "b": 1}
    (root / "b" / "._0.png").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    with pytest.raises(data.ImageFolderError, match=r"_0\.png' is an AppleDouble file"):
        data.validate_image_folder(root)


def test_a_name_that_is_not_utf8_is_named(tmp_path):
    import os

    folder = tmp_path / "a"
    folder.mkdir()
    name = os.fsencode(folder) + b"/caf\xe9.png"  # Latin-1, as an old camera or Windows copy may write
    with open(name, "wb") as out:
        Image.new("RGB", (4, 4)).save(out, format="PNG")
    with pytest.raises(data.ImageFolderError, match=r"caf\\udce9\.png' has a name that is not UTF-8"):
        data.validate_image_folder(tmp_path)


@pytest.mark.parametrize("bad", ["../outside", "a/b", ".hidden", "", ".."])
def test_write_image_folder_refuses_class_names_that_are_not_one_folder(tmp_path, bad):
    split = data.Split(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 1]), ["fine", bad])
    task = data.Task("t", split, split)
    with pytest.raises(ValueError, match="cannot be a folder name"):
        data.write_image_folder(task, tmp_path / "root" / "tree")
    assert sorted(p.name for p in tmp_path.rglob("*")) == []  # nothing written, inside or outside


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


def test_empty_class_folder_in_a_written_tree_is_named(small_task, tmp_path):
    root = data.write_image_folder(small_task, tmp_path / "digits")
    (root / "train" / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty.*holds no image"):
        data.load_image_folder(root / "train")


def test_write_image_tree_writes_train_and_test_folders_and_the_mark(small_task, tmp_path):
    data.write_image_tree(small_task, tmp_path)
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["5", "6", "7"]
    assert len(list((tmp_path / "test" / "6").glob("*.png"))) == 4
    assert (tmp_path / data.IMAGE_FOLDER_MARK).read_text().startswith("written by tlbook")
    with pytest.raises(FileExistsError):  # it writes into an empty folder only; the callers make it atomic
        data.write_image_tree(small_task, tmp_path)


def test_cached_folder_writes_once_per_setting_and_rewrites_a_damaged_tree(small_task, tmp_cache):
    calls = []

    def make():
        calls.append(1)
        return small_task

    root = data.cached_folder({"task": "small"}, make)
    assert data.cached_folder({"task": "small"}, make) == root and len(calls) == 1
    assert data.load_image_folder(root / "train", image_size=(12, 12)).class_names == ["5", "6", "7"]
    other = data.cached_folder({"task": "small", "n": 2}, make)
    assert other != root and len(calls) == 2
    next((root / "train" / "5").glob("*.png")).unlink()  # damaged: one image gone
    with pytest.warns(RuntimeWarning, match="damaged"):
        assert data.cached_folder({"task": "small"}, make) == root
    assert len(calls) == 3 and len(list((root / "train" / "5").glob("*.png"))) == 4
