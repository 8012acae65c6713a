import re

import numpy as np
import pytest

from tlbook import data, workflow


def test_mermaid_has_the_article_nodes_edges_and_loop():
    text = workflow.to_mermaid()
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "graph TB"
    for node_id, zh in {
        "A": "选择预训练模型",
        "B": "微调模型",
        "C": "评估模型性能",
        "E": "调整模型",
        "F": "结束",
    }.items():
        assert any(re.fullmatch(rf'{node_id}\["{zh}<br/>[^"]+"\]', line) for line in lines), node_id
    assert 'D{"是否继续调整<br/>Keep adjusting?"}' in lines
    edges = {line for line in lines if "-->" in line}
    assert edges == {"A --> B", "B --> C", "C --> D", 'D -->|"是 yes"| E', 'D -->|"否 no"| F', "E --> B"}
    assert workflow.to_mermaid(direction="LR").startswith("graph LR")
    with pytest.raises(ValueError, match="direction"):
        workflow.to_mermaid(direction="up")


def counting_steps(values, log, metric="val_accuracy"):
    """Fake steps whose evaluation returns the next value of ``values``."""
    it = iter(values)
    return {
        "select": lambda: log.append("select") or {"n": 0},
        "finetune": lambda s, r: log.append(f"finetune{r}") or s,
        "evaluate": lambda s: {metric: next(it)},
        "adjust": lambda s, r: (s, f"adjustment {r}"),
    }


def test_runner_follows_the_graph_and_stops_at_target():
    log = []
    trace = workflow.run_workflow(
        counting_steps([0.5, 0.8, 0.95, 0.99], log), workflow.StoppingRule(target=0.9, max_rounds=10)
    )
    assert [r.metrics["val_accuracy"] for r in trace.rounds] == [0.5, 0.8, 0.95]
    assert [r.keep_adjusting for r in trace.rounds] == [True, True, False]
    assert trace.rounds[-1].reason.startswith("target reached")
    assert [r.action for r in trace.rounds] == ["initial model", "adjustment 1", "adjustment 2"]
    assert log == ["select", "finetune1", "finetune2", "finetune3"]
    assert trace.path[:5] == ["select", "finetune", "evaluate", "decide", "adjust"]
    assert trace.path[-2:] == ["decide", "end"]
    frame = trace.to_frame()
    assert list(frame["decision"]) == ["adjust", "adjust", "stop"]


def test_budget_and_patience():
    trace = workflow.run_workflow(counting_steps([0.1, 0.2, 0.3, 0.4], []), workflow.StoppingRule(max_rounds=3))
    assert len(trace.rounds) == 3 and trace.rounds[-1].reason == "budget spent: 3 of 3 rounds"
    trace = workflow.run_workflow(
        counting_steps([0.5, 0.7, 0.69, 0.7, 0.9], []), workflow.StoppingRule(max_rounds=9, patience=2)
    )
    assert len(trace.rounds) == 4 and trace.rounds[-1].reason.startswith("no improvement")
    trace = workflow.run_workflow(
        counting_steps([2.0, 1.0, 0.4], [], "val_loss"),
        workflow.StoppingRule("val_loss", max_rounds=9, target=0.5, mode="min"),
    )
    assert len(trace.rounds) == 3 and "≤" in trace.rounds[-1].reason


def test_missing_unknown_and_uncallable_steps():
    steps = counting_steps([0.5], [])
    del steps["adjust"]
    with pytest.raises(ValueError, match="missing: adjust"):
        workflow.run_workflow(steps, workflow.StoppingRule())
    steps = counting_steps([0.5], [])
    steps["deploy"] = lambda s: s
    with pytest.raises(ValueError, match="unknown: deploy"):
        workflow.run_workflow(steps, workflow.StoppingRule())
    steps = counting_steps([0.5], [])
    steps["evaluate"] = 3
    with pytest.raises(ValueError, match="not functions: evaluate"):
        workflow.run_workflow(steps, workflow.StoppingRule())


def test_evaluation_without_the_watched_metric():
    steps = counting_steps([0.5], [])
    steps["evaluate"] = lambda s: {"loss": 1.0}
    with pytest.raises(ValueError, match="no 'val_accuracy'"):
        workflow.run_workflow(steps, workflow.StoppingRule())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_rounds=0), "max_rounds"),
        (dict(max_rounds=None), "max_rounds"),
        (dict(target=1.5), "never be reached"),
        (dict(target=-0.1), "never be reached"),
        (dict(metric="val_loss", target=-1.0, mode="min"), "never be reached"),
        (dict(target=float("nan")), "finite"),
        (dict(patience=0), "patience"),
        (dict(min_delta=-0.1), "min_delta"),
        (dict(mode="up"), "mode"),
        (dict(target=0.5, mode="min"), "mode='max'"),
    ],
)
def test_impossible_stopping_rules(kwargs, message):
    with pytest.raises(ValueError, match=message):
        workflow.StoppingRule(**kwargs)


