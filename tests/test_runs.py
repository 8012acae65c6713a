"""tlbook.studies.runs: what every run of a study shares."""

import numpy as np
import pytest

from tlbook import data
from tlbook.studies import runs


def test_labelled_subset_draws_per_class_and_keeps_the_rest_for_validation():
    split = data.Split(np.zeros((12, 4, 4, 3), np.uint8), np.arange(12) % 3, ["a", "b", "c"])
    labelled, rest = runs.labelled_subset(split, 2, 0)
    assert labelled.counts().tolist() == [2, 2, 2] and len(rest) == 6
    again, _ = runs.labelled_subset(split, "2", 0)  # a budget read from a table's index
    np.testing.assert_array_equal(again.y, labelled.y)
    whole, none = runs.labelled_subset(split, "all", 0)
    assert whole is split and none is None
    with pytest.raises(ValueError):
        runs.labelled_subset(split, 5, 0)  # more than a class holds


def test_accuracy_on_is_the_share_of_images_classified_right():
    import keras

    inputs = keras.Input((2, 2, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).uniform(0, 255, (8, 2, 2, 3))
    predicted = model.predict(x.astype("float32"), verbose=0).argmax(axis=1)
    y = predicted.copy()
    y[:3] = 1 - y[:3]  # three wrong
    assert runs.accuracy_on(model, x, y) == pytest.approx(5 / 8)
