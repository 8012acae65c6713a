import math

import numpy as np
import pytest

from tlbook import diagnostics


def test_uniform_guess_loss_is_ln_k():
    assert diagnostics.uniform_guess_loss(10) == pytest.approx(2.302585, abs=1e-6)
    assert diagnostics.uniform_guess_loss(2) == pytest.approx(math.log(2))


def test_uniform_guess_loss_matches_cross_entropy_of_uniform_predictions():
    labels = np.random.default_rng(0).integers(0, 7, size=50)
    uniform = np.full((50, 7), 1 / 7)
    assert diagnostics.cross_entropy(uniform, labels) == pytest.approx(diagnostics.uniform_guess_loss(7))


def test_chance_accuracy():
    assert diagnostics.chance_accuracy(10) == 0.1
    assert diagnostics.chance_accuracy(4) == 0.25


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, True, "10"])
def test_k_below_two_is_rejected(bad):
    with pytest.raises(ValueError, match="K >= 2"):
        diagnostics.uniform_guess_loss(bad)
    with pytest.raises(ValueError, match="K >= 2"):
        diagnostics.chance_accuracy(bad)


def test_constant_predictor_scores_its_class_share():
    counts = [6, 10, 16]  # 32 examples; class 0 holds 6/32 = 0.1875
    assert diagnostics.constant_predictor_accuracy(counts, 0) == 0.1875
    labels = np.repeat([0, 1, 2], counts)
    assert np.mean(labels == 0) == diagnostics.constant_predictor_accuracy(counts, 0)
    assert diagnostics.majority_baseline(counts) == 0.5
    with pytest.raises(ValueError, match=r"0\.\.2"):
        diagnostics.constant_predictor_accuracy(counts, 3)


@pytest.mark.parametrize("bad", [[5], [0, 0], [-1, 3], [1, float("nan")], [[1, 2], [3, 4]]])
def test_bad_class_distributions(bad):
    with pytest.raises(ValueError, match="class"):
        diagnostics.class_shares(bad)


def test_baselines_dict():
    b = diagnostics.baselines([1, 1, 2])
    assert b["num_classes"] == 3
    assert b["uniform_guess_loss"] == pytest.approx(math.log(3))
    assert b["chance_accuracy"] == pytest.approx(1 / 3)
    assert b["majority_baseline"] == 0.5 and b["constant_accuracy_min"] == 0.25


def test_cross_entropy_counts_absent_classes_and_checks_shapes():
    p = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]])
    assert diagnostics.cross_entropy(p, [0, 0]) == pytest.approx(-(math.log(0.7) + math.log(0.6)) / 2)
    with pytest.raises(ValueError, match="one label per row"):
        diagnostics.cross_entropy(p, [0])


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


def test_accuracy_standard_error_is_the_binomial_one():
    from tlbook.diagnostics import accuracy_standard_error

    assert accuracy_standard_error(0.5, 400) == pytest.approx(0.025)
    assert accuracy_standard_error(1.0, 66) == 0.0
    with pytest.raises(ValueError, match="fraction in"):
        accuracy_standard_error(1.5, 10)
    with pytest.raises(ValueError, match="n_images must be a positive integer"):
        accuracy_standard_error(0.5, 0)


def test_findings_print_wrapped_to_the_page_width():
    dx = diagnostics
    finding = dx.Finding("uniform-output", "failure", "word " * 60 + "a-very-long-unbreakable-token" * 4, {})
    lines = str(finding).splitlines()
    assert len(lines) > 2 and lines[0].startswith("[failure] uniform-output: word")
    assert all(len(line) <= dx.TEXT_WIDTH for line in lines[:-1])  # only an unbreakable word may run over
    assert all(line.startswith("  ") for line in lines[1:])
    assert " ".join(str(finding).split()) == f"[failure] uniform-output: {' '.join(finding.message.split())}"
    assert dx.wrap("short") == "short"
    log = "Epoch 1/2\n" + "loss: 2.3026 - " * 10 + "\nEpoch 2/2"
    wrapped = dx.wrap(log).splitlines()
    assert wrapped[0] == "Epoch 1/2" and wrapped[-1] == "Epoch 2/2"  # the log's own line breaks stay
    assert len(wrapped) > 3 and all(len(line) <= dx.TEXT_WIDTH for line in wrapped)


def test_diagnose_reads_a_fit_and_evaluate_result_with_its_test_evaluation():
    from tlbook.experiments import FitResult

    history = {"loss": [1.6, 1.0, 0.6], "accuracy": [0.3, 0.6, 0.8]}
    run = FitResult(initial_loss=1.61, initial_accuracy=0.2, history=history, test_loss=math.log(5), test_accuracy=0.2)
    findings = diagnostics.diagnose(run, num_classes=5)
    assert findings == diagnostics.diagnose(history, num_classes=5, evaluate=run.evaluate)
    assert [f.evidence.get("series") for f in findings if f.code == "uniform-output"] == ["test loss"]
