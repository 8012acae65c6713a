"""The checks of a model and its data (tlbook.diagnostics.checks), the chapter 5 checklist, and the data
built to reproduce the article's collapse."""

from fractions import Fraction

import keras
import numpy as np
import pytest

from tlbook import data, models, plots
from tlbook import diagnostics as dx


def test_counts_with_share_gives_exact_shares():
    counts = data.counts_with_share(10, 3, Fraction(3, 16), 144)
    assert counts.tolist() == [13, 13, 13, 27, 13, 13, 13, 13, 13, 13] and counts.sum() == 144
    assert Fraction(int(counts[3]), int(counts.sum())) == Fraction(3, 16)
    with pytest.raises(ValueError, match="cannot be split"):
        data.counts_with_share(10, 3, Fraction(3, 16), 100)
    with pytest.raises(ValueError, match="majority_class"):
        data.counts_with_share(10, 10, Fraction(1, 4), 40)


def test_digits_splits_are_disjoint_and_sized(tiny_profile):
    counts = {"a": [3] * 10, "b": [1] * 9 + [4]}
    splits = data.digits_splits(counts, tiny_profile, seed=0)
    assert splits["a"].counts().tolist() == [3] * 10 and splits["b"].counts().tolist() == [1] * 9 + [4]
    assert splits["a"].class_names == tuple("0123456789") and splits["a"].x.shape == (30, 16, 16, 3)
    assert not {bytes(i) for i in splits["a"].x} & {bytes(i) for i in splits["b"].x}
    with pytest.raises(ValueError, match="digit 0 has .* scans, the splits ask for 1000"):
        data.digits_splits({"a": [1000] + [1] * 9}, tiny_profile)
    with pytest.raises(ValueError, match="10 per-class counts"):
        data.digits_splits({"a": [1, 2]}, tiny_profile)


def test_prediction_histogram_from_probabilities_and_labels():
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert dx.prediction_histogram(probs, 2).tolist() == [1, 2]
    assert dx.prediction_histogram([2, 2, 2], 4).tolist() == [0, 0, 3, 0]
    with pytest.raises(ValueError, match="3 columns"):
        dx.prediction_histogram(np.ones((2, 3)) / 3, 2)
    with pytest.raises(ValueError, match="0..1"):
        dx.prediction_histogram([0, 5], 2)


def test_feature_spread():
    assert dx.feature_spread(np.ones((5, 3))) == 0.0
    assert dx.feature_spread([[0.0, 0.0], [2.0, 4.0]]) == pytest.approx((1.0 + 2.0) / 2)
    with pytest.raises(ValueError, match="n >= 2"):
        dx.feature_spread(np.ones((1, 3)))


def test_check_labels_counts_and_errors():
    table = dx.check_labels([0, 0, 2], 3, ["a", "b", "c"])
    assert table["count"].tolist() == [2, 0, 1] and table.loc["a", "share"] == pytest.approx(2 / 3)
    assert dx.check_labels(np.eye(3)[[0, 1]], 3)["count"].tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match="labels range over 0..5 but num_classes=3"):
        dx.check_labels([0, 5], 3)
    with pytest.raises(ValueError, match="one-hot labels have 4 columns but num_classes=3"):
        dx.check_labels(np.eye(4), 3)
    with pytest.raises(ValueError, match="whole class numbers"):
        dx.check_labels([0.5, 1], 3)


def _tiny(**kw):
    return models.build_transfer_model(
        2, backbone="small_cnn", weights=None, input_shape=(16, 16, 3), head_units=16, learning_rate=1e-2, **kw
    )


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    y = np.arange(16) % 2
    x = (rng.uniform(0, 155, (16, 16, 16, 3)) + 100 * y[:, None, None, None]).astype("float32")
    return x, y


def test_overfit_one_batch_learns_a_learnable_batch(batch):
    result = dx.overfit_one_batch(_tiny(), *batch, epochs=80)
    assert result["ok"] and result["accuracy"] == 1.0
    # a batch whose images carry no information cannot be learned by heart
    flat = np.zeros_like(batch[0])
    assert not dx.overfit_one_batch(_tiny(), flat, batch[1], epochs=20)["ok"]
    with pytest.raises(ValueError, match="epochs"):
        dx.overfit_one_batch(_tiny(), *batch, epochs=0)


