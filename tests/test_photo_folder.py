"""A learner's own photo folder (tlbook.data.photo_folder, Chapter 9): every bad file named in one
report, junk skipped, and the photos read upright, opaque, RGB and with the right labels."""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlbook import data

COLOURS = {"blue": (0, 0, 255), "green": (0, 255, 0), "grey": (200, 200, 200), "red": (255, 0, 0)}
GREY = data.BACKGROUND


def _jpeg(path, colour, size=(40, 30), **save):
    Image.new("RGB", size, colour).save(path, "JPEG", quality=95, **save)


def _turned_photo(path):
    """A photo whose upright view is red above black (40 wide, 60 high), stored lying on its side
    with the EXIF orientation tag 6 ("turn 90° clockwise to show"), as a phone held upright writes it."""
    upright = np.zeros((60, 40, 3), np.uint8)
    upright[:30] = COLOURS["red"]
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # what exif_transpose undoes
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, "JPEG", quality=95, exif=exif)


def _transparent_png(path):
    """Left half opaque blue, right half transparent over junk colour (red), as cut-outs are."""
    rgba = np.zeros((30, 30, 4), np.uint8)
    rgba[:, :15] = (*COLOURS["blue"], 255)
    rgba[:, 15:] = (255, 0, 0, 0)
    Image.fromarray(rgba, "RGBA").save(path)


