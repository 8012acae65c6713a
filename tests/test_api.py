"""The public API's conventions, as Keras and scikit-learn spell them: data first, every option
keyword-only after it, and one rule for seeds."""

import importlib
import inspect

import pytest

import tlbook

MODULES = [name.split(" ")[0] for name in tlbook.__doc__.split(":mod:`tlbook.")[1:]]
MODULES = [name.split("`")[0] for name in MODULES]

#: How many parameters each function takes by position: its data (and, for the builders and the
#: studies, the profile); every later parameter is keyword-only.
POSITIONAL = {
    "data.digits.place_digits": 1,
    "data.digits.make_task": 1,
    "data.sampling.sample_indices_per_class": 2,
    "data.sampling.sample_per_class": 2,
    "data.sampling.split_labelled": 2,
    "data.sampling.hold_out": 2,
    "data.digits.digits_splits": 2,
    "downloads.flowers_folder": 0,
    "backbones.small_cnn.build_small_cnn": 1,
    "backbones.small_cnn.build_classifier": 2,
    "backbones.controls.random_backbone": 1,
    "models.transfer.transfer_classifier": 2,
    "models.transfer.build_transfer_model": 1,
    "models.heads.article_head": 2,
    "training.repeating_dataset": 2,
    "training.fit_steps": 4,
    "models.transfer.scratch_model": 2,
    "models.transfer.pretrained_model": 2,
    "models.heads.head_model": 2,
    "training.fine_tune": 4,
    "workflow.transfer_steps": 3,
    "diagnostics.diagnosis.diagnose": 1,
    "diagnostics.checks.overfit_one_batch": 3,
    "diagnostics.checks.checklist": 4,
    "probes.probe_comparison": 3,
    "probes.project_2d": 1,
    "studies.results.cached_study": 3,
    "studies.tuning.tune_scratch": 1,
    "studies.label_budget.run_method": 6,
    "studies.arms.arm_steps": 2,
    "studies.arms.train_arm": 2,
    "studies.tuning.tune_arms": 1,
    "finetuning.layerwise_fit": 4,
    "finetuning.gradual_unfreeze": 4,
    "studies.label_budget.label_budget_study": 1,
    "studies.pitfalls.finetuning_pitfalls": 1,
    "experiments.fit_and_evaluate": 4,
    "experiments.weight_change_during_fit": 4,
    "experiments.feature_caching_speedup": 3,
    "plots.plot_projection": 3,
    "plots.plot_examples": 1,
    "plots.plot_trace": 1,
    "plots.plot_history": 1,
    "plots.plot_prediction_histogram": 2,
    "plots.plot_confusion": 3,
    "plots.plot_budget_curves": 1,
    "data.folders.load_image_folder": 1,
    "data.folders.load_image_folders": 1,
}


def _public_functions():
    for module_name in MODULES:
        module = importlib.import_module(f"tlbook.{module_name}")
        for name, function in vars(module).items():
            if not name.startswith("_") and inspect.isfunction(function) and function.__module__ == module.__name__:
                yield f"{module_name}.{name}", inspect.signature(function)


def _positional(signature):
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p for p in signature.parameters.values() if p.kind in kinds]


@pytest.mark.parametrize("qualified", sorted(POSITIONAL))
def test_options_are_keyword_only_after_the_data(qualified):
    signature = dict(_public_functions())[qualified]
    assert len(_positional(signature)) == POSITIONAL[qualified], signature


def test_no_public_function_takes_more_than_four_options_by_position():
    """Any other public function: at most four positional parameters, and an optional seed is never
    one of them (a required one, such as the seed that names one run of a study, is data)."""
    for qualified, signature in _public_functions():
        positional = _positional(signature)
        if qualified not in POSITIONAL:
            assert len(positional) <= 4, (qualified, signature)
        optional = [p.name for p in positional if p.default is not inspect.Parameter.empty]
        assert "seed" not in optional or qualified.startswith("config."), qualified


def test_one_rule_for_seed_defaults():
    """A function that takes a profile defaults to the profile's seed (None); any other to 0. (In
    tlbook.config, seed_everything and seeded take the seed itself as their data.)"""
    for qualified, signature in _public_functions():
        if "seed" not in signature.parameters or qualified.startswith("config."):
            continue
        if signature.parameters["seed"].default is inspect.Parameter.empty:
            continue  # a required seed: which run (studies.run_method)
        expected = None if "profile" in signature.parameters else 0
        assert signature.parameters["seed"].default == expected, (qualified, signature)


def test_options_passed_by_position_are_refused():
    from tlbook import data

    with pytest.raises(TypeError):
        data.sample_per_class(None, 2, 0)
