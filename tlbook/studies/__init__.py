"""The studies of chapters 6 and 7: many training runs, seeded, cached, summarised.

- :mod:`tlbook.studies.label_budget` - ``label_budget_study``: every arm for each label budget and
  seed (Chapter 7), a ``LabelBudgetStudy`` of ``BudgetRun``;
- :mod:`tlbook.studies.budget_tables` - reading that study: its tables and paired intervals
  (``budget_table``, ``paired_table``, ``interval_strings``, ``transfer_gain``, ``gain_interval``,
  ``regime_table``, ``time_to_accuracy``);
- :mod:`tlbook.studies.arms` - the arms themselves (``ARMS``: scratch, head only, AdaBN, top block,
  early layers, full, gradual), each trained by ``train_arm`` for ``arm_steps`` steps;
- :mod:`tlbook.studies.tuning` - ``tune_scratch``: the scratch baseline's learning rate and steps,
  chosen on a validation split by ``one_standard_error_choice``, a ``ScratchTuning`` of ``TuningPoint``;
  ``tune_arms``: every other arm's learning rate by the same rule, an ``ArmRates`` of ``ArmTuning``
  (``rates_table``); ``BOOK_CHOICES``: Chapter 7's choices, fixed in advance;
- :mod:`tlbook.studies.pitfalls` - ``finetuning_pitfalls``: each classic fine-tuning mistake
  against the right way (Chapter 6), a ``PitfallStudy`` of ``PitfallRun``, and ``pitfall_table``;
- :mod:`tlbook.studies.results` - ``cached_study``: each study computed once per setting and cached
  (as JSON: each result dataclass has ``to_json`` and ``from_json``);
- :mod:`tlbook.studies.pool` - running a study's runs here or in worker processes (``n_jobs``), with
  the same bits either way;
- :mod:`tlbook.studies.runs` - what every run shares: its labelled images and its accuracy.

Every name above is importable from ``tlbook.studies`` itself (``studies.label_budget_study(...)``).
"""

from tlbook.studies.arms import ADAPTED, ARMS, HEAD_RATE_FACTOR, UNFREEZE, ArmData, arm_steps, train_arm
from tlbook.studies.budget_tables import (
    REGIME_COMPARISONS,
    Gain,
    GainInterval,
    TimeToAccuracy,
    budget_table,
    gain_interval,
    interval_strings,
    paired_table,
    regime_table,
    time_to_accuracy,
    transfer_gain,
)
from tlbook.studies.label_budget import METHODS, BudgetRun, LabelBudgetStudy, label_budget_study, run_method
from tlbook.studies.pitfalls import PITFALLS, PitfallRun, PitfallStudy, finetuning_pitfalls, pitfall_table
from tlbook.studies.pool import (
    check_n_jobs,
    forget_on_failure,
    keep_result,
    kept_models,
    reuse_model,
    run_all,
    stop_workers,
)
from tlbook.studies.results import cached_study
from tlbook.studies.runs import accuracy_on, labelled_subset
from tlbook.studies.tuning import (
    BOOK_CHOICES,
    ArmRates,
    ArmTuning,
    ScratchTuning,
    TuningPoint,
    one_standard_error_choice,
    rates_table,
    tune_arms,
    tune_scratch,
)

__all__ = [
    "METHODS",
    "BudgetRun",
    "Gain",
    "GainInterval",
    "LabelBudgetStudy",
    "PITFALLS",
    "PitfallRun",
    "PitfallStudy",
    "ScratchTuning",
    "TimeToAccuracy",
    "TuningPoint",
    "budget_table",
    "cached_study",
    "finetuning_pitfalls",
    "gain_interval",
    "label_budget_study",
    "one_standard_error_choice",
    "pitfall_table",
    "run_method",
    "paired_table",
    "interval_strings",
    "REGIME_COMPARISONS",
    "regime_table",
    "time_to_accuracy",
    "transfer_gain",
    "tune_scratch",
    "ArmRates",
    "ArmTuning",
    "tune_arms",
    "rates_table",
    "BOOK_CHOICES",
    # arms
    "ADAPTED",
    "ARMS",
    "HEAD_RATE_FACTOR",
    "UNFREEZE",
    "ArmData",
    "arm_steps",
    "train_arm",
    # pool
    "run_all",
    "check_n_jobs",
    "reuse_model",
    "forget_on_failure",
    "kept_models",
    "keep_result",
    "stop_workers",
    # runs
    "labelled_subset",
    "accuracy_on",
]
