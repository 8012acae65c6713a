"""parse_keras_log (tlbook.diagnostics.logs) on the article's log and on real-looking logs of other Keras
versions, and diagnose on what it reads."""

import pytest
from hang_guard import no_hang

from tlbook import diagnostics as dx

BAR3_DONE = "\x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m"
BAR3_PART = "\x1b[32m━━━━━━\x1b[0m\x1b[37m━━━━━━━━━━━━━━\x1b[0m"


def keras3_log(epochs, evaluate=None, steps=12):
    """A Keras 3 verbose=1 log as a notebook captures it: colour codes, carriage returns, partial steps."""
    out = []
    for i, (loss, acc, vloss, vacc) in enumerate(epochs, 1):
        out.append(f"Epoch {i}/{len(epochs)}\n")
        out.append(
            f"\x1b[1m 4/{steps}\x1b[0m {BAR3_PART} \x1b[1m0s\x1b[0m 9ms/step - accuracy: {acc * 0.8:.4f} - loss: "
            f"{loss * 1.2:.4f}\r"
        )
        out.append(
            f"\x1b[1m{steps}/{steps}\x1b[0m {BAR3_DONE} \x1b[1m0s\x1b[0m 9ms/step - accuracy: {acc:.4f} - loss: "
            f"{loss:.4f}\r"
        )
        out.append(
            f"\x1b[1m{steps}/{steps}\x1b[0m {BAR3_DONE} \x1b[1m1s\x1b[0m 41ms/step - accuracy: {acc:.4f} - loss: "
            f"{loss:.4f}"
            f" - val_accuracy: {vacc:.4f} - val_loss: {vloss:.4f}\n"
        )
    if evaluate:
        out.append(f"\x1b[1m1/5\x1b[0m {BAR3_PART} \x1b[1m0s\x1b[0m 5ms/step - accuracy: 0.5000 - loss: 1.0000\r")
        out.append(
            f"\x1b[1m5/5\x1b[0m {BAR3_DONE} \x1b[1m0s\x1b[0m 5ms/step - accuracy: {evaluate[1]:.4f} - loss: "
            f"{evaluate[0]:.4f}\n"
        )
    return "".join(out)


def tf2_log(epochs, acc_name="accuracy", eta=True):
    """A tf.keras 2 log with ETA lines redrawn by backspaces."""
    out = []
    for i, (loss, acc, vloss, vacc) in enumerate(epochs, 1):
        out.append(f"Epoch {i}/{len(epochs)}\n")
        if eta:
            partial = f" 1/25 [>.............................] - ETA: 30s - loss: {loss + 0.3:.4f}"
            partial += f" - {acc_name}: {acc / 2:.4f}"
            out.append(partial + "\x08" * len(partial))
            partial = f"25/25 [==============================] - ETA: 0s - loss: {loss:.4f} - {acc_name}: {acc:.4f}"
            out.append(partial + "\x08" * len(partial))
        out.append(
            f"25/25 [==============================] - 2s 61ms/step - loss: {loss:.4f} - {acc_name}: {acc:.4f}"
            f" - val_loss: {vloss:.4f} - val_{acc_name}: {vacc:.4f}\n"
        )
    return "".join(out)


HEALTHY = [
    (1.45, 0.42, 1.02, 0.66),
    (0.88, 0.71, 0.71, 0.77),
    (0.61, 0.80, 0.55, 0.82),
    (0.47, 0.85, 0.47, 0.85),
    (0.40, 0.87, 0.44, 0.86),
]
OVERFIT = [
    (1.20, 0.55, 1.00, 0.62),
    (0.70, 0.78, 0.80, 0.70),
    (0.40, 0.88, 0.75, 0.72),
    (0.20, 0.95, 0.85, 0.71),
    (0.10, 0.98, 0.95, 0.70),
    (0.05, 0.99, 1.10, 0.69),
]


def codes(findings):
    return [f.code for f in findings]


def test_article_log_parses_verbatim():
    log = dx.parse_keras_log(dx.article_log())
    assert log.epochs == 10 and log.declared_epochs == 10 and log.epoch_numbers == tuple(range(1, 11))
    assert log.history["loss"][:2] == [2.3026, 2.3021] and log.history["accuracy"][0] == 0.1850
    assert set(log.history["val_accuracy"]) == {0.1875} and log.history["val_loss"][-1] == 2.3078
    assert log.evaluate == {"loss": 2.3082, "accuracy": 0.1875}  # the 460/460 line; "Test accuracy:" is print output


