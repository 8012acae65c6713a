"""tlbook.experiments: measurements of single training runs (fit_and_evaluate, the recompile
measurement, summarize_runs) and the layer table Chapter 4 prints around build_transfer_model."""

import dataclasses
import math

import numpy as np
import pytest

from tlbook import experiments, models


@pytest.fixture(scope="module")
def small_model_and_data():
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    x = (rng.uniform(0, 155, (40, 16, 16, 3)) + 100 * y[:, None, None, None]).astype("float32")  # class 1 is brighter
    return x, y


def _model(**kw):
    return models.build_transfer_model(
        2, backbone="small_cnn", weights=None, input_shape=(16, 16, 3), head_units=8, **kw
    )


def test_layer_table_counts_trainable_parameters():
    model = _model()
    table = models.layer_table(model)
    assert list(table.index) == ["image", "base", "hidden", "head", "total"]
    d = model.get_layer("base").output.shape[-1]  # the features φ(x): 4 x the profile's source_width
    assert table.loc["hidden", "parameters"] == d * 8 + 8 and table.loc["head", "parameters"] == 8 * 2 + 2
    assert table.loc["base", "trainable parameters"] == 0
    assert table.loc["total", "trainable parameters"] == d * 8 + 8 + 8 * 2 + 2
    assert table.loc["total", "parameters"] == model.count_params()
    assert table.loc["head", "output shape"] == "(None, 2)"


@pytest.fixture(scope="module")
def in_loop_run(small_model_and_data):
    """fit_and_evaluate on a fresh model (its seeded default), the base in the loop: the run both tests
    below start from, computed once (a fresh model's first fit and evaluate cost seconds of tracing)."""
    x, y = small_model_and_data
    return experiments.fit_and_evaluate(
        _model(learning_rate=3e-2), (x[:30], y[:30]), (x[30:], y[30:]), (x, y), epochs=10, batch_size=6
    )


def test_fit_and_evaluate_reports_before_and_after(small_model_and_data, in_loop_run):
    x, y = small_model_and_data
    result = in_loop_run
    assert isinstance(result, experiments.FitResult)
    assert len(result.history["loss"]) == 10 and len(result.history["val_accuracy"]) == 10
    assert result.test_loss < result.initial_loss and result.test_accuracy > 0.8
    assert result.evaluate == {"loss": result.test_loss, "accuracy": result.test_accuracy}
    again = experiments.fit_and_evaluate(
        _model(learning_rate=3e-2), (x[:30], y[:30]), (x[30:], y[30:]), (x, y), epochs=10, batch_size=6
    )
    assert again == result  # seeded: the same run twice gives the same numbers
    with pytest.raises(ValueError, match="epochs"):
        experiments.fit_and_evaluate(_model(), (x, y), None, (x, y), epochs=0)


def test_fit_and_evaluate_on_cached_features_trains_the_same_model(small_model_and_data, in_loop_run, tmp_cache):
    """With a frozen base, the head trained on stored features is the model's own head: the full
    model afterwards predicts as the run reports, and a second run reads the features."""
    x, y = small_model_and_data
    splits = (x[:30], y[:30]), (x[30:], y[30:]), (x, y)
    in_loop = in_loop_run  # the same model, splits, epochs and batch size, with the base in the loop
    model = _model(learning_rate=3e-2)
    untrained_head = model.get_layer("head").get_weights()[0].copy()
    cached = experiments.fit_and_evaluate(model, *splits, epochs=10, batch_size=6, cache_features=True)
    assert set(cached.history) == set(in_loop.history) and len(cached.history["val_loss"]) == 10
    assert cached.initial_loss == pytest.approx(in_loop.initial_loss, rel=1e-5)  # the same start
    assert cached.test_accuracy > 0.8
    assert not np.array_equal(model.get_layer("head").get_weights()[0], untrained_head)  # the model trained
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(cached.test_loss, rel=1e-4) and accuracy == cached.test_accuracy
    assert len(list((tmp_cache / "features").glob("*.npy"))) == 3  # train, validation, test
    again = experiments.fit_and_evaluate(
        _model(learning_rate=3e-2), *splits, epochs=10, batch_size=6, cache_features=True
    )
    assert again == cached


