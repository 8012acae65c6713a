"""The article's transfer-learning workflow (§2.3-§2.4, §3.2) as a graph that runs.

The article draws the workflow as a Mermaid flowchart: select a pretrained model → fine-tune →
evaluate → keep adjusting? yes → adjust / no → end. Here that flowchart is one data structure,
:data:`ARTICLE_WORKFLOW`. :func:`run_workflow` walks it, calling your function at every action
node and a :class:`StoppingRule` at the decision node, and :func:`to_mermaid` draws it. Because the
picture and the runner read the same definition, the picture cannot drift from the code.

One change to the article's drawing: its "adjust the model" node has no outgoing arrow, so the
loop it describes in words ("this may need several iterations", §3.2) never closes. Here
adjusting leads back to fine-tuning.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

ACTION, DECISION, END = "action", "decision", "end"


@dataclasses.dataclass(frozen=True)
class Node:
    """A box of the flowchart.

    Attributes:
        key: the name of the step function that runs here (``"select"``, ``"finetune"``, ...).
        mermaid_id: the node's id in the Mermaid text (the article's letters A-F).
        zh: the article's Chinese label; en: its English translation.
        kind: ``"action"`` (calls a step), ``"decision"`` (asks the stopping rule) or ``"end"``.
    """

    key: str
    mermaid_id: str
    zh: str
    en: str
    kind: str = ACTION


@dataclasses.dataclass(frozen=True)
class Edge:
    """An arrow; ``label`` is ``"yes"`` or ``"no"`` on the arrows out of a decision."""

    source: str
    target: str
    label: str | None = None


EDGE_LABELS = {"yes": "是 yes", "no": "否 no"}


@dataclasses.dataclass(frozen=True)
class WorkflowGraph:
    """Nodes, arrows and the start node of a workflow."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    start: str

    def node(self, key: str) -> Node:
        """The node named ``key``; a ``KeyError`` naming it if there is none."""
        for node in self.nodes:
            if node.key == key:
                return node
        raise KeyError(f"no node {key!r} in the workflow; nodes: {[n.key for n in self.nodes]}")

    def successor(self, key: str, label: str | None = None) -> str:
        """The node an arrow from ``key`` (with that label) leads to."""
        for edge in self.edges:
            if edge.source == key and edge.label == label:
                return edge.target
        raise KeyError(f"no arrow from {key!r} labelled {label!r}")

    @property
    def step_keys(self) -> list[str]:
        """The action nodes: each needs a step function."""
        return [n.key for n in self.nodes if n.kind == ACTION]


#: The article's flowchart, with the loop back from adjusting to fine-tuning that its drawing leaves out.
ARTICLE_WORKFLOW = WorkflowGraph(
    nodes=(
        Node("select", "A", "选择预训练模型", "Select a pretrained model"),
        Node("finetune", "B", "微调模型", "Fine-tune the model"),
        Node("evaluate", "C", "评估模型性能", "Evaluate model performance"),
        Node("decide", "D", "是否继续调整", "Keep adjusting?", DECISION),
        Node("adjust", "E", "调整模型", "Adjust the model"),
        Node("end", "F", "结束", "End", END),
    ),
    edges=(
        Edge("select", "finetune"),
        Edge("finetune", "evaluate"),
        Edge("evaluate", "decide"),
        Edge("decide", "adjust", "yes"),
        Edge("decide", "end", "no"),
        Edge("adjust", "finetune"),  # the loop back the article's diagram leaves out
    ),
    start="select",
)


