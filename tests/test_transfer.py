"""tlbook.models.transfer: the article's architecture with its preprocessing inside, its weights, and taking
it apart with the functional API."""

import dataclasses
import io
import tarfile

import keras
import numpy as np
import pytest
from test_resnet50 import _imagenet_like_file, _patch_weights_item, _serving

from tlbook import backbones, data, doctor, downloads, files, models
from tlbook.__main__ import main

SHAPE = (32, 32, 3)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (6, *SHAPE)).astype("float32")


@pytest.fixture(scope="module")
def untrained():
    """One untrained model (ResNet50 base, seed 3), built once for the tests that only save it, load it
    and compare predictions: each build of ResNet50 and its first predict cost a few seconds of CPU.
    Nothing changes it (saving and predicting leave a model as it was)."""
    return models.build_transfer_model(4, weights=None, input_shape=SHAPE, head_units=8, seed=3)


def test_architecture_order_units_frozen_base_and_preprocessing(images):
    model = models.build_transfer_model(5, weights=None, input_shape=SHAPE)
    assert [layer.name for layer in model.layers] == ["image", "base", "gap", "hidden", "head"]
    assert [type(layer).__name__ for layer in model.layers[1:]] == [
        "Functional",
        "GlobalAveragePooling2D",
        "Dense",
        "Dense",
    ]
    hidden, head = model.get_layer("hidden"), model.get_layer("head")
    assert (hidden.units, hidden.activation.__name__) == (1024, "relu")
    assert (head.units, head.activation.__name__) == (5, "softmax")
    base = model.get_layer("base")
    assert base.trainable is False and base.output.shape[-1] == 2048
    assert [w.name for w in model.trainable_weights] == ["kernel", "bias", "kernel", "bias"]  # hidden + head only
    assert model.loss == "sparse_categorical_crossentropy"
    assert [layer.name for layer in base.layers[:3]] == ["image", "preprocess", "conv1_pad"]  # preprocessing inside
    pre = np.asarray(base.get_layer("preprocess")(images))
    np.testing.assert_allclose(pre, keras.applications.resnet50.preprocess_input(images.copy()), atol=1e-4)
    probs = model.predict(images, verbose=0)
    assert probs.shape == (6, 5) and np.allclose(probs.sum(1), 1, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_functional_api_surgery_takes_the_model_apart(tmp_path, images, untrained):
    """What a Keras user does with a trained model: cut it at the base's output, or deeper inside the
    base, and reuse the part as a feature extractor; also after saving and loading it (on the small
    CNN: saving and loading ResNet50 costs seconds, and test_saved_model_carries_its_preprocessing
    does it already)."""
    base = untrained.get_layer("base")
    phi = keras.Model(untrained.inputs, base.output)
    np.testing.assert_allclose(phi.predict(images, verbose=0), base.predict(images, verbose=0), rtol=1e-6, atol=1e-6)
    block = keras.Model(untrained.inputs, base.get_layer("conv4_block6_out").output)
    assert block.output_shape == (None, 2, 2, 1024)
    features = keras.Model(untrained.inputs, untrained.get_layer("hidden").input)  # φ(x) after pooling
    assert features.output_shape == (None, 2048)
    small = models.build_transfer_model(3, backbone="small_cnn", weights=None, input_shape=(16, 16, 3), seed=1)
    small.save(tmp_path / "small.keras")
    x = images[:, :16, :16]
    for model in (small, keras.saving.load_model(tmp_path / "small.keras")):
        relu2 = keras.Model(model.inputs, model.get_layer("base").get_layer("relu2").output)
        phi = keras.Model(model.inputs, model.get_layer("base").output)
        assert len(relu2.output_shape) == 4
        np.testing.assert_allclose(phi.predict(x, verbose=0), model.get_layer("base").predict(x, verbose=0), rtol=1e-6)


def test_options_are_keyword_only_as_keras_spells_them():
    with pytest.raises(TypeError):
        models.build_transfer_model(3, "resnet50")


def test_unfrozen_and_categorical_options():
    model = models.build_transfer_model(
        3, weights=None, input_shape=SHAPE, freeze_base=False, label_mode="categorical", head_units=16
    )
    assert model.get_layer("base").trainable and model.get_layer("hidden").units == 16
    assert len(model.trainable_weights) > 100 and model.loss == "categorical_crossentropy"


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # it was never trained
def test_saved_model_carries_its_preprocessing(tmp_path, images, untrained):
    model = untrained
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("base").get_layer("preprocess")).__name__ == "ResNetPreprocess"
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_saved_model_loads_in_a_new_process_after_import_tlbook(tmp_path, images, untrained):
    """What a user does: save, then in a fresh Python `import tlbook, keras` and load_model."""
    import subprocess
    import sys

    model = untrained  # backbone="resnet50", the default
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "expected.npy", model.predict(images, verbose=0))
    script = (
        "import numpy as np, tlbook, keras\n"
        f"m = keras.models.load_model({str(tmp_path / 'm.keras')!r})\n"
        f"got = m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0)\n"
        # another thread count here than in the test process: the last float digits may differ
        f"np.testing.assert_allclose(got, np.load({str(tmp_path / 'expected.npy')!r}), rtol=1e-4, atol=1e-6)\n"
        "print(type(m.get_layer('base').get_layer('preprocess')).__module__)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "tlbook.preprocessing"


def test_model_rebuilt_from_a_saved_weights_file_predicts_identically(tmp_path, images, untrained):
    original = untrained  # seed 3
    path = tmp_path / "resnet50_base.weights.h5"
    original.get_layer("base").save_weights(path)
    rebuilt = models.build_transfer_model(4, weights=path, input_shape=SHAPE, head_units=8, seed=3)
    np.testing.assert_array_equal(rebuilt.predict(images, verbose=0), original.predict(images, verbose=0))
    # the base really comes from the file: with another seed only the (new) head differs
    other = models.build_transfer_model(4, weights=path, input_shape=SHAPE, head_units=8, seed=4)
    for a, b in zip(other.get_layer("base").get_weights(), original.get_layer("base").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    random = models.build_transfer_model(4, weights=None, input_shape=SHAPE, head_units=8, seed=4)
    assert not np.array_equal(random.get_layer("base").get_weights()[0], original.get_layer("base").get_weights()[0])


def test_small_cnn_backbone_uses_the_source_pretraining(tiny_profile, tiny_source_cache):
    model = models.build_transfer_model(
        5,
        backbone="small_cnn",
        weights="source",
        input_shape=tiny_profile.input_shape,
        profile=tiny_profile,
        head_units=32,
    )
    assert [layer.name for layer in model.layers] == ["image", "base", "hidden", "head"]
    pretrained = backbones.pretrained_backbone(tiny_profile)
    for a, b in zip(model.get_layer("base").get_weights(), pretrained.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_classes": 1}, ValueError, "num_classes must be an integer >= 2"),
        ({"num_classes": "5"}, ValueError, "derive it from the training folders"),
        ({"backbone": "vgg16"}, ValueError, "unknown backbone 'vgg16'"),
        ({"label_mode": "binary"}, ValueError, "label_mode must be"),
        ({"learning_rate": 0}, ValueError, "learning_rate must be positive"),
        ({"head_units": 0}, ValueError, "head_units"),
        ({"input_shape": (16, 16, 3)}, ValueError, "sides >= 32"),
        ({"weights": "source"}, ValueError, "weights='source' is for backbone='small_cnn'"),
        (
            {"backbone": "small_cnn", "weights": "imagenet"},
            ValueError,
            "exists for backbone='resnet50' and 'efficientnet_lite0'",
        ),
        ({"weights": "nowhere/w.weights.h5"}, FileNotFoundError, r"weights file 'nowhere/w.weights.h5' does not exist"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    args = {"num_classes": 3, "weights": None, "input_shape": SHAPE, **kwargs}
    with pytest.raises(error, match=match):
        models.build_transfer_model(**args)


def test_weights_file_for_another_network_is_named(tmp_path):
    path = tmp_path / "small.weights.h5"
    backbones.build_small_cnn(SHAPE).save_weights(path)
    with pytest.raises(ValueError, match=r"could not load the weights file .*small.weights.h5.* into resnet50"):
        models.build_transfer_model(3, weights=path, input_shape=SHAPE)


def test_article_weights_per_profile():
    from tlbook.config import get_profile

    assert models.article_weights(get_profile("quick")) is None
    other = dataclasses.replace(get_profile("quick"), name="other", backbone="resnet50", backbone_weights="imagenet")
    assert models.article_weights(other) == "imagenet"


FLOWER_CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")  # the real archive's folders


def _flowers_like_archive(path, per_class=5):
    """A stand-in for TensorFlow's flower_photos.tgz, laid out as the real one: ``flower_photos/<class>/*.jpg``
    (JPEGs of different sizes) and a licence file beside the class folders."""
    from PIL import Image

    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for k, name in enumerate(FLOWER_CLASSES):
            for i in range(per_class):
                size = (20 + 3 * i, 28 - 2 * k)  # (width, height): the pipeline resizes
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                buf = io.BytesIO()
                Image.fromarray(pixels).save(buf, format="JPEG")
                info = tarfile.TarInfo(f"flower_photos/{name}/{k}{i:03d}_photo.jpg")
                info.size = buf.tell()
                buf.seek(0)
                tar.addfile(info, buf)
        licence = b"stand-in licence"
        info = tarfile.TarInfo("flower_photos/LICENSE.txt")
        info.size = len(licence)
        tar.addfile(info, io.BytesIO(licence))


@pytest.mark.slow
def test_resnet50_imagenet_and_the_flower_photos_end_to_end_from_prefetch(tmp_path, tmp_cache, monkeypatch, capsys):
    """What a reader with a network does, offline on stand-in files: `python -m tlbook prefetch` (both
    downloads, from a loopback server, verified against the hashes patched in), the flower photos as an
    image-folder tree, and build_transfer_model(K, backbone="resnet50", weights="imagenet") with the
    weights from the tlbook cache, trained and evaluated on them."""
    served = tmp_path / "www"
    served.mkdir()
    saved = _imagenet_like_file(served / "resnet50_notop.h5")
    _flowers_like_archive(served / "flower_photos.tgz")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # not Keras's cache: tlbook's
    with _serving(served) as base_url:
        weights_item = _patch_weights_item(
            monkeypatch, served / "resnet50_notop.h5", url=f"{base_url}/resnet50_notop.h5"
        )
        archive = (served / "flower_photos.tgz").read_bytes()
        flowers_item = dataclasses.replace(
            downloads.FLOWERS,
            url=f"{base_url}/flower_photos.tgz",
            size=len(archive),
            digest=files.file_digest(served / "flower_photos.tgz", "sha256"),
        )
        monkeypatch.setattr(downloads, "FLOWERS", flowers_item)
        monkeypatch.setitem(downloads.DOWNLOADS, "resnet50", weights_item)
        monkeypatch.setitem(downloads.DOWNLOADS, "flowers", flowers_item)
        assert main(["prefetch", "--only", "resnet50", "--only", "flowers", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"resnet50: {downloads.download_path(weights_item)}" in out
    assert f"flowers: {downloads.download_path(flowers_item)}" in out
    checks = {c.name: c for c in doctor.run_checks("quick")}
    assert all(checks[i.description].detail.startswith("present and verified") for i in (weights_item, flowers_item))

    # the server is gone: from here on everything comes from the tlbook cache
    root = downloads.flowers_folder(download=False, test_fraction=0.2)
    assert sorted(p.name for p in root.iterdir()) == ["test", "train"]
    train_ds, val_ds, test_ds = data.load_image_folders(
        root, image_size=SHAPE[:2], batch_size=8, validation_fraction=0.2
    )  # as the book's call, at 32x32
    assert tuple(train_ds.class_names) == FLOWER_CLASSES and tuple(test_ds.class_names) == FLOWER_CLASSES
    assert data.validate_image_folder(root / "train") == dict.fromkeys(FLOWER_CLASSES, 4)
    assert data.validate_image_folder(root / "test") == dict.fromkeys(FLOWER_CLASSES, 1)

    model = models.build_transfer_model(
        len(train_ds.class_names), backbone="resnet50", weights="imagenet", input_shape=SHAPE, head_units=8
    )
    for a, b in zip(model.get_layer("base").get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    history = model.fit(train_ds, validation_data=val_ds, epochs=1, shuffle=False, verbose=0)  # shuffled already
    loss, accuracy = model.evaluate(test_ds, verbose=0)
    assert np.isfinite(history.history["val_loss"][0]) and np.isfinite(loss) and 0 <= accuracy <= 1


def test_transfer_classifier_rejects_bad_learning_rate(tiny_profile, tmp_cache):
    with pytest.raises(ValueError, match="learning_rate"):
        models.transfer_classifier(3, tiny_profile, learning_rate=0)


@pytest.mark.slow
def test_transfer_model_on_imagenet_lite0_uses_its_features(lite0_cache, sample_photos):
    model = models.build_transfer_model(3, backbone="efficientnet_lite0", weights="imagenet", input_shape=(64, 64, 3))
    base = model.get_layer("base")
    assert not base.trainable and model.output_shape == (None, 3)
    x = models.imagenet_input(sample_photos, image_size=(64, 64))
    reference = backbones.efficientnet_lite0((64, 64, 3), include_top=False)
    np.testing.assert_allclose(base.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    phi = keras.Model(model.inputs, base.output)  # functional-API surgery, as on the ResNet50 model
    np.testing.assert_allclose(phi.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="weights='source' is for backbone='small_cnn'"):
        models.build_transfer_model(3, backbone="efficientnet_lite0", weights="source", input_shape=(64, 64, 3))
