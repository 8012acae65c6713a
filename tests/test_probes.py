"""tlbook.probes: linear probes on frozen features, their comparison table and the 2-D projection."""

import numpy as np
import pytest

from tlbook import backbones, data, probes


def blobs(n_per_class, classes, dim, spread, seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, (classes, dim))
    y = np.repeat(np.arange(classes), n_per_class)
    return centers[y] + rng.normal(0, spread, (len(y), dim)), y


def test_linear_probe_separable_vs_noise():
    x, y = blobs(30, 3, 8, 0.5, 0)
    xt, yt = blobs(30, 3, 8, 0.5, 0)
    assert probes.linear_probe(x, y, xt, yt) == 1.0
    rng = np.random.default_rng(1)
    noise = probes.linear_probe(rng.normal(size=(90, 8)), y, rng.normal(size=(90, 8)), yt)
    assert noise < 0.6


@pytest.mark.parametrize("per_class", [2, 10])  # C fixed at 0.1; C chosen by cross-validation
def test_linear_probe_with_more_dimensions_than_images_is_the_plain_classifier(per_class):
    """The PCA rotation onto the labelled images' span changes the speed, not the classifier:
    the same test accuracy as scikit-learn's pipeline without it, on 3 classes in 600 noisy dimensions."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = blobs(per_class, 3, 600, 40.0, 3)
    xt, yt = blobs(200, 3, 600, 40.0, 3)
    xt = xt + np.random.default_rng(4).normal(0, 40.0, xt.shape)
    plain = (
        LogisticRegressionCV(
            Cs=[0.01, 0.1, 1.0], cv=3, max_iter=5000, l1_ratios=(0.0,), scoring="accuracy", use_legacy_attributes=False
        )
        if per_class >= 3
        else LogisticRegression(C=0.1, max_iter=5000)
    )
    expected = make_pipeline(StandardScaler(), plain).fit(x, y).score(xt, yt)
    accuracy = probes.linear_probe(x, y, xt, yt)
    assert 0.4 < accuracy < 1.0  # neither trivial nor perfect, so a different classifier would show
    assert accuracy == pytest.approx(expected, abs=2 / len(yt))


@pytest.mark.parametrize("per_class", [2, 10])  # both solvers: C fixed, C cross-validated
def test_linear_probe_solves_on_one_blas_thread_and_leaves_the_callers_threads_alone(per_class, monkeypatch):
    """Its small products are faster on one thread (probes.py); the caller's pools stay as they were."""
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_info

    seen = []
    fit = Pipeline.fit

    def recording_fit(self, *args, **kwargs):
        seen.append({pool["num_threads"] for pool in threadpool_info()})
        return fit(self, *args, **kwargs)

    from threadpoolctl import threadpool_limits

    monkeypatch.setattr(Pipeline, "fit", recording_fit)
    with threadpool_limits(limits=2):  # the caller's pools have 2 threads, even on a 1-core runner
        before = [pool["num_threads"] for pool in threadpool_info()]
        assert 2 in before
        x, y = blobs(per_class, 3, 8, 0.5, 0)
        assert probes.linear_probe(x, y, x, y) == 1.0
        assert seen == [{1}]
        assert [pool["num_threads"] for pool in threadpool_info()] == before


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros((4, 2)), [0, 1, 0], np.zeros((2, 2)), [0, 1]), "differ in length"),
        ((np.zeros((4, 2)), [0, 1, 0, 1], np.zeros((2, 3)), [0, 1]), "same d"),
        ((np.zeros((4, 2)), [1, 1, 1, 1], np.zeros((2, 2)), [0, 1]), "two classes"),
    ],
)
def test_linear_probe_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        probes.linear_probe(*args)


def test_probe_comparison_table(tiny_profile):
    task = data.target_task(tiny_profile)
    table = probes.probe_comparison({"pixels": backbones.pixel_backbone(tiny_profile)}, task, [1, 5], seeds=(0, 1))
    assert list(table.index) == [("pixels", 1), ("pixels", 5)]
    assert list(table.columns) == ["mean", "std", "runs"]
    assert (table["runs"] == 2).all()
    assert ((table["mean"] >= 0) & (table["mean"] <= 1)).all()
    again = probes.probe_comparison({"pixels": backbones.pixel_backbone(tiny_profile)}, task, [1, 5], seeds=(0, 1))
    assert table.equals(again)


def test_probe_comparison_needs_backbones_and_seeds(tiny_profile):
    task = data.target_task(tiny_profile)
    with pytest.raises(ValueError, match="backbone"):
        probes.probe_comparison({}, task, [1])
    with pytest.raises(ValueError, match="seed"):
        probes.probe_comparison({"p": backbones.pixel_backbone(tiny_profile)}, task, [1], seeds=())


def test_project_2d():
    x, y = blobs(20, 2, 6, 0.1, 0)
    p = probes.project_2d(x)
    assert p.shape == (40, 2)
    np.testing.assert_allclose(p, probes.project_2d(x))
    # the first component separates two well-separated blobs
    assert (np.sign(p[y == 0, 0]) != np.sign(p[y == 1, 0].mean())).all()
    with pytest.raises(ValueError, match="n >= 2"):
        probes.project_2d(np.zeros((1, 4)))


@pytest.mark.slow
def test_chapter1_claim_pretrained_features_transfer():
    """The claim of Chapter 1, on the real quick profile: with 10 labels per class the pretrained
    backbone's linear probe beats the random backbone's by at least 15 points and raw pixels by 40."""
    from tlbook.config import get_profile

    profile = get_profile("quick")
    _, card = backbones.source_classifier(profile)
    assert card["source_test_accuracy"] > 0.7
    table = probes.probe_comparison(
        {
            "pretrained": backbones.pretrained_backbone(profile),
            "random": backbones.random_backbone(profile),
            "pixels": backbones.pixel_backbone(profile),
        },
        data.target_task(profile),
        [10],
        seeds=(0, 1, 2),
    )
    mean = table["mean"].xs(10, level="labels_per_class")
    assert mean["pretrained"] - mean["random"] >= 0.15
    assert mean["pretrained"] - mean["pixels"] >= 0.40
