"""parse_keras_log and diagnose on the article's log and on real-looking logs of other Keras versions."""

import math

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


def test_article_log_is_diagnosed_as_a_failure():
    findings = dx.diagnose(dx.parse_keras_log(dx.article_log()), num_classes=10)
    assert codes(findings) == ["uniform-output", "frozen-accuracy", "no-progress"]
    assert all(f.severity == "failure" for f in findings)
    assert "ln K = 2.3026" in findings[0].message and findings[0].evidence["reference"] == pytest.approx(math.log(10))
    assert findings[1].evidence["same_on"] == ["validation", "test"]


def test_at_chance_needs_the_class_shares_for_the_article():
    log = dx.parse_keras_log(dx.article_log())
    # with K alone 0.1875 is above chance (0.10); a class share of 3/16 makes it the majority baseline
    assert "at-chance" not in codes(dx.diagnose(log, num_classes=10))
    counts = [27] + [13] * 9  # 27/144 = 0.1875
    findings = dx.diagnose(log, class_counts=counts)
    assert "at-chance" in codes(findings)
    at = next(f for f in findings if f.code == "at-chance")
    assert at.evidence["baseline"] == pytest.approx(0.1875) and "majority baseline" in at.message


def test_no_ln_k_claim_without_k():
    findings = dx.diagnose(dx.parse_keras_log(dx.article_log()))
    assert codes(findings) == ["frozen-accuracy", "no-progress"]
    assert not any("ln K" in f.message or "chance" in f.message for f in findings)


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


def test_diagnose_accepts_history_objects_and_checks_its_input():
    class History:  # what model.fit returns: an object with a .history dict
        history = {"loss": [h[0] for h in HEALTHY], "acc": [h[1] for h in HEALTHY]}

    assert codes(dx.diagnose(History(), num_classes=5)) == ["healthy"]
    with pytest.raises(ValueError, match="no 'loss' values"):
        dx.diagnose({"accuracy": [0.5]})
    with pytest.raises(ValueError, match="num_classes=5 but class_counts lists 3"):
        dx.diagnose({"loss": [1.0]}, num_classes=5, class_counts=[1, 2, 3])
    with pytest.raises(TypeError, match="history dict"):
        dx.diagnose([1.0, 0.5])


def test_healthy_short_run_raises_no_alarm():
    # two epochs of a run that learns: nothing to flag, even with tight class information
    findings = dx.diagnose({"loss": [1.2, 0.6], "accuracy": [0.5, 0.8]}, class_counts=[10, 10, 10, 10, 10])
    assert codes(findings) == ["healthy"] and "chance" in findings[0].message


def test_shares_entropy_and_findings_table():
    assert dx.shares_entropy([1, 1, 1, 1]) == pytest.approx(math.log(4))
    p, q = 27 / 144, 13 / 144
    assert dx.shares_entropy([27] + [13] * 9) == pytest.approx(-(p * math.log(p) + 9 * q * math.log(q)))
    table = dx.findings_table(dx.diagnose(dx.parse_keras_log(dx.article_log()), num_classes=10))
    assert list(table.columns) == ["code", "severity", "message"] and len(table) == 3


@pytest.mark.parametrize("number", ["1" * 200_000, "1." + "1" * 200_000, "." + "1" * 200_000])
def test_a_pathological_line_is_read_in_linear_time(number):
    """A run of 200,000 digits not followed by a space: once quadratic in the run (4 s for 8,000
    digits), now a fraction of a second; the line is no metric, so the log has none."""
    with no_hang(), pytest.raises(ValueError):  # quadratic, it ran for about 45 minutes
        dx.parse_keras_log(f"Epoch 1/1\n1/1 - loss: {number}x")
    assert dx.parse_keras_log(f"Epoch 1/1\n1/1 - loss: {number}").history["loss"] == [float(number)]


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_is_the_one_finding(bad):
    """Before: nan compared false everywhere and the run was called healthy."""
    history = {"loss": [2.0, 1.5, bad, bad], "accuracy": [0.3, 0.4, 0.1, 0.1]}
    findings = dx.diagnose(history, num_classes=10)
    assert [f.code for f in findings] == ["non-finite"] and findings[0].evidence["index"] == 3
    assert "Lower the learning rate" in findings[0].message
    # a nan validation or test loss too
    findings = dx.diagnose({"loss": [2.0, 1.0, 0.5], "val_loss": [1.9, bad, 0.6]}, num_classes=10)
    assert [f.code for f in findings] == ["non-finite"] and findings[0].evidence["series"] == "validation loss"
    findings = dx.diagnose({"loss": [2.0, 1.0, 0.5]}, num_classes=10, evaluate={"loss": bad, "accuracy": 0.1})
    assert [f.code for f in findings] == ["non-finite"] and findings[0].evidence["series"] == "test loss"


