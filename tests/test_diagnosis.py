"""diagnose's rules (tlbook.diagnostics.diagnosis): the article's run, histories of every kind, and each finding."""

import math

import pytest
from test_logs import HEALTHY, codes

from tlbook import diagnostics
from tlbook import diagnostics as dx


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


def test_diagnose_reads_a_fit_and_evaluate_result_with_its_test_evaluation():
    from tlbook.experiments import FitResult

    history = {"loss": [1.6, 1.0, 0.6], "accuracy": [0.3, 0.6, 0.8]}
    run = FitResult(initial_loss=1.61, initial_accuracy=0.2, history=history, test_loss=math.log(5), test_accuracy=0.2)
    findings = diagnostics.diagnose(run, num_classes=5)
    assert findings == diagnostics.diagnose(history, num_classes=5, evaluate=run.evaluate)
    assert [f.evidence.get("series") for f in findings if f.code == "uniform-output"] == ["test loss"]
