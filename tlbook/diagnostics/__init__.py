"""Reading a training run: what a model that learned nothing scores, what a printed log says, what
went wrong, and what to check in the model and its data.

One idea per submodule, in the order a learner meets them:

- :mod:`tlbook.diagnostics.chance` - what a model that learned nothing scores: ln K, chance 1/K,
  a constant predictor's class share, the majority baseline (the :func:`baselines
  <tlbook.diagnostics.chance.baselines>`); the loss to expect before training;
- :mod:`tlbook.diagnostics.logs` - a printed Keras training log read back into per-epoch numbers;
- :mod:`tlbook.diagnostics.diagnosis` - the rules that read a run and say what is wrong with it
  (:func:`~tlbook.diagnostics.diagnosis.diagnose`);
- :mod:`tlbook.diagnostics.checks` - the checks that look at a model and its data, one by one
  or all in one table (:func:`~tlbook.diagnostics.checks.checklist`, "your accuracy is frozen:
  what to check");
- :mod:`tlbook.diagnostics.text` - printed advice wrapped to the width of the page.

Every public name of the submodules is importable from here too (``from tlbook import
diagnostics as dx; dx.diagnose(...)``). Importing this package does not import TensorFlow: the
checks that need a model import it when they run.
"""

from tlbook.diagnostics.chance import (
    InitialLossCheck,
    accuracy_standard_error,
    baselines,
    chance_accuracy,
    check_initial_loss,
    check_num_classes,
    class_shares,
    constant_predictor_accuracy,
    cross_entropy,
    majority_baseline,
    shares_entropy,
    uniform_guess_loss,
)
from tlbook.diagnostics.checks import (
    base_feature_spread,
    batchnorm_report,
    check_labels,
    checklist,
    feature_spread,
    input_statistics,
    most_confident_mistakes,
    overfit_one_batch,
    prediction_histogram,
)
from tlbook.diagnostics.diagnosis import SEVERITIES, Finding, diagnose, findings_table
from tlbook.diagnostics.logs import METRIC_ALIASES, TrainingLog, article_log, parse_keras_log
from tlbook.diagnostics.text import TEXT_WIDTH, wrap

__all__ = [
    # chance
    "check_num_classes",
    "class_shares",
    "uniform_guess_loss",
    "chance_accuracy",
    "accuracy_standard_error",
    "constant_predictor_accuracy",
    "majority_baseline",
    "cross_entropy",
    "baselines",
    "shares_entropy",
    "InitialLossCheck",
    "check_initial_loss",
    # logs
    "METRIC_ALIASES",
    "TrainingLog",
    "parse_keras_log",
    "article_log",
    # diagnosis
    "SEVERITIES",
    "Finding",
    "diagnose",
    "findings_table",
    # checks
    "input_statistics",
    "prediction_histogram",
    "feature_spread",
    "base_feature_spread",
    "check_labels",
    "overfit_one_batch",
    "batchnorm_report",
    "checklist",
    "most_confident_mistakes",
    # text
    "TEXT_WIDTH",
    "wrap",
]