def to_mermaid(graph: WorkflowGraph = ARTICLE_WORKFLOW, direction: str = "TB") -> str:
    """The Mermaid flowchart text of ``graph``: Chinese and English label in every box.

    Action and end nodes are rectangles ``A["..."]``, the decision a rhombus ``D{"..."}``; the
    arrows out of the decision carry ``是 yes`` / ``否 no`` as in the article.

    Raises:
        ValueError: ``direction`` is not one of TB, TD, BT, LR, RL.
    """
    if direction not in {"TB", "TD", "BT", "LR", "RL"}:
        raise ValueError(f"direction must be TB, TD, BT, LR or RL, got {direction!r}")
    ids = {n.key: n.mermaid_id for n in graph.nodes}
    lines = [f"graph {direction}"]
    for n in graph.nodes:
        text = f'"{n.zh}<br/>{n.en}"'
        lines.append(f"    {n.mermaid_id}{{{text}}}" if n.kind == DECISION else f"    {n.mermaid_id}[{text}]")
    for e in graph.edges:
        arrow = f'-->|"{EDGE_LABELS[e.label]}"|' if e.label else "-->"
        lines.append(f"    {ids[e.source]} {arrow} {ids[e.target]}")
    return "\n".join(lines)


def diagram(graph: WorkflowGraph = ARTICLE_WORKFLOW, direction: str = "TB"):
    """The flowchart as a fenced ``mermaid`` block of Markdown, for a notebook cell's output.

    Jupyter (JupyterLab 4.1+), GitHub and the built book all draw such a block as a diagram.
    """
    from IPython.display import Markdown

    return Markdown(f"```mermaid\n{to_mermaid(graph, direction)}\n```")


@dataclasses.dataclass(frozen=True)
class StoppingRule:
    """When to stop adjusting: a target reached, the budget spent, or no improvement.

    Attributes:
        metric: the key of the evaluation dict to watch, for example ``"val_accuracy"``.
        max_rounds: the budget: at most this many fine-tune → evaluate rounds (>= 1).
        target: stop as soon as the metric reaches this value (``None``: no target).
        patience: stop when the best value has not improved by more than ``min_delta`` for this
            many rounds in a row (``None``: never for this reason).
        min_delta: the smallest change that counts as an improvement (>= 0).
        mode: ``"max"`` if larger is better (accuracy), ``"min"`` if smaller is better (loss).

    Raises:
        ValueError: a budget below one round, a negative ``min_delta``, a patience below 1, an
            unknown mode, or a target that can never be reached (an accuracy outside [0, 1], a
            negative loss target, a non-finite target).
    """

    metric: str = "val_accuracy"
    max_rounds: int = 5
    target: float | None = None
    patience: int | None = None
    min_delta: float = 0.0
    mode: str = "max"

    def __post_init__(self):
        if isinstance(self.max_rounds, bool) or not isinstance(self.max_rounds, int) or self.max_rounds < 1:
            raise ValueError(f"max_rounds must be a positive integer (the budget of rounds), got {self.max_rounds!r}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' (larger is better) or 'min', got {self.mode!r}")
        if self.patience is not None and (
            isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1
        ):
            raise ValueError(f"patience must be a positive integer or None, got {self.patience!r}")
        if not self.min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta!r}")
        if self.target is not None:
            if not math.isfinite(self.target):
                raise ValueError(f"target must be a finite number, got {self.target!r}")
            if "acc" in self.metric and not 0.0 <= self.target <= 1.0:
                raise ValueError(
                    f"{self.metric} is a fraction in [0, 1]; a target of {self.target!r} can never be reached"
                )
            if "acc" in self.metric and self.mode == "min":
                raise ValueError(f"{self.metric} is better when larger; use mode='max'")
            if "loss" in self.metric and self.target < 0:
                raise ValueError(
                    f"a cross-entropy {self.metric} is never negative; a target of {self.target!r} can never be reached"
                )

    def improves(self, value: float, best: float) -> bool:
        """Whether ``value`` counts as an improvement on ``best``: better by more than ``min_delta``."""
        return value > best + self.min_delta if self.mode == "max" else value < best - self.min_delta

    def kept_index(self, values: Sequence[float]) -> int:
        """The index of the value the rule holds as best after ``values`` (one per round, at
        least one), as Keras's ``EarlyStopping`` holds it: the last value that improved by more
        than ``min_delta`` on the value held before it. A NaN (a diverged run) is never held
        while a later value is a number."""
        held = 0
        for i in range(1, len(values)):
            if self.improves(values[i], values[held]) or (math.isnan(values[held]) and not math.isnan(values[i])):
                held = i
        return held

    def kept(self, values: Sequence[float]) -> float:
        """The value at :meth:`kept_index`."""
        return values[self.kept_index(values)]

    def reached(self, value: float) -> bool:
        """Whether ``value`` reaches the target (always False without one)."""
        if self.target is None:
            return False
        return value >= self.target if self.mode == "max" else value <= self.target

    def decide(self, history: Sequence[Mapping[str, float]]) -> tuple[bool, str]:
        """Given every round's metrics so far, ``(keep_adjusting, reason)``.

        Raises:
            ValueError: the history is empty or the latest round lacks the watched metric.
        """
        if not history:
            raise ValueError("the stopping rule needs at least one evaluated round")
        if self.metric not in history[-1]:
            raise ValueError(f"the evaluation step returned no {self.metric!r}; it returned {sorted(history[-1])}")
        values = [float(h[self.metric]) for h in history]
        value, n = values[-1], len(values)
        cmp = "≥" if self.mode == "max" else "≤"
        if self.reached(value):
            return False, f"target reached: {self.metric} {value:.2f} {cmp} {self.target:.2f}"
        if n >= self.max_rounds:
            return False, f"budget spent: {n} of {self.max_rounds} rounds"
        if self.patience is not None and n > self.patience:
            best_before = self.kept(values[: n - self.patience])
            if not any(self.improves(v, best_before) for v in values[n - self.patience :]):
                by = f" by more than {self.min_delta:.2f}" if self.min_delta else ""
                return False, (
                    f"no improvement: {self.metric} {best_before:.2f} not bettered{by} in {self.patience} round(s)"
                )
        goal = f"target {self.target:.2f}" if self.target is not None else "no target"
        return True, f"{self.metric} {value:.2f} ({goal}); round {n} of at most {self.max_rounds}"