def test_a_diverging_loss_is_the_one_finding():
    findings = dx.diagnose({"loss": [2.3, 4.0, 9.5, 41.0], "accuracy": [0.2, 0.1, 0.1, 0.1]}, num_classes=10)
    assert [f.code for f in findings] == ["diverged"]
    # a loss that rose and came back down is not diverging, nor a tiny loss that moves by 0.01
    assert "diverged" not in {f.code for f in dx.diagnose({"loss": [2.3, 5.0, 1.0, 0.9]}, num_classes=10)}
    assert "diverged" not in {f.code for f in dx.diagnose({"loss": [0.010, 0.008, 0.021]}, num_classes=10)}


def test_a_loss_at_ln_k_with_an_accuracy_no_constant_answer_reaches_is_not_uniform_output():
    """Near-uniform probabilities (a large softmax temperature, label smoothing) with the right class
    on top 90 % of the time: the answer depends on the image, whatever the loss says."""
    ln10 = math.log(10)
    history = {"loss": [2.31, 2.305, ln10], "accuracy": [0.5, 0.8, 0.9]}
    assert "uniform-output" not in {f.code for f in dx.diagnose(history, num_classes=10)}
    # the article's run: the same loss at 0.1875, which a constant answer can score, is uniform output
    history["accuracy"] = [0.1875] * 3
    assert "uniform-output" in {f.code for f in dx.diagnose(history, num_classes=10)}
    # with class counts, the bound is the largest share: 0.30 is above a 0.25 share, 0.25 is not
    history = {"loss": [1.40, 1.39, math.log(4)], "accuracy": [0.3] * 3}
    counts = [25, 25, 25, 25]
    assert "uniform-output" not in {f.code for f in dx.diagnose(history, class_counts=counts)}
    history["accuracy"] = [0.25] * 3
    assert "uniform-output" in {f.code for f in dx.diagnose(history, class_counts=counts)}


def test_validation_every_second_epoch_is_placed_on_its_epochs():
    """Keras's validation_freq=2: 3 validation values for 6 epochs, after epochs 2, 4 and 6. The
    lowest validation loss is epoch 2's; the run overfits from there."""
    history = {
        "loss": [1.0, 0.7, 0.5, 0.35, 0.25, 0.15],
        "accuracy": [0.6, 0.7, 0.8, 0.88, 0.93, 0.97],
        "val_loss": [0.8, 0.9, 1.1],
        "val_accuracy": [0.7, 0.68, 0.66],
    }
    (finding,) = [f for f in dx.diagnose(history, num_classes=2) if f.code == "overfitting"]
    assert finding.evidence["best_epoch"] == 2 and finding.evidence["best_val_loss"] == 0.8
    assert "lowest at epoch 2 (0.8000) and is 1.1000 at epoch 6" in finding.message
    assert finding.evidence["gap"] == pytest.approx(0.97 - 0.66)
    # values that cannot be placed (5 epochs, 4 values) are read alone: one uptick after the best
    # is not overfitting, two are
    history = {"loss": [1.0, 0.8, 0.6, 0.5, 0.4], "val_loss": [1.0, 0.8, 0.7, 0.74]}
    assert "overfitting" not in {f.code for f in dx.diagnose(history, num_classes=2)}
    history["val_loss"] = [1.0, 0.7, 0.74, 0.8]
    (finding,) = [f for f in dx.diagnose(history, num_classes=2) if f.code == "overfitting"]
    assert "lowest at validation 2 of 4 (0.7000) and is 0.8000 at the last one" in finding.message