def learner_folder(root):
    """Every kind of file a learner's folder holds: JPEGs of several sizes and orientations, a
    grayscale and a CMYK JPEG, a PNG with transparency, an EXIF-turned photo, a non-ASCII name,
    system junk, and files that cannot be used. Returns the bad files' paths (relative)."""
    for split, n in (("train", 4), ("test", 2)):
        for name, colour in COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                size = (40, 30) if i % 2 else (24, 48)  # landscape and portrait
                if name == "grey":
                    Image.new("L", size, colour[0]).save(folder / f"{i}.jpg", "JPEG", quality=95)
                else:
                    _jpeg(folder / f"{i}.jpg", colour, size)
    Image.new("CMYK", (32, 32), (255, 0, 255, 0)).save(root / "train/green/cmyk.jpg", "JPEG", quality=95)
    _jpeg(root / "train/green/grün é.jpg", COLOURS["green"])
    _transparent_png(root / "train/blue/cut-out.png")
    _turned_photo(root / "train/red/turned.jpg")
    (root / "train/.DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "train/red/Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (root / "train/red/._turned.jpg").write_bytes(b"\0\5\26\7" + b"\0" * 60)
    (root / "train/green/.ipynb_checkpoints").mkdir()
    _jpeg(root / "train/green/.ipynb_checkpoints/0-checkpoint.jpg", COLOURS["red"])
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), COLOURS["blue"]).save(buffer, "JPEG")
    (root / "train/blue/truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (root / "train/grey/notes.txt").write_text("taken on the beach")
    (root / "train/red/photo.jpg").write_text("<html>404 Not Found</html>")
    (root / "test/green/empty.png").write_bytes(b"")
    os.symlink(root / "nowhere.jpg", root / "train/red/gone.jpg")
    os.symlink(root / "train/red", root / "train/red/loop")  # a link back up: not followed
    return {
        "train/blue/truncated.jpg",
        "train/grey/notes.txt",
        "train/red/photo.jpg",
        "test/green/empty.png",
        "train/red/gone.jpg",
    }


def test_the_report_names_every_bad_file_at_once_and_skips_the_junk(tmp_path):
    bad = learner_folder(tmp_path)
    report = data.check_photo_folder(tmp_path)
    assert {note.path for note in report.bad} == bad
    assert not report.ok and not report.errors
    text = str(report)
    for path in bad:
        assert path in text.replace("\n    ", " ")  # a long line wraps, but names every file
    assert max(map(len, text.splitlines())) <= data.REPORT_WIDTH
    reasons = {note.path: note.reason for note in report.bad}
    assert "truncated" in reasons["train/blue/truncated.jpg"]
    assert "not an image" in reasons["train/grey/notes.txt"]
    assert "link to nothing" in reasons["train/red/gone.jpg"]
    skipped = {note.path for note in report.skipped}
    assert {"train/.DS_Store", "train/red/Thumbs.db", "train/red/._turned.jpg"} <= skipped
    assert "train/green/.ipynb_checkpoints" in skipped
    assert report.class_names == ("blue", "green", "grey", "red")
    assert report.counts["train"] == {"blue": 5, "green": 6, "grey": 4, "red": 5}
    assert report.counts["test"] == {"blue": 2, "green": 2, "grey": 2, "red": 2}
    assert report.formats == {"JPEG": 27, "PNG": 1}
    done = "\n".join(report.conversions)
    for what in ("EXIF orientation", "transparent pixels", "grayscale", "CMYK", "crop the centre", "resize"):
        assert what in done
    assert report.conversions["convert grayscale to RGB"] == 6
    assert any("'grey' has 4 training photos, fewer than 10" in w for w in report.warnings)


def test_loading_refuses_bad_files_by_naming_all_of_them(tmp_path):
    bad = learner_folder(tmp_path)
    with pytest.raises(data.ImageFolderError, match="cannot be read as it is") as caught:
        data.load_photo_folder(tmp_path, image_size=(32, 32))
    for path in bad:
        assert path in str(caught.value)


def test_the_documented_path_reads_labels_orientation_and_background_right(tmp_path):
    bad = learner_folder(tmp_path)
    report = data.check_photo_folder(tmp_path)
    for note in report.bad:  # what the chapter tells the learner to do with the report
        (tmp_path / note.path).unlink()
    assert data.check_photo_folder(tmp_path).ok
    photos = data.load_photo_folder(tmp_path, image_size=(32, 32), validation_split=None)
    assert photos.class_names == ("blue", "green", "grey", "red") and photos.validation is None
    assert photos.train.x.shape == (20, 32, 32, 3) and photos.train.x.dtype == np.uint8
    for split in (photos.train, photos.test):
        for image, label in zip(split.x, split.y, strict=True):
            corner = image[:8, :8].reshape(-1, 3).mean(axis=0)  # every photo's top left: its class colour
            assert np.abs(corner - COLOURS[photos.class_names[label]]).max() < 12, (label, corner)
    turned = photos.train.x[photos.train.y == 3][-1]  # red's files sorted: 0..3.jpg, turned.jpg
    assert np.abs(turned[:12].reshape(-1, 3).mean(0) - COLOURS["red"]).max() < 12  # red on top
    assert turned[-12:].mean() < 12  # black below: upright, not lying on its side
    cut_out = photos.train.x[photos.train.y == 0][-1]  # blue's files sorted: 0..3.jpg, cut-out.png
    assert np.abs(cut_out[:, -8:].reshape(-1, 3).mean(0) - GREY).max() <= 1  # grey where transparent
    assert bad  # the folder had bad files to begin with


def test_skip_bad_leaves_the_bad_files_out_and_keeps_the_report(tmp_path):
    bad = learner_folder(tmp_path)
    photos = data.load_photo_folder(tmp_path, image_size=16, skip_bad=True, validation_split=0.5, seed=3)
    assert {note.path for note in photos.report.bad} == bad
    assert len(photos.train) + len(photos.validation) == 20 and len(photos.test) == 8


def test_the_validation_share_is_stratified_and_repeatable(tmp_path):
    for name, n in (("a", 12), ("b", 4)):
        (tmp_path / "train" / name).mkdir(parents=True)
        (tmp_path / "test" / name).mkdir(parents=True)
        for i in range(n):
            _jpeg(tmp_path / "train" / name / f"{i}.jpg", (i * 20, 0, 0))
        _jpeg(tmp_path / "test" / name / "0.jpg", (0, 0, 0))
    first = data.load_photo_folder(tmp_path, image_size=8, validation_split=0.25, seed=1)
    assert first.validation.counts().tolist() == [3, 1]
    assert first.train.counts().tolist() == [9, 3]
    again = data.load_photo_folder(tmp_path, image_size=8, validation_split=0.25, seed=1)
    assert np.array_equal(first.validation.x, again.validation.x)
    assert any("unbalanced classes: 'a' has 12 training photos, 'b' 4" in w for w in first.report.warnings)


def test_a_test_folder_with_other_classes_is_an_error_naming_them(tmp_path):
    learner_folder(tmp_path)
    (tmp_path / "test/grey").rename(tmp_path / "test/gray")
    report = data.check_photo_folder(tmp_path)
    assert any("missing from test/: grey" in e and "only in test/: gray" in e for e in report.errors)
    with pytest.raises(data.ImageFolderError, match="missing from test/: grey"):
        data.load_photo_folder(tmp_path, skip_bad=True)


def test_folder_errors_missing_splits_and_empty_classes(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*not a directory"):
        data.check_photo_folder(tmp_path / "nowhere")
    (tmp_path / "train" / "cats").mkdir(parents=True)
    (tmp_path / "train" / "cats" / "Thumbs.db").write_bytes(b"x")
    (tmp_path / "train" / "readme.md").write_text("my photos")
    report = data.check_photo_folder(tmp_path)
    assert any("no test/ folder" in e for e in report.errors)
    assert any("'cats' has no usable photo in train/" in e for e in report.errors)
    assert any(n.path == "train/readme.md" and "not in a class folder" in n.reason for n in report.skipped)


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    learner_folder(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # the 40×30 photos are now "too large"
    report = data.check_photo_folder(tmp_path)
    reasons = {note.path: note.reason for note in report.bad}
    assert "too large to decode safely" in reasons["train/red/1.jpg"]


def test_photos_dir_takes_the_argument_then_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(data.PHOTOS_DIR_ENV, str(tmp_path))
    assert data.photos_dir() == tmp_path
    assert data.photos_dir(tmp_path / "..") == tmp_path / ".."
    monkeypatch.setenv(data.PHOTOS_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="missing.*TLBOOK_PHOTOS_DIR.*train/<class>/"):
        data.photos_dir()


def test_photos_dir_defaults_to_the_books_photos(tmp_path, monkeypatch):
    monkeypatch.delenv(data.PHOTOS_DIR_ENV, raising=False)
    calls = []
    monkeypatch.setattr(data.photos, "photos_folder", lambda: calls.append(1) or tmp_path)
    assert data.photos_dir() == tmp_path and calls == [1]


@pytest.mark.slow
def test_chapter_9_runs_on_a_learners_folder_named_by_the_variable(tmp_path, monkeypatch):
    """The chapter's documented path, whole: the check names every bad file, the learner removes
    them, and with TLBOOK_PHOTOS_DIR set every cell runs on the learner's photos."""
    import nbformat
    from nbclient import NotebookClient

    folder = tmp_path / "my photos"
    bad = learner_folder(folder)
    assert {note.path for note in data.check_photo_folder(folder).bad} == bad
    for path in bad:
        (folder / path).unlink()
    chapter = nbformat.read(Path(__file__).parents[1] / "book" / "ch09_your_own_photos.ipynb", as_version=4)
    monkeypatch.setenv(data.PHOTOS_DIR_ENV, str(folder))  # the kernel inherits it
    NotebookClient(chapter, timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = ["".join(o.get("text", "")) for cell in chapter.cells if cell.cell_type == "code" for o in cell.outputs]
    assert any("4 classes: blue, green, grey, red" in text and "bad files: none" in text for text in printed)
    assert any("photos: {'train': 15, 'validation': 5, 'test': 8}" in text for text in printed)
    new_photo = next(text for text in printed if "probability" in text and "0..1" not in text)
    assert sorted(line.split(":")[0].strip() for line in new_photo.splitlines()) == sorted(COLOURS)


def test_photos_credit_follows_the_folder_photos_dir_picks(tmp_path, monkeypatch):
    monkeypatch.delenv(data.PHOTOS_DIR_ENV, raising=False)
    assert data.photos_credit() == data.PHOTOS_CREDIT and "GPL-2" in data.PHOTOS_CREDIT
    assert data.photos_credit(tmp_path) is None  # a reader's own folder
    monkeypatch.setenv(data.PHOTOS_DIR_ENV, str(tmp_path))
    assert data.photos_credit() is None
