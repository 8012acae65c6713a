"""What a model that learned nothing scores (tlbook.diagnostics.chance): ln K, chance 1/K, class shares."""

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


def test_accuracy_standard_error_is_the_binomial_one():
    from tlbook.diagnostics import accuracy_standard_error

    assert accuracy_standard_error(0.5, 400) == pytest.approx(0.025)
    assert accuracy_standard_error(1.0, 66) == 0.0
    with pytest.raises(ValueError, match="fraction in"):
        accuracy_standard_error(1.5, 10)
    with pytest.raises(ValueError, match="n_images must be a positive integer"):
        accuracy_standard_error(0.5, 0)


@pytest.mark.parametrize(
    "loss, verdict",
    [
        (math.log(10), "as expected"),
        (2.1, "as expected"),  # 0.91 ln K: within the 10 %
        (2.5, "as expected"),
        (2.6, "too high"),  # 1.13 ln K
        (6.0, "too high"),
        (2.0, "too low"),  # 0.87 ln K
        (0.4, "too low"),
    ],
)
def test_check_initial_loss_verdicts(loss, verdict):
    check = diagnostics.check_initial_loss(loss, 10)
    assert check.verdict == verdict and check.ok == (verdict == "as expected")
    assert check.expected == pytest.approx(2.302585, abs=1e-6) and check.ratio == pytest.approx(loss / math.log(10))
    text = str(check)
    assert all(len(line) <= diagnostics.TEXT_WIDTH for line in text.splitlines())  # fits the page
    one_line = " ".join(text.split())
    assert f"{loss:.4f}" in one_line and "ln K = 2.3026" in one_line and check.advice in one_line


@pytest.mark.parametrize(
    "args, match",
    [((float("nan"), 5), "finite"), ((-1.0, 5), "finite"), ((1.0, 1), "K >= 2"), ((1.0, 5, 1.5), "rel_tol")],
)
def test_check_initial_loss_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        diagnostics.check_initial_loss(*args)
