"""tlbook.training: the recipes of chapters 6-7, BatchNorm handling, and MirroredStrategy."""

import itertools
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from tlbook import data, models, training
from tlbook import diagnostics as dx


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    y = np.arange(20) % 2
    x = (rng.uniform(0, 155, (20, 16, 16, 3)) + 100 * y[:, None, None, None]).astype("float32")
    return x, y


def test_repeating_dataset_batches_and_checks(batch):
    x, y = batch
    ds = training.repeating_dataset(x, y, batch_size=8, seed=1)
    first = [b[1].numpy() for b in itertools.islice(ds, 5)]
    assert [len(b) for b in first] == [8] * 5  # it repeats past the 20 images
    assert len(next(iter(training.repeating_dataset(x[:3], y[:3], batch_size=32)))[0]) == 3
    with pytest.raises(ValueError, match="same, non-zero number"):
        training.repeating_dataset(x[:0], y[:0])


def test_fit_steps_chunks_and_initial_epoch(batch):
    model = models.build_transfer_model(2, backbone="small_cnn", weights=None, input_shape=(16, 16, 3), head_units=8)
    history = training.fit_steps(model, *batch, steps=6, chunk=2, validation=batch)
    assert len(history["loss"]) == 3 and len(history["val_accuracy"]) == 3
    more = training.fit_steps(model, *batch, steps=2, chunk=2, initial_epoch=3)
    assert len(more["loss"]) == 1
    with pytest.raises(ValueError, match="multiple of chunk"):
        training.fit_steps(model, *batch, steps=5, chunk=2)


def test_unfrozen_batchnorm_runs_in_training_mode_despite_training_false(tiny_profile, tiny_source_cache, batch):
    # the Keras 3 behaviour chapter 6 measures: fit overrides base(x, training=False)
    model = models.pretrained_model(5, tiny_profile)
    x = np.repeat(batch[0], 1, axis=0)
    models.set_trainable(model.get_layer("base"), "conv3", keep_batchnorm_frozen=False)
    assert dx.batchnorm_report(model, x)["updates statistics in fit"].tolist() == [False, False, True]
    models.set_trainable(model.get_layer("base"), "conv3")
    assert not dx.batchnorm_report(model, x)["updates statistics in fit"].any()


def test_fine_tune_two_phases_and_the_recompile_mistake(tiny_profile, tiny_source_cache):
    task = data.target_task(tiny_profile)
    lab = data.sample_per_class(task.train, 4, seed=0)
    model = models.pretrained_model(5, tiny_profile)
    before = [w.copy() for w in model.get_layer("base").get_layer("conv3").get_weights()]
    result = training.fine_tune(
        model, lab.x, lab.y, (task.test.x[:40], task.test.y[:40]), head_steps=4, finetune_steps=4, chunk=2
    )
    assert result.finetune_start == 3 and len(result.history["loss"]) == 4 and len(result.history["val_loss"]) == 4
    assert not np.array_equal(before[0], model.get_layer("base").get_layer("conv3").get_weights()[0])
    lazy = models.pretrained_model(5, tiny_profile)
    training.fit_steps(lazy, lab.x, lab.y, 2)
    before = lazy.get_layer("base").get_layer("conv3").get_weights()[0].copy()
    training.fine_tune(lazy, lab.x, lab.y, head_steps=0, finetune_steps=2, chunk=2, recompile=False)
    np.testing.assert_array_equal(before, lazy.get_layer("base").get_layer("conv3").get_weights()[0])


def test_recalibrate_batchnorm_sets_population_statistics(batch):
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(inputs))
    x = np.asarray(batch[0], dtype="float32")
    assert training.recalibrate_batchnorm(model, x, batch_size=8) == 1  # 3 batches: 8, 8, 4 images
    bn = model.get_layer("bn")
    # the mean over every pixel of every image, whatever the batches: the population statistic
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(axis=(0, 1, 2)), rtol=1e-5)
    assert bn.momentum == 0.99  # restored
    training.recalibrate_batchnorm(model, x, batch_size=len(x))  # one batch: the variance is exact too
    np.testing.assert_allclose(bn.moving_variance.numpy(), x.var(axis=(0, 1, 2)), rtol=1e-4)
    assert (
        training.recalibrate_batchnorm(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), np.ones((2, 3)))
        == 0
    )


MIRRORED = textwrap.dedent('''
    import dataclasses, json
    import tlbook
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tlbook import data, models, training
    from tlbook.config import get_profile
    profile = dataclasses.replace(get_profile("quick"), image_size=16, digit_size=(8, 12), source_epochs=1,
                                  source_rotations=1, source_copies=1)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    task = data.target_task(profile)
    lab = data.sample_per_class(task.train, 4, seed=0)
    scratch = models.scratch_model(5, profile, strategy=strategy)
    validation = (task.test.x[:20].astype("float32"), task.test.y[:20])
    history = training.fit_steps(scratch, lab.x, lab.y, 4, chunk=2, validation=validation)
    model = models.pretrained_model(5, profile, strategy=strategy)
    result = training.fine_tune(model, lab.x, lab.y, head_steps=2, finetune_steps=2, chunk=2, strategy=strategy)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                      "variable": type(scratch.get_layer("head").kernel.value).__name__,
                      "scratch_loss": history["loss"], "finetune_loss": result.history["loss"]}))
''')


@pytest.mark.slow
def test_training_functions_run_under_mirrored_strategy_on_two_cpus(tiny_source_cache):
    # The script's profile is tests/conftest.py's tiny one: its source-pretrained classifier, trained
    # once per test process, is in the script's cache, so pretrained_model loads it (under the
    # strategy) instead of spending seconds of CPU pretraining it again in the new process.
    env = {**os.environ, "TLBOOK_CACHE": str(tiny_source_cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    models_before = sorted(path.name for path in (tiny_source_cache / "source").iterdir())
    done = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, env=env, timeout=600)
    # the script's profile is the fixture's: it loaded that model, and pretrained no other
    assert sorted(path.name for path in (tiny_source_cache / "source").iterdir()) == models_before != []
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2 and out["variable"] == "MirroredVariable"
    assert len(out["scratch_loss"]) == 2 and len(out["finetune_loss"]) == 2
    assert all(np.isfinite(out["scratch_loss"] + out["finetune_loss"]))
