"""One photo as a model takes it (tlbook.data.photo, Chapter 9): a file, a Pillow image and an array
prepared alike, upright, opaque and RGB, the centre cropped, and every unusable file refused with
its reason."""

import io

import numpy as np
import pytest
from PIL import Image

from tlbook import data


def test_read_photo_prepares_a_path_and_an_array_alike(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "new.png")
    from_file = data.read_photo(tmp_path / "new.png", image_size=(20, 20))
    assert from_file.shape == (20, 20, 3) and from_file.dtype == np.uint8
    assert np.array_equal(from_file, data.read_photo(pixels, image_size=(20, 20)))
    assert np.array_equal(from_file, data.read_photo(Image.open(tmp_path / "new.png"), image_size=20))
    # the right size already: pixel for pixel, whatever the dtype
    assert np.array_equal(data.read_photo(pixels.astype("float32"), image_size=(30, 50)), pixels)
    gray = data.read_photo(pixels[..., 0], image_size=(30, 50))
    assert np.array_equal(gray[..., 2], pixels[..., 0])


def test_read_photo_crops_the_centre_instead_of_squashing(tmp_path):
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, 20:40] = 255  # a white square in the middle of a black strip
    square = data.read_photo(wide, image_size=(10, 10))
    assert square.min() > 240  # only the centre square is kept


def test_read_photo_errors_name_the_file_or_value(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0not really")
    with pytest.raises(data.ImageFolderError, match=r"broken.jpg.*(not an image|corrupt)"):
        data.read_photo(tmp_path / "broken.jpg")
    with pytest.raises(ValueError, match="background must be an RGB colour"):
        data.read_photo(np.zeros((4, 4, 3)), background=(300, 0, 0))
    with pytest.raises(ValueError, match=r"image_size must be \(height, width\)"):
        data.read_photo(np.zeros((4, 4, 3)), image_size=(0, 4))
    with pytest.raises(ValueError, match=r"got \(4, 4, 2\)"):
        data.read_photo(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="values 0..255"):
        data.read_photo(np.full((4, 4, 3), 300.0))
    with pytest.raises(ValueError, match="validation_split"):
        data.load_photo_folder(tmp_path, validation_split=1.5)


def test_open_photo_refuses_what_it_cannot_read_with_the_reason(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(data.UnusablePhoto, match="not an image Pillow can read"):
        data.open_photo(tmp_path / "notes.jpg")
    Image.new("RGB", (4, 4)).save(tmp_path / "x.ico")
    with pytest.raises(data.UnusablePhoto, match="a ICO image; tlbook reads JPEG"):
        data.open_photo(tmp_path / "x.ico")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with pytest.raises(data.UnusablePhoto, match="link to nothing"):
        data.open_photo(tmp_path / "gone.jpg")
    Image.new("RGB", (4, 4)).save(tmp_path / "ok.png")
    with data.open_photo(tmp_path / "ok.png") as image:
        assert image.format == "PNG" and image.size == (4, 4)


def test_upright_rgb_says_what_it_did():
    cmyk = Image.new("CMYK", (4, 4), (255, 0, 255, 0))
    image, done = data.upright_rgb(cmyk)
    assert image.mode == "RGB" and done == ["convert CMYK to RGB"]
    assert tuple(np.asarray(image)[0, 0]) == (0, 255, 0)
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # transparent red: composited on the background
    image, done = data.upright_rgb(rgba, (10, 20, 30))
    assert tuple(np.asarray(image)[0, 0]) == (10, 20, 30) and "transparent" in done[0]
    opaque = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    assert data.upright_rgb(opaque)[1] == []  # an alpha channel with nothing transparent: nothing to do
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "JPEG")
    truncated = Image.open(io.BytesIO(buffer.getvalue()[: len(buffer.getvalue()) // 2]))  # header intact
    with pytest.raises(data.UnusablePhoto, match="corrupt or truncated"):
        data.upright_rgb(truncated)