def test_fit_and_evaluate_on_cached_features_refuses_what_it_cannot_cache(small_model_and_data, tmp_cache):
    x, y = small_model_and_data
    unfrozen = _model()
    unfrozen.get_layer("base").trainable = True
    with pytest.raises(ValueError, match="needs a frozen base"):
        experiments.fit_and_evaluate(unfrozen, (x, y), (x, y), (x, y), cache_features=True)
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    with pytest.raises(ValueError, match="every split; validation is .*Dataset"):
        experiments.fit_and_evaluate(_model(), (x, y), dataset, (x, y), cache_features=True)
    from tlbook import backbones

    with pytest.raises(ValueError, match="layers 'base', 'hidden', 'head'"):
        classifier = backbones.build_classifier(backbones.build_small_cnn((16, 16, 3)), 2)
        experiments.fit_and_evaluate(classifier, (x, y), (x, y), (x, y), cache_features=True)


def test_unfreezing_needs_a_recompile_once_training_has_begun(small_model_and_data):
    x, y = small_model_and_data
    model = _model()
    assert experiments.weight_change_during_fit(model, "base", x, y) == 0.0  # frozen
    model.get_layer("base").trainable = True
    assert experiments.weight_change_during_fit(model, "base", x, y) == 0.0  # the old training step is reused
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert experiments.weight_change_during_fit(model, "base", x, y) > 1e-4
    with pytest.raises(ValueError, match="no layer 'nope'"):
        experiments.weight_change_during_fit(model, "nope", x, y)


def test_summarize_runs_puts_results_next_to_references():
    import dataclasses

    run = experiments.FitResult(
        initial_loss=2.5,
        initial_accuracy=0.1,
        test_loss=0.5,
        test_accuracy=0.8,
        history={"loss": [1.0, 0.5], "accuracy": [0.6, 0.9], "val_loss": [1, 1], "val_accuracy": [0.5, 0.7]},
    )
    b = dataclasses.replace(run, test_accuracy=0.3)
    table = experiments.summarize_runs({"a": run, "b": b}, num_classes=4)
    assert list(table.index) == ["a", "b"]
    assert table.loc["a"].tolist() == pytest.approx([2.5, math.log(4), 0.9, 0.7, 0.8, 0.25])
    assert table.loc["b", "test accuracy"] == 0.3
    with pytest.raises(ValueError, match="no runs"):
        experiments.summarize_runs({}, 4)
    with pytest.raises(TypeError, match="run 'x' is a dict, not a fit_and_evaluate result"):
        experiments.summarize_runs({"x": {"loss": 1}}, 4)
    with pytest.raises(ValueError, match="run 'y' has no training accuracy"):
        experiments.summarize_runs({"y": dataclasses.replace(run, history={"loss": [1.0]})}, 4)


def test_feature_caching_speedup_reports_consistent_numbers():
    # The small CNN, not ResNet50: the numbers' bookkeeping is tested here, which any frozen base
    # shows, and ResNet50's build and traced training step cost ~10 s of CPU more (Chapter 6 runs
    # the function on the article's ResNet50, checked by the notebook check).
    model = models.build_transfer_model(2, backbone="small_cnn", weights=None, input_shape=(16, 16, 3), head_units=16)
    x = np.random.default_rng(0).uniform(0, 255, (64, 16, 16, 3)).astype("float32")
    result = experiments.feature_caching_speedup(model, x, np.arange(64) % 2, epochs=2)
    assert isinstance(result, experiments.CachingSpeedup)
    assert result.speedup == pytest.approx(result.seconds_per_epoch_in_loop / result.seconds_per_epoch_cached)
    assert result.speedup > 0 and result.extraction_seconds > 0  # times, not their ratio: machine load
    in_loop, cached = result.seconds_per_epoch_in_loop, result.seconds_per_epoch_cached
    assert result.break_even_epochs == pytest.approx(result.extraction_seconds / max(in_loop - cached, 1e-9))
    table = experiments.speedup_table({"a": result, "b": dataclasses.replace(result, speedup=2.0)})
    assert list(table.columns) == ["a", "b"] and table.loc["speedup", "b"] == 2.0
    assert list(table.index) == [f.name for f in dataclasses.fields(experiments.CachingSpeedup)]
    with pytest.raises(TypeError, match="'x' is a dict"):
        experiments.speedup_table({"x": {"speedup": 1.0}})
    with pytest.raises(ValueError, match="no speedups"):
        experiments.speedup_table({})
    with pytest.raises(ValueError, match="epochs must be >= 2"):
        experiments.feature_caching_speedup(model, x, np.arange(64) % 2, epochs=1)