@dataclasses.dataclass
class Round:
    """One fine-tune → evaluate → decide round of a run."""

    round: int
    action: str
    metrics: dict
    keep_adjusting: bool
    reason: str


@dataclasses.dataclass
class Trace:
    """What a run did: its rounds and every node it visited, in order."""

    rounds: list[Round]
    path: list[str]
    state: object = None  # what the last step returned: the final model, for a run of transfer_steps
    rule: StoppingRule | None = None  # the rule that decided; it says which metric is better when

    def best_round(self) -> Round:
        """The round to keep, as Keras's ``EarlyStopping(restore_best_weights=True)`` keeps an
        epoch: the last round whose watched metric (``rule.metric``) improved by more than
        ``rule.min_delta`` on the value the rule held before it (:meth:`StoppingRule.kept_index`).
        A change within ``min_delta`` is noise to the rule, so it neither continues the run nor
        replaces the round kept; with ``min_delta=0`` this is the best round, the earliest of
        equals. One exception: a last round that reached the rule's target and is better than the
        round held is kept, since reaching the target is what ended the run. The round kept need
        not be the last: a run stops *after* it stops improving.

        Raises:
            ValueError: the trace has no rounds or no rule.
        """
        if not self.rounds or self.rule is None:
            raise ValueError("the trace has no evaluated rounds or no stopping rule to rank them by")
        values = [float(r.metrics[self.rule.metric]) for r in self.rounds]
        held = self.rule.kept_index(values)
        last = values[-1]
        better = last > values[held] if self.rule.mode == "max" else last < values[held]
        if self.rule.reached(last) and better:
            held = len(values) - 1
        return self.rounds[held]

    def to_frame(self):
        """A ``pandas.DataFrame``, one row per round: action, metrics, decision and reason."""
        import pandas as pd

        rows = [
            {
                "round": r.round,
                "action": r.action,
                **r.metrics,
                "decision": "adjust" if r.keep_adjusting else "stop",
                "reason": r.reason,
            }
            for r in self.rounds
        ]
        return pd.DataFrame(rows).set_index("round")


