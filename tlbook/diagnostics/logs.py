"""Reading a printed Keras training log: the per-epoch numbers ``fit`` printed, back as a history.

A learner often has only the log a run printed (the article's, a colleague's, a notebook's
output). :func:`parse_keras_log` turns that text, from any Keras version and with its
progress-bar debris, into a :class:`TrainingLog` whose ``history`` is what ``fit`` would have
returned; :func:`article_log` is the article's own log, verbatim.
"""

from __future__ import annotations

import dataclasses
import re

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_EPOCH = re.compile(r"^Epoch\s+(\d+)\s*/\s*(\d+)\s*$")
_PROGRESS = re.compile(r"^(\d+)\s*/\s*(\d+)(?:\s|$|\[)")
# A number's digits before and after its point are matched by separate groups (\d+(?:\.\d*)?, not
# \d+\.?\d*, which splits a run of n digits in n ways and backtracks through all of them: 4 s for
# one line of 8,000 digits); every match is then linear in the length of the line.
_METRIC = re.compile(
    r"(?:^|\s)-\s+([A-Za-z_]\w*)\s*:\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf)(?=\s|$)",
    re.IGNORECASE,
)
#: Old Keras (1.x and early 2.x) names and the names Keras uses now.
METRIC_ALIASES = {"acc": "accuracy", "val_acc": "val_accuracy"}


@dataclasses.dataclass(frozen=True)
class TrainingLog:
    """A Keras training log, parsed (see :func:`parse_keras_log`).

    Attributes:
        history: one list per metric, one value per completed epoch, like Keras's
            ``history.history`` (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ...).
            ``acc``/``val_acc`` from old logs are renamed ``accuracy``/``val_accuracy``.
        evaluate: the metrics of the final ``evaluate`` line, or ``None`` if the log has none.
        epoch_numbers: the number of each completed epoch, as printed (1-based).
        declared_epochs: the N of "Epoch i/N", or ``None``.
        renamed: old metric names that were renamed, for example ``("acc", "val_acc")``.
    """

    history: dict
    evaluate: dict | None
    epoch_numbers: tuple
    declared_epochs: int | None
    renamed: tuple = ()

    @property
    def epochs(self) -> int:
        """How many epochs the log holds."""
        return len(self.epoch_numbers)


def _log_segments(text: str):
    text = _ANSI.sub("", text)
    text = re.sub("\x08+", "\r", text)  # Keras 2 redraws its progress bar with backspaces
    for segment in re.split(r"[\r\n]", text):
        segment = segment.strip()
        if segment:
            yield segment


def _metrics_of(segment: str) -> dict:
    return {name: float(value) for name, value in _METRIC.findall(segment)}


def parse_keras_log(text: str) -> TrainingLog:
    """Turn a printed Keras training log into per-epoch lists, the way ``fit`` returns them.

    Accepts what users paste from Keras 3 (``━━━━`` bars), tf.keras 2 (``[=====]`` bars, ``42s
    53ms/step``) and old Keras 1/2 (``acc``/``val_acc``, ``Train on N samples``), with or without
    validation, with or without step timings, with the intermediate progress-bar lines (``ETA``,
    partial step counts, carriage returns, backspaces, colour codes) that a copy from a terminal
    or notebook contains. For every ``Epoch i/N`` header, the epoch's values are those of its
    completed line (all steps done, no ETA; the one with validation metrics if the run has any).
    A completed line after the last epoch (or a log with no epochs at all) is read as the
    ``evaluate`` result. Lines without `` - name: value`` pairs, such as ``print`` output, are
    ignored.

    Returns:
        A :class:`TrainingLog`.

    Raises:
        TypeError: ``text`` is not a string.
        ValueError: no epoch and no metric line could be read (never an empty success); the
            message shows what a Keras log looks like.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_keras_log needs the log as a string, got {type(text).__name__}")
    blocks, before = [], []
    declared = None
    for segment in _log_segments(text):
        header = _EPOCH.match(segment)
        if header:
            declared = int(header.group(2))
            blocks.append((int(header.group(1)), []))
            continue
        metrics = _metrics_of(segment)
        if not metrics:
            continue
        progress = _PROGRESS.match(segment)
        complete = "ETA" not in segment and (progress is None or progress.group(1) == progress.group(2))
        (blocks[-1][1] if blocks else before).append((metrics, complete))
    with_validation = any(any(k.startswith("val_") for k in m) for _, lines in blocks for m, _ in lines)

    epochs, evaluate = [], None
    for position, (number, lines) in enumerate(blocks):
        done = [i for i, (m, complete) in enumerate(lines) if complete]
        if with_validation:
            done = [i for i in done if any(k.startswith("val_") for k in lines[i][0])] or done
        if not done:
            continue  # an epoch cut off before it ended
        epochs.append((number, lines[done[0]][0]))
        if position == len(blocks) - 1:
            after = [m for m, complete in lines[done[0] + 1 :] if complete and not any(k.startswith("val_") for k in m)]
            evaluate = after[-1] if after else None
    if not blocks:
        finished = [m for m, complete in before if complete]
        evaluate = finished[-1] if finished else None
    if not epochs and evaluate is None:
        raise ValueError(
            "no Keras training log found in the text: expected lines such as 'Epoch 1/10' followed by "
            "'800/800 [====] - 42s 53ms/step - loss: 2.3026 - accuracy: 0.1850' (or an evaluate line like "
            "'460/460 - loss: 2.3082 - accuracy: 0.1875'). Paste the output of fit/evaluate as printed."
        )
    renamed = sorted(
        {k for _, m in epochs for k in m if k in METRIC_ALIASES}
        | ({k for k in evaluate if k in METRIC_ALIASES} if evaluate else set())
    )
    rename = lambda m: {METRIC_ALIASES.get(k, k): v for k, v in m.items()}  # noqa: E731
    keys = []
    for _, m in epochs:
        keys += [k for k in rename(m) if k not in keys]
    history = {k: [rename(m).get(k, float("nan")) for _, m in epochs] for k in keys}
    return TrainingLog(
        history, rename(evaluate) if evaluate else None, tuple(n for n, _ in epochs), declared, tuple(renamed)
    )


def article_log() -> str:
    """The training log printed in the article (§5.4), verbatim: ten epochs and the evaluation."""
    from importlib import resources

    return resources.files("tlbook").joinpath("data_files/article_log.txt").read_text(encoding="utf-8")
