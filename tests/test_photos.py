"""Real photos, offline: Tux Paint's stamps from their Debian package, drawings left out, composited,
split and cached; the package fetched and verified; and what ImageNet features do on them."""

import dataclasses
import io
import lzma
import shutil
import tarfile
import warnings

import numpy as np
import pytest
from PIL import Image

from tlbook import data, downloads
from tlbook.files import file_digest


def _photo_like(seed, size=(40, 30)):
    """An RGBA cut-out with many colours (as a photo has), transparent around an ellipse."""
    rng = np.random.default_rng(seed)
    h, w = size
    rgba = np.zeros((h, w, 4), dtype=np.uint8)
    rgba[..., :3] = rng.integers(0, 256, (h, w, 3))
    yy, xx = np.mgrid[:h, :w]
    rgba[..., 3] = np.where(((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2 <= 1, 255, 0)
    return rgba


def _flat(colour=(200, 30, 30)):
    rgba = np.zeros((30, 30, 4), dtype=np.uint8)
    rgba[5:25, 5:25] = (*colour, 255)
    return rgba


def _png(rgba):
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="PNG")
    return out.getvalue()


def make_deb(path, stamps):
    """A Debian package (an ar archive around data.tar.xz) holding ``stamps``: {stamp path: RGBA}."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        for stamp, rgba in stamps.items():
            payload = _png(rgba)
            info = tarfile.TarInfo(f"./usr/share/tuxpaint/stamps/{stamp}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    members = [("debian-binary", b"2.0\n"), ("data.tar.xz", lzma.compress(tar_bytes.getvalue()))]
    with open(path, "wb") as out:
        out.write(b"!<arch>\n")
        for name, payload in members:
            out.write(f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(payload):<10}`\n".encode())
            out.write(payload + (b"\n" if len(payload) % 2 else b""))
    return path


STAMPS = {
    **{f"animals/birds/bird{i}.png": _photo_like(i) for i in range(4)},
    "animals/birds/cartoon/tux.png": _photo_like(10),  # a cartoon folder: left out by name
    **{f"plants/flowers/flower{i}.png": _photo_like(20 + i) for i in range(3)},
    "plants/flowers/plastic/fake.png": _photo_like(30),
    **{f"food/fruit/fruit{i}.png": _photo_like(40 + i) for i in range(3)},
    "food/fruit/drawn_apple.png": _flat(),  # flat colours outside a cartoon folder: a drawing
    **{f"animals/mammals/bovines/cow{i}.png": _photo_like(50 + i) for i in range(3)},
    **{f"food/vegetables/veg{i}.png": _photo_like(60 + i) for i in range(2)},
    "symbols/chess/king.png": _photo_like(70),  # not a class of the dataset
}


def test_flat_colour_share_tells_drawings_from_photos():
    assert data.flat_colour_share(_flat()) == 1.0
    assert data.flat_colour_share(_photo_like(0)) < 0.2
    assert data.flat_colour_share(np.zeros((4, 4, 4), dtype=np.uint8)) == 1.0  # nothing visible


def test_composite_centres_the_cut_out_on_a_plain_background():
    out = data.composite_on_background(_flat((255, 255, 255)), image_size=60, background=(0, 0, 255))
    assert out.shape == (60, 60, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (0, 0, 255) and tuple(out[30, 30]) == (255, 255, 255)


def test_stamp_photos_keeps_photos_of_the_five_classes_only(tmp_path):
    deb = make_deb(tmp_path / "stamps.deb", STAMPS)
    photos = data.stamp_photos(deb)
    assert list(photos) == list(data.PHOTO_CLASSES)
    kept = {name: [stamp for stamp, _ in items] for name, items in photos.items()}
    assert kept["birds"] == [f"animals/birds/bird{i}.png" for i in range(4)]
    assert kept["flowers"] == [f"plants/flowers/flower{i}.png" for i in range(3)]
    assert kept["fruit"] == [f"food/fruit/fruit{i}.png" for i in range(3)]  # the drawing left out
    assert kept["mammals"] == [f"animals/mammals/bovines/cow{i}.png" for i in range(3)]  # subfolders count
    np.testing.assert_array_equal(photos["birds"][0][1], STAMPS["animals/birds/bird0.png"])
    text = tmp_path / "notes.deb"
    text.write_text("not an ar archive")
    with pytest.raises(ValueError, match=r"notes\.deb is not a Debian package"):
        data.stamp_photos(text)


@pytest.fixture
def fake_package(tmp_path, tmp_cache, monkeypatch):
    """A small stamps package in the cache, pinned in place of the real one."""
    deb = make_deb(tmp_path / "stamps.deb", STAMPS)
    item = dataclasses.replace(downloads.TUXPAINT_STAMPS, size=deb.stat().st_size, digest=file_digest(deb))
    monkeypatch.setattr(downloads, "TUXPAINT_STAMPS", item)
    target = downloads.download_path(item)
    target.parent.mkdir(parents=True)
    shutil.copy(deb, target)
    return target


def test_photos_task_is_split_per_class_and_built_once(fake_package):
    task = data.photos_task(image_size=32, test_fraction=0.4, seed=0)
    assert task.class_names == ("birds", "flowers", "fruit", "mammals", "vegetables")
    assert task.train.x.shape[1:] == (32, 32, 3) and task.train.x.dtype == np.uint8
    assert task.test.counts().tolist() == [2, 1, 1, 1, 1] and task.train.counts().tolist() == [2, 2, 2, 2, 1]
    fake_package.unlink()  # cached: the package is not read again
    again = data.photos_task(image_size=32, test_fraction=0.4, seed=0)
    np.testing.assert_array_equal(again.test.x, task.test.x)


def test_a_photos_archive_with_its_class_names_reversed_is_rebuilt_not_used(fake_package, tmp_cache):
    task = data.photos_task(image_size=32, test_fraction=0.4, seed=0)
    (entry,) = (tmp_cache / "photos").glob("*.npz")
    with np.load(entry) as stored:
        arrays = dict(stored)
    arrays["class_names"] = arrays["class_names"][::-1]  # still a valid archive: every label wrong
    with open(entry, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.warns(RuntimeWarning, match="computing it again"):
        again = data.photos_task(image_size=32, test_fraction=0.4, seed=0)
    assert again.class_names == task.class_names == tuple(data.PHOTO_CLASSES)


def test_a_photos_folder_with_a_class_folder_added_or_renamed_is_rebuilt(fake_package):
    root = data.photos_folder(image_size=32, test_fraction=0.4)
    (root / "train" / "cats").mkdir()  # an empty folder: to Keras, a sixth class
    with pytest.warns(RuntimeWarning, match="computing it again"):
        assert data.photos_folder(image_size=32, test_fraction=0.4) == root
    assert sorted(p.name for p in (root / "train").iterdir()) == list(data.PHOTO_CLASSES)
    (root / "test" / "birds").rename(root / "test" / "zebras")
    with pytest.warns(RuntimeWarning, match="computing it again"):
        data.photos_folder(image_size=32, test_fraction=0.4)
    assert sorted(p.name for p in (root / "test").iterdir()) == list(data.PHOTO_CLASSES)
    (root / "train" / ".DS_Store").write_bytes(b"Finder")  # what browsing the folder leaves: harmless
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert data.photos_folder(image_size=32, test_fraction=0.4) == root


def test_photos_folder_is_a_tree_keras_reads(fake_package):
    root = data.photos_folder(image_size=32, test_fraction=0.4)
    assert sorted(p.name for p in (root / "train").iterdir()) == list(data.PHOTO_CLASSES)
    assert len(list((root / "test" / "birds").glob("*.png"))) == 2
    train, test = data.load_image_folders(root, image_size=(32, 32))
    assert train.class_names == list(data.PHOTO_CLASSES)


def test_a_missing_package_offline_says_what_to_fetch_and_where(tmp_cache, monkeypatch):
    item = downloads.TUXPAINT_STAMPS
    with pytest.raises(downloads.DownloadError) as error:
        data.photos_task(download=False)
    message = str(error.value)
    for part in (item.package, item.version, item.digest, str(downloads.download_path(item).parent)):
        assert part in message
    monkeypatch.setattr(shutil, "which", lambda name: None)
    # no network: Debian's archives unreachable (a closed local port refuses at once)
    monkeypatch.setattr(downloads, "DEBIAN_ARCHIVE", "http://127.0.0.1:9/debian/")
    monkeypatch.setattr(downloads, "DEBIAN_SNAPSHOT", "http://127.0.0.1:9/file/")
    with pytest.raises(downloads.DownloadError, match="has no apt-get"):
        data.photos_task()
    assert not list((tmp_cache / "photos").glob("*.npz"))


def test_a_substituted_package_is_named_and_nothing_is_written(tmp_path, tmp_cache):
    deb = make_deb(tmp_path / "other.deb", STAMPS)
    with pytest.raises(ValueError, match=r"other\.deb is not tuxpaint-stamps-default 2022\.06\.04-1"):
        data.photos_task(deb=deb)
    target = downloads.download_path(downloads.TUXPAINT_STAMPS)
    target.parent.mkdir(parents=True)
    shutil.copy(deb, target)  # a wrong file under the right name in the cache
    with pytest.raises(downloads.DownloadError, match="its size or SHA-256 differs"):
        downloads.debian_package()
    assert not list((tmp_cache / "photos").glob("*.npz"))


@pytest.mark.slow
def test_imagenet_features_beat_random_features_on_the_photos_by_30_points():
    """Issue 14's acceptance: a linear probe on EfficientNet-Lite0's ImageNet features against the
    same probe on the same network with random weights, 10 labelled photos per class, 5 seeds."""
    from tlbook import backbones, probes

    task = data.photos_task()
    assert task.num_classes == 5 and len(task.train) + len(task.test) >= 150
    table = probes.probe_comparison(
        {
            "imagenet": backbones.efficientnet_lite0(include_top=False),
            "random": backbones.efficientnet_lite0(include_top=False, weights=None),
        },
        task,
        [10],
        seeds=(0, 1, 2, 3, 4),
    )
    gain = table.loc[("imagenet", 10), "mean"] - table.loc[("random", 10), "mean"]
    assert gain >= 0.30, table


def test_truncated_or_damaged_packages_give_a_result_or_a_value_error_naming_the_file(tmp_path):
    """Fuzz: every 1/40 of a small package cut off, and random bytes flipped in its data archive;
    each read gives the photos or a ValueError naming the file, never another exception."""
    good = make_deb(tmp_path / "good.deb", STAMPS).read_bytes()
    rng = np.random.default_rng(0)
    variants = [good[: len(good) * k // 40] for k in range(40)]
    for _ in range(20):
        damaged = np.frombuffer(good, dtype=np.uint8).copy()
        damaged[rng.integers(200, len(good), size=8)] ^= 0xFF
        variants.append(damaged.tobytes())
    for i, raw in enumerate(variants):
        deb = tmp_path / f"variant{i}.deb"
        deb.write_bytes(raw)
        try:
            data.stamp_photos(deb)
        except ValueError as exc:
            assert f"variant{i}.deb" in str(exc)