def run_workflow(
    steps: Mapping[str, Callable],
    stop: StoppingRule,
    graph: WorkflowGraph = ARTICLE_WORKFLOW,
) -> Trace:
    """Walk ``graph`` from its start node, running ``steps`` at the action nodes.

    Args:
        steps: one function per action node of the graph:

            - ``select()`` → ``state`` (build the model; return whatever later steps need);
            - ``finetune(state, round)`` → ``state`` (train);
            - ``evaluate(state)`` → ``dict`` of metrics (must contain ``stop.metric``);
            - ``adjust(state, round)`` → ``(state, description)`` (change something, say what).
        stop: decides at the decision node, from every round's metrics so far.
        graph: the workflow to walk (default: the article's).

    Returns:
        A :class:`Trace` with one :class:`Round` per evaluation and the list of nodes visited.

    Raises:
        ValueError: a step is missing, an unknown step is given, or a step is not callable; the
            message names them.
    """
    required = set(graph.step_keys)
    missing, unknown = sorted(required - set(steps)), sorted(set(steps) - required)
    if missing or unknown:
        raise ValueError(
            "the workflow needs exactly the steps "
            + ", ".join(sorted(required))
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    not_callable = sorted(k for k, f in steps.items() if not callable(f))
    if not_callable:
        raise ValueError(f"these steps are not functions: {', '.join(not_callable)}")

    state, rounds, history, path = None, [], [], []
    action = "initial model"
    round_no, key = 0, graph.start
    while True:
        path.append(key)
        node = graph.node(key)
        if node.kind == END:
            return Trace(rounds, path, state, stop)
        if node.kind == DECISION:
            keep, reason = stop.decide(history)
            rounds.append(Round(round_no, action, dict(history[-1]), keep, reason))
            key = graph.successor(key, "yes" if keep else "no")
            continue
        if key == "select":
            state = steps["select"]()
        elif key == "finetune":
            round_no += 1
            state = steps["finetune"](state, round_no)
        elif key == "evaluate":
            history.append(dict(steps["evaluate"](state)))
        elif key == "adjust":
            state, action = steps["adjust"](state, round_no)
        else:
            state = steps[key](state)
        key = graph.successor(key)


def transfer_steps(
    train,
    val,
    profile=None,
    *,
    epochs_per_round: int = 10,
    learning_rate: float = 1e-3,
    adjustments: Sequence[tuple[str, float]] = (("conv3", 1e-4), ("conv2", 1e-5)),
) -> dict[str, Callable]:
    """Real steps for :func:`run_workflow`: transfer the source-pretrained backbone to a target task.

    - ``select``: load the pretrained backbone (a fresh copy from the cache), freeze it, put a new
      softmax head on it (the backbone's BatchNorm stays in inference mode) and compile.
    - ``finetune``: train ``epochs_per_round`` epochs on ``train``.
    - ``evaluate``: loss and accuracy on ``val`` (and accuracy on ``train``), rounded to 4 places;
      it keeps a copy of the round's weights, so :func:`best_model` can return to the best round.
    - ``adjust``: the next entry of ``adjustments``, ``(first_layer_to_unfreeze, learning_rate)``:
      unfreeze the backbone from that layer on, lower the learning rate, recompile. When the list
      is used up, it trains on unchanged.

    Args:
        train, val: :class:`tlbook.data.digits.Split` objects of the target task.
        profile: the profile whose pretrained backbone to use (default: the current one).

    Raises:
        ValueError: ``epochs_per_round < 1`` or a non-positive learning rate.
    """
    from tlbook.config import get_profile, seeded
    from tlbook.models import set_trainable, transfer_classifier

    _check_step_arguments(epochs_per_round, learning_rate, adjustments)
    profile = profile or get_profile()
    x_train, x_val = train.x.astype("float32"), val.x.astype("float32")

    # One random stream for the whole run, seeded with the profile's seed: each step continues it
    # where the previous step stopped, and the caller's random state is left as it was between steps.
    stream = seeded(profile.seed)

    def select():
        with stream:
            model, backbone = transfer_classifier(train.num_classes, profile, learning_rate=learning_rate)
        return {"model": model, "backbone": backbone, "learning_rate": learning_rate, "weights": {}}

    def finetune(state, round_no):
        with stream:
            state["model"].fit(
                x_train, train.y, epochs=epochs_per_round, batch_size=profile.batch_size, shuffle=True, verbose=0
            )
        state["round"] = round_no
        return state

    def evaluate(state):
        with stream:
            val_loss, val_acc = state["model"].evaluate(x_val, val.y, verbose=0)
            _, train_acc = state["model"].evaluate(x_train, train.y, verbose=0)
        state["weights"][state["round"]] = state["model"].get_weights()  # best_model() can go back to it
        return {
            "train_accuracy": round(train_acc, 4),
            "val_loss": round(val_loss, 4),
            "val_accuracy": round(val_acc, 4),
        }

    def adjust(state, round_no):
        if round_no - 1 < len(adjustments):
            layer, lr = adjustments[round_no - 1]
            with stream:
                n = set_trainable(state["backbone"], layer)
                _recompile(state, lr)  # Keras reads `trainable` at compile time
            return state, f"unfreeze backbone from {layer} ({n} weight tensors), learning rate {lr:g}"
        return state, f"train on unchanged (learning rate {state['learning_rate']:g})"

    return {"select": select, "finetune": finetune, "evaluate": evaluate, "adjust": adjust}


def _check_step_arguments(epochs_per_round: int, learning_rate: float, adjustments) -> None:
    """:func:`transfer_steps`'s argument checks."""
    if epochs_per_round < 1:
        raise ValueError(f"epochs_per_round must be at least 1, got {epochs_per_round!r}")
    if learning_rate <= 0 or any(lr <= 0 for _, lr in adjustments):
        raise ValueError("learning rates must be positive")


def _recompile(state: dict, learning_rate: float) -> None:
    """Compile a :func:`transfer_steps` run's model afresh with Adam at ``learning_rate``, and note the rate."""
    import keras

    state["model"].compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    state["learning_rate"] = learning_rate


def round_model(trace: Trace, round_number: int):
    """The model of a :func:`transfer_steps` run with the weights it had after round
    ``round_number`` (1-based, as :class:`Round` numbers them), set in place: the run keeps one
    model and each round's weights, so two rounds can be compared on the same images.

    Returns:
        The run's model (the same object every call).

    Raises:
        ValueError: the trace is not of a :func:`transfer_steps` run (no weights per round), or it
            has no round ``round_number`` (the message lists the rounds it has).
    """
    state = trace.state
    if not isinstance(state, dict) or "weights" not in state:
        raise ValueError("round_model needs the trace of a transfer_steps run, which keeps each round's weights")
    if round_number not in state["weights"]:
        raise ValueError(f"the run has no round {round_number!r}; its rounds are {sorted(state['weights'])}")
    state["model"].set_weights(state["weights"][round_number])
    return state["model"]


def best_model(trace: Trace):
    """The model of a :func:`transfer_steps` run with the weights of its best round by validation
    (:meth:`Trace.best_round`), as Keras's ``EarlyStopping(restore_best_weights=True)`` does: the
    last round is where the run stopped, not where it was best.

    Returns:
        ``(model, round)``: the run's model, its weights set to those of ``round`` (in place,
        :func:`round_model`).

    Raises:
        ValueError: the trace is not of a :func:`transfer_steps` run (no weights per round).
    """
    best = trace.best_round()
    return round_model(trace, best.round), best
