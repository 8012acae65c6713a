"""Progress bars: shown to a person, absent from the checked outputs, and harmless to the numbers."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tlbook import backbones, progress

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "value, shown", [("", True), ("1", True), ("yes", True), ("0", False), ("off", False), (" False ", False)]
)
def test_enabled_reads_tlbook_progress(monkeypatch, value, shown):
    monkeypatch.setenv(progress.PROGRESS_ENV, value)
    assert progress.enabled() is shown


def test_a_bar_says_what_is_computed_and_how_far_only_when_enabled(monkeypatch, capsys):
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    with progress.progress_bar(4, desc="pretraining the source backbone", unit="epoch") as bar:
        bar.update(3)
        bar.refresh()
        assert bar.n == 3
    assert "pretraining the source backbone" in capsys.readouterr().err
    monkeypatch.setenv(progress.PROGRESS_ENV, "0")
    with progress.progress_bar(4, desc="silent", unit="epoch") as bar:
        bar.update(4)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("total, desc", [(0, "x"), (2.5, "x"), (True, "x"), (3, " ")])
def test_progress_bar_rejects_bad_arguments(total, desc):
    with pytest.raises(ValueError, match="total must be a positive integer|desc must say"):
        progress.progress_bar(total, desc=desc)


def test_keras_callback_counts_epochs(monkeypatch):
    import keras

    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with progress.progress_bar(3, desc="fitting") as bar:
        model.fit(np.zeros((8, 3)), np.zeros(8), epochs=3, verbose=0, callbacks=[progress.keras_callback(bar)])
        assert bar.n == 3


def test_keras_callback_counts_predict_batches_and_rejects_other_units(monkeypatch):
    import keras

    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with progress.progress_bar(3, desc="predicting", unit="batch") as bar:
        model.predict(np.zeros((9, 3)), batch_size=4, verbose=0, callbacks=[progress.keras_callback(bar, unit="batch")])
        assert bar.n == 3
    with pytest.raises(ValueError, match="unit must be"):
        progress.keras_callback(bar, unit="step")


def test_feature_extraction_in_batches_gives_the_same_bits_as_one_predict(monkeypatch, capsys):
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    backbone = backbones.build_small_cnn((16, 16, 3), width=4)
    images = np.random.default_rng(0).uniform(0, 255, (70, 16, 16, 3)).astype("float32")
    features = backbones.extract_features(backbone, images, batch_size=32)
    assert "extracting features of 70 images" in capsys.readouterr().err
    np.testing.assert_array_equal(features, backbone.predict(images, batch_size=32, verbose=0))


def test_stored_notebooks_hold_no_progress_bar():
    bar = re.compile(r"\d+/\d+ \[\d+:\d+")  # tqdm's "3/10 [00:01<00:02, ...]"
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            text = json.dumps(cell.get("outputs", []))
            assert not bar.search(text), f"{path.name}: a stored output holds a progress bar; run `make execute`"