def test_keras3_notebook_log_with_progress_lines():
    log = dx.parse_keras_log(keras3_log(HEALTHY, evaluate=(0.4127, 0.8819)))
    assert log.epochs == 5 and log.history["val_accuracy"] == [h[3] for h in HEALTHY]
    assert log.history["loss"] == [h[0] for h in HEALTHY]  # the completed lines, not the partial ones
    assert log.evaluate == {"accuracy": 0.8819, "loss": 0.4127}
    findings = dx.diagnose(log, num_classes=5)
    assert codes(findings) == ["healthy"] and findings[0].severity == "ok"


def test_tf2_log_with_eta_and_backspaces_overfitting():
    log = dx.parse_keras_log(tf2_log(OVERFIT))
    assert log.epochs == 6 and log.evaluate is None and log.history["val_loss"] == [o[2] for o in OVERFIT]
    findings = dx.diagnose(log, num_classes=5)
    assert codes(findings) == ["overfitting"] and findings[0].severity == "warning"
    assert findings[0].evidence["best_epoch"] == 3


def test_old_keras_acc_names_and_sample_counts():
    text = "Using TensorFlow backend.\nTrain on 6000 samples, validate on 1000 samples\n" + tf2_log(
        HEALTHY, "acc", eta=False
    ).replace(" 61ms/step", "")
    log = dx.parse_keras_log(text)
    assert log.renamed == ("acc", "val_acc") and "accuracy" in log.history and "acc" not in log.history
    assert log.history["val_accuracy"][-1] == 0.86
    assert codes(dx.diagnose(log, num_classes=5)) == ["healthy"]


def test_log_without_validation_collapsed_run():
    text = "".join(
        f"Epoch {i}/4\n12/12 - 0s - 3ms/step - accuracy: {0.19 if i == 1 else 0.2:.4f} - loss: "
        f"{1.6094 - i * 1e-4:.4f}\n"
        for i in range(1, 5)
    )
    log = dx.parse_keras_log(text)
    assert sorted(log.history) == ["accuracy", "loss"] and log.epochs == 4
    findings = dx.diagnose(log, num_classes=5)
    assert codes(findings) == ["uniform-output", "frozen-accuracy", "no-progress", "at-chance"]


def test_cut_off_epoch_is_left_out_and_evaluate_only_log():
    text = keras3_log(HEALTHY[:3]) + "Epoch 4/5\n\x1b[1m 4/12\x1b[0m 0s 9ms/step - accuracy: 0.5 - loss: 0.9\r"
    assert dx.parse_keras_log(text).epochs == 3
    only = dx.parse_keras_log(
        "460/460 [==============================] - 7s 15ms/step - loss: 2.3082 - accuracy: 0.1875\n"
    )
    assert only.epochs == 0 and only.evaluate == {"loss": 2.3082, "accuracy": 0.1875}


@pytest.mark.parametrize("text", ["", "hello world", "Test accuracy: 0.1875", "Epoch 1/10\nEpoch 2/10\n"])
def test_unparseable_text_is_an_error_not_an_empty_success(text):
    with pytest.raises(ValueError, match="no Keras training log found"):
        dx.parse_keras_log(text)


def test_non_text_is_a_type_error():
    with pytest.raises(TypeError, match="as a string"):
        dx.parse_keras_log(b"Epoch 1/1")


@pytest.mark.parametrize("number", ["1" * 200_000, "1." + "1" * 200_000, "." + "1" * 200_000])
def test_a_pathological_line_is_read_in_linear_time(number):
    """A run of 200,000 digits not followed by a space: once quadratic in the run (4 s for 8,000
    digits), now a fraction of a second; the line is no metric, so the log has none."""
    with no_hang(), pytest.raises(ValueError):  # quadratic, it ran for about 45 minutes
        dx.parse_keras_log(f"Epoch 1/1\n1/1 - loss: {number}x")
    assert dx.parse_keras_log(f"Epoch 1/1\n1/1 - loss: {number}").history["loss"] == [float(number)]