@pytest.mark.slow
def test_transfer_steps_real_run(tiny_profile, tiny_source_cache):
    task = data.target_task(tiny_profile)
    train = data.sample_per_class(task.train, 5, seed=0)
    steps = workflow.transfer_steps(train, task.test, tiny_profile, epochs_per_round=2, adjustments=(("conv3", 1e-4),))
    trace = workflow.run_workflow(steps, workflow.StoppingRule(max_rounds=3))
    assert len(trace.rounds) == 3
    assert trace.rounds[1].action.startswith("unfreeze backbone from conv3")
    assert trace.rounds[2].action.startswith("train on unchanged")
    for r in trace.rounds:
        assert 0 <= r.metrics["val_accuracy"] <= 1 and np.isfinite(r.metrics["val_loss"])
    model, best = workflow.best_model(trace)  # back to the best round's weights
    assert best == trace.best_round()
    loss, accuracy = model.evaluate(task.test.x.astype("float32"), task.test.y, verbose=0)
    assert round(accuracy, 4) == best.metrics["val_accuracy"] and round(loss, 4) == best.metrics["val_loss"]
    for r in trace.rounds:  # any round's weights, set back on the same model
        assert workflow.round_model(trace, r.round) is model
        _, accuracy = model.evaluate(task.test.x.astype("float32"), task.test.y, verbose=0)
        assert round(accuracy, 4) == r.metrics["val_accuracy"]
    with pytest.raises(ValueError, match=r"no round 4; its rounds are \[1, 2, 3\]"):
        workflow.round_model(trace, 4)
    with pytest.raises(ValueError, match="epochs_per_round"):
        workflow.transfer_steps(train, task.test, tiny_profile, epochs_per_round=0)


def test_diagram_is_a_mermaid_markdown_block():
    md = workflow.diagram()
    assert md.data.startswith("```mermaid\ngraph TB\n") and md.data.endswith("\n```")
    assert workflow.to_mermaid() in md.data


def test_trace_keeps_the_final_state():
    trace = workflow.run_workflow(counting_steps([0.9], []), workflow.StoppingRule(target=0.5))
    assert trace.state == {"n": 0}


def test_best_round_is_the_best_by_the_rules_metric_not_the_last():
    trace = workflow.run_workflow(
        counting_steps([0.5, 0.8, 0.7, 0.8], []), workflow.StoppingRule(max_rounds=9, patience=2)
    )
    assert len(trace.rounds) == 4 and trace.best_round().round == 2  # the earliest of the two 0.8s
    losses = workflow.run_workflow(
        counting_steps([1.0, 0.4, 0.6], [], metric="val_loss"),
        workflow.StoppingRule("val_loss", max_rounds=3, mode="min"),
    )
    assert losses.best_round().round == 2
    with pytest.raises(ValueError, match="transfer_steps run"):
        workflow.best_model(trace)  # fake steps keep no weights
    with pytest.raises(ValueError, match="transfer_steps run"):
        workflow.round_model(trace, 1)


def test_best_round_ignores_a_change_within_min_delta_as_keras_early_stopping_does():
    rule = workflow.StoppingRule("val_loss", max_rounds=4, mode="min", min_delta=0.05)
    trace = workflow.run_workflow(counting_steps([0.74, 0.60, 0.59, 0.58], [], metric="val_loss"), rule)
    # 0.59 and 0.58 are better than 0.60 by less than min_delta: round 2 stays the one kept
    assert trace.best_round().round == 2
    assert rule.kept([0.74, 0.60, 0.59, 0.58]) == 0.60
    assert rule.kept([0.74, 0.60, 0.59, 0.54]) == 0.54  # 0.06 below the value kept
    assert rule.improves(0.54, 0.60) and not rule.improves(0.56, 0.60)
    accuracy = workflow.StoppingRule(max_rounds=9, patience=2, min_delta=0.05)
    # 0.73 is not an improvement on 0.70, so 0.76 is measured against 0.70 and counts
    assert accuracy.decide([{"val_accuracy": v} for v in (0.70, 0.73, 0.76)])[0]
    keep, reason = accuracy.decide([{"val_accuracy": v} for v in (0.70, 0.73, 0.74)])
    # it did beat 0.70, by less than the margin: the reason says so rather than "not beaten"
    assert not keep and reason == ("no improvement: val_accuracy 0.70 not bettered by more than 0.05 in 2 round(s)")


def test_a_last_round_that_reaches_the_target_is_kept_even_within_min_delta():
    rule = workflow.StoppingRule(max_rounds=5, target=0.9, min_delta=0.05)
    trace = workflow.run_workflow(counting_steps([0.88, 0.91], []), rule)
    assert trace.rounds[-1].reason.startswith("target reached") and trace.best_round().round == 2
    # without the target, 0.91 is within the margin of 0.88 and round 1 stays the one kept
    plain = workflow.StoppingRule(max_rounds=2, min_delta=0.05)
    assert workflow.run_workflow(counting_steps([0.88, 0.91], []), plain).best_round().round == 1


def test_a_diverged_round_is_never_the_one_kept_while_another_is_a_number():
    rule = workflow.StoppingRule("val_loss", max_rounds=3, mode="min", min_delta=0.05)
    assert rule.kept_index([float("nan"), 0.6, 0.5]) == 2
    assert rule.kept_index([0.7, float("nan"), 0.68]) == 0
    assert rule.kept_index([float("nan"), float("nan")]) == 0
    trace = workflow.run_workflow(counting_steps([float("nan"), 0.6, 0.58], [], metric="val_loss"), rule)
    assert trace.best_round().round == 2  # 0.58 is within min_delta of 0.6


def test_best_round_needs_rounds_and_a_rule():
    with pytest.raises(ValueError, match="no evaluated rounds"):
        workflow.Trace([], []).best_round()
