"""tlbook.studies.tuning: the scratch baseline's learning rate and steps, chosen on validation."""

import pytest

from tlbook import studies


def _grid(accuracies):
    return [{"learning_rate": lr, "steps": steps, "validation_accuracy": a} for (lr, steps), a in accuracies.items()]


def test_one_standard_error_choice_takes_the_fewest_steps_within_the_noise():
    # 400 images at p = 0.5: one standard error is 0.025
    flat = _grid({(1e-3, 100): 0.49, (1e-3, 200): 0.50, (3e-3, 100): 0.48, (3e-3, 200): 0.49})
    assert studies.one_standard_error_choice(flat, 400) == flat[2]  # 100 steps; the larger rate among them
    # a clear winner (three standard errors ahead) is taken, even with more steps
    clear = _grid({(1e-3, 100): 0.40, (1e-3, 300): 0.55, (3e-3, 100): 0.42})
    assert studies.one_standard_error_choice(clear, 400) == clear[1]
    # the choice does not move when the best accuracy moves in the third decimal
    nudged = _grid({(1e-3, 100): 0.49, (1e-3, 200): 0.503, (3e-3, 100): 0.48, (3e-3, 200): 0.489})
    assert studies.one_standard_error_choice(nudged, 400)["steps"] == 100
    # few images: a wider margin
    assert studies.one_standard_error_choice(clear, 10)["steps"] == 100
    with pytest.raises(ValueError, match="empty"):
        studies.one_standard_error_choice([], 400)
    with pytest.raises(ValueError, match="n_images"):
        studies.one_standard_error_choice(flat, 0)