def test_batchnorm_report_finds_moving_statistics_and_restores_them(batch):
    frozen = _tiny()
    report = dx.batchnorm_report(frozen, batch[0])
    assert (
        report["layer"].tolist() == ["base/bn1", "base/bn2", "base/bn3"]
        and not report["updates statistics in fit"].any()
    )
    inputs = keras.Input((16, 16, 3))
    plain = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(inputs))
    before = plain.get_layer("bn").moving_mean.numpy().copy()
    report = dx.batchnorm_report(plain, batch[0])
    assert report["updates statistics in fit"].tolist() == [True] and report["trainable"].tolist() == [True]
    np.testing.assert_array_equal(plain.get_layer("bn").moving_mean.numpy(), before)


def test_checklist_flags_inputs_on_the_wrong_scale(batch):
    x, y = batch
    good = dx.checklist(_tiny, x, y, 2, trained_model=None, overfit_epochs=80)
    assert good["check"].tolist() == [
        "initial loss vs ln K",
        "can it overfit one batch?",
        "input statistics",
        "labels",
        "BatchNorm mode",
    ]
    assert good.set_index("check").loc["input statistics", "verdict"] == "ok"
    assert good.set_index("check").loc["can it overfit one batch?", "verdict"] == "ok"
    model = _tiny()
    bad = dx.checklist(_tiny, x / 255.0, y, 2, trained_model=model, overfit_epochs=5).set_index("check")
    assert (
        bad.loc["input statistics", "verdict"] == "problem"
        and "the model expects 0..255" in bad.loc["input statistics", "result"]
    )
    assert bad.loc["prediction histogram", "tlbook call"] == "prediction_histogram"
    too_big = dx.checklist(_tiny, x * 255.0, y, 2, overfit_epochs=1).set_index("check")  # scaled up twice
    assert (
        too_big.loc["input statistics", "verdict"] == "problem"
        and "6.5e+04" in too_big.loc["input statistics", "result"]
    )


def test_prediction_and_confusion_plots():
    ax = plots.plot_prediction_histogram([0, 5, 0], ["a", "b", "c"], title="Collapsed")
    assert ax.get_title() == "Collapsed" and [p.get_height() for p in ax.patches] == [0, 5, 0]
    assert ax.get_ylabel() == "images (count)"
    ax = plots.plot_confusion([0, 1, 2, 2], [1, 1, 1, 1], ["a", "b", "c"], title="One column")
    assert ax.get_title() == "One column" and ax.get_xlabel() == "predicted class"
    cells = [t.get_text() for t in ax.texts]
    assert cells == ["0", "1", "0", "0", "1", "0", "0", "2", "0"]  # every image in column "b"


def test_base_feature_spread_is_the_spread_of_the_base_features(tmp_cache):
    from tlbook import backbones, models

    model = models.build_transfer_model(2, backbone="small_cnn", weights=None, input_shape=(16, 16, 3), head_units=4)
    x = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3)).astype(np.uint8)
    expected = dx.feature_spread(backbones.extract_features(model.get_layer("base"), x))
    assert dx.base_feature_spread(model, x) == pytest.approx(expected)
    assert dx.base_feature_spread(model, x / 255.0) < expected  # inputs rescaled twice look alike
    with pytest.raises(ValueError, match="no layer 'backbone'"):
        dx.base_feature_spread(model, x, layer="backbone")


def test_most_confident_mistakes_are_the_surest_wrong_predictions():
    from tlbook.diagnostics import most_confident_mistakes

    y = np.array([0, 1, 1, 0, 2])
    p = np.array([[0.9, 0.1, 0.0], [0.7, 0.3, 0.0], [0.2, 0.8, 0.0], [0.4, 0.6, 0.0], [0.05, 0.0, 0.95]])
    assert most_confident_mistakes(y, p, k=4).tolist() == [1, 3]  # wrong at 0.7, then at 0.6
    assert most_confident_mistakes(y, p, k=1).tolist() == [1]
    assert most_confident_mistakes(np.array([0]), np.array([[1.0, 0.0]])).tolist() == []
    with pytest.raises(ValueError, match=r"must be \(n, K\)"):
        most_confident_mistakes(y, p[:2])
    with pytest.raises(ValueError, match="k must be at least 1"):
        most_confident_mistakes(y, p, k=0)


def test_input_statistics_per_channel():
    x = np.zeros((2, 3, 3, 3))
    x[..., 0] = 10
    x[0, ..., 2] = 4  # channel B: half the pixels 4, half 0
    table = dx.input_statistics(x)
    assert list(table.index) == ["R", "G", "B"] and list(table.columns) == ["mean", "std", "min", "max"]
    assert table.loc["R"].tolist() == [10, 0, 10, 10]
    assert table.loc["B"].tolist() == [2, 2, 0, 4]
    with pytest.raises(ValueError, match="batch of images"):
        dx.input_statistics(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="2 channel names for 3 channels"):
        dx.input_statistics(x, ("a", "b"))
