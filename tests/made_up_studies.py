"""Studies made by hand for the tests of the studies' tables and caches: a scratch tuning, arm
rates and a label-budget study with known numbers (tests/test_label_budget.py,
tests/test_budget_tables.py)."""

from tlbook import studies


def scratch_tuning(steps=100):
    """A scratch tuning made by hand: two grid points, the first chosen."""
    grid = (studies.TuningPoint(1e-3, 100, 0.5), studies.TuningPoint(1e-3, 200, 0.49))
    return studies.ScratchTuning(grid=grid, validation_images=300, learning_rate=1e-3, steps=steps)


def arm_rates(steps=100, arms=("top block", "full")):
    """Arm rates made by hand: the head-only arm and ``arms``, one grid point each."""
    tuned = [
        studies.ArmTuning(arm, (studies.TuningPoint(rate, steps, 0.5),), 300, rate)
        for arm, rate in (("head only", 1e-3), *((arm, 1e-4) for arm in arms))
    ]
    return studies.ArmRates(scratch=scratch_tuning(steps), arms=tuple(tuned))


def budget_study():
    runs = []
    for b, accs in (
        (1, {"scratch": [0.2, 0.3], "head only": [0.5, 0.5], "full": [0.4, 0.6]}),
        (10, {"scratch": [0.5, 0.6], "head only": [0.8, 0.9], "full": [0.7, 0.7]}),
    ):
        for method, values in accs.items():
            for seed, a in enumerate(values):
                runs.append(
                    studies.BudgetRun(
                        method=method,
                        labels_per_class=b,
                        seed=seed,
                        accuracy=a,
                        seconds=1.0,
                        curve=((0.5, a / 2), (1.0 + seed, a)),
                    )
                )
    return studies.LabelBudgetStudy(rates=arm_rates(), runs=tuple(runs), curve_budgets=(1, 10))
