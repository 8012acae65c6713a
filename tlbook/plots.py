"""Every figure of the book. Each single-panel function draws on a Matplotlib ``Axes`` (``ax=``, or a
new figure if none is given), titles it, labels both axes with units, and returns that ``Axes``.
The multi-panel figures take ``fig=`` instead and return what they drew: :func:`plot_history`
its two ``Axes`` (loss, accuracy), :func:`plot_examples`, :func:`plot_gallery` and
:func:`plot_imagenet_guesses` the ``Figure`` holding their grid; these three take ``credit=``, a
line printed on the figure itself (:func:`add_credit`) for photos whose licence asks for it.

Every figure takes its colours from one palette, :data:`PALETTE`, and marks its series with
shapes as well (:data:`MARKERS`), so a reader who does not tell red from green reads them too."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.style
import numpy as np

#: The colours of every figure, in the order series take them: Tableau's colour-blind-safe palette,
#: as Matplotlib ships it (the style ``"tableau-colorblind10"``), not Matplotlib's default
#: ``tab10``, whose orange, green and red look alike to a reader with protanopia or deuteranopia.
#: ``tests/test_plots.py`` checks, with each of the three colour-vision deficiencies simulated
#: (colorspacious), that the first :data:`MAX_SERIES` colours stay apart.
PALETTE: tuple[str, ...] = tuple(matplotlib.style.library["tableau-colorblind10"]["axes.prop_cycle"].by_key()["color"])
#: The most series a figure of the book tells apart by colour (the arms of Chapter 7, the five
#: classes of a projection); a figure with more repeats colours, and its markers still differ.
MAX_SERIES = 5
#: One marker shape per series, in order, beside its colour.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def series_style(i: int) -> dict:
    """The colour and marker of a figure's ``i``-th series (0-based): ``{"color", "marker"}``,
    from :data:`PALETTE` and :data:`MARKERS`, cycling past their ends.

    Raises:
        ValueError: a negative ``i``.
    """
    if i < 0:
        raise ValueError(f"a series index is >= 0, got {i!r}")
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)]}


def _axes(ax, figsize=(5.5, 4.5)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_projection(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], *, title: str, ax=None):
    """Scatter a 2-D projection of features, one colour per class.

    Args:
        points: ``(n, 2)`` coordinates, for example from :func:`tlbook.probes.project_2d`.
        labels: ``(n,)`` integer labels indexing ``class_names``.
        class_names: legend entries.
        title: the plot title.

    Raises:
        ValueError: ``points`` is not ``(n, 2)`` or its length differs from ``labels``.
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(labels):
        raise ValueError(f"points must be (n, 2) with one label each, got {points.shape} and {len(labels)} labels")
    ax = _axes(ax)
    for k, name in enumerate(class_names):
        sel = np.asarray(labels) == k
        ax.scatter(points[sel, 0], points[sel, 1], s=9, alpha=0.7, **series_style(k), label=str(name))
    ax.set_title(title)
    ax.set_xlabel("first principal component (standardised units)")
    ax.set_ylabel("second principal component (standardised units)")
    ax.legend(title="class", fontsize="small", markerscale=2)
    return ax


def plot_probe_comparison(table, title: str = "Linear probe on frozen features", ax=None):
    """Accuracy against labels per class, one line per backbone, with ±1 std error bars.

    Args:
        table: the ``DataFrame`` returned by :func:`tlbook.probes.probe_comparison`.
    """
    ax = _axes(ax)
    for i, (name, group) in enumerate(table.groupby(level="backbone", sort=False)):
        budgets = group.index.get_level_values("labels_per_class")
        ax.errorbar(
            budgets, 100 * group["mean"], yerr=100 * group["std"], **series_style(i), capsize=3, label=str(name)
        )
    ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel("labelled training images per class (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_examples(
    split,
    *,
    per_class: int = 4,
    title: str = "Examples",
    classes: Sequence[int] | None = None,
    credit: str | None = None,
    fig=None,
):
    """A grid of example images: one row per class, ``per_class`` images per row.

    Args:
        split: a :class:`tlbook.data.digits.Split` (``x`` in 0..255, ``y`` labels, ``class_names``).
        per_class: images shown per class (>= 1); the first ones of each class in the split.
        title: the figure title.
        classes: which labels to show (default: all).
        credit: a line printed under the images, on the figure itself (the photos' source and
            licence, which GPL-2 photos need wherever they are shown; :func:`add_credit`).

    Returns:
        The Matplotlib ``Figure``.

    A class with fewer than ``per_class`` images shows those it has, and empty places after them
    (a small class of a reader's own folder).

    Raises:
        ValueError: ``per_class < 1``.
    """
    import matplotlib.pyplot as plt

    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class!r}")
    classes = list(range(split.num_classes)) if classes is None else list(classes)
    fig = fig or plt.figure(figsize=(1.1 * per_class + 0.8, 1.1 * len(classes) + 0.6))
    axes = fig.subplots(len(classes), per_class, squeeze=False)
    for row, k in zip(axes, classes, strict=True):
        idx = np.flatnonzero(split.y == k)[:per_class]
        for ax in row[len(idx) :]:
            ax.axis("off")  # a class with fewer images: empty places, not an error
        for ax, i in zip(row, idx, strict=False):
            ax.imshow(split.x[i].astype(np.uint8))
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(split.class_names[k], rotation=0, ha="right", va="center")
    side = split.x.shape[1]
    fig.suptitle(f"{title}\n(each image {side}×{side} pixels)", fontsize="medium")
    return add_credit(fig, credit)


def add_credit(fig, credit: str | None):
    """Print ``credit`` (one short line, or ``None`` for none) small and grey along the bottom edge of
    ``fig``, on the figure itself, so it goes wherever the image goes; returns ``fig``."""
    if credit:
        fig.text(0.5, 0.002, credit, ha="center", va="bottom", fontsize="x-small", color="0.35")
        fig.subplots_adjust(bottom=max(fig.subplotpars.bottom, 0.06))
    return fig


def plot_gallery(images, captions: Sequence[str], *, title: str, columns: int = 4, credit: str | None = None, fig=None):
    """Images in a grid, each with its caption (for example what a model predicted, and how sure).

    Args:
        images: ``(n, h, w, 3)`` array or a list of such images, values 0..255.
        captions: one line (or a few, joined by newlines) per image.
        title: the figure title.
        columns: images per row (>= 1).
        credit: a line printed under the images (:func:`add_credit`).

    Returns:
        The Matplotlib ``Figure``. With no images (a model that made no mistake), a figure that
        says so under the title.

    Raises:
        ValueError: a caption count that differs from the image count, or ``columns < 1``.
    """
    import matplotlib.pyplot as plt

    if len(images) != len(captions):
        raise ValueError(f"need one caption per image, got {len(images)} images and {len(captions)} captions")
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns!r}")
    if len(images) == 0:
        fig = fig or plt.figure(figsize=(5, 1.2))
        ax = fig.subplots()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no images to show", ha="center", va="center")
        fig.suptitle(title, fontsize="medium")
        return fig
    columns = min(columns, len(images))
    rows = -(-len(images) // columns)
    fig = fig or plt.figure(figsize=(2.6 * columns, 2.9 * rows + 0.5))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, image, caption in zip(axes, images, captions, strict=False):
        ax.imshow(np.asarray(image).astype(np.uint8))
        ax.set_title(caption, fontsize="small")
    side = np.asarray(images[0]).shape[0]
    fig.suptitle(f"{title}\n(each image {side}×{side} pixels)", fontsize="medium")
    return add_credit(fig, credit)


def plot_imagenet_guesses(
    images, predictions, labels, class_names: Sequence[str], *, title: str, credit: str | None = None, fig=None
):
    """What an ImageNet classifier's own head says about labelled images: for each class, the image it
    is most sure about and the one it is least sure about (by its top-1 probability), each captioned
    with the true class and the head's ranked guesses.

    Args:
        images: ``(n, h, w, 3)`` array, values 0..255.
        predictions: one list per image of ``(class_index, name, probability)``, most probable
            first, as :func:`tlbook.models.imagenet.imagenet_predictions` returns them.
        labels: ``(n,)`` integer labels indexing ``class_names``.
        class_names: our classes (not ImageNet's).
        title: the figure title.
        credit: a line printed under the images (:func:`add_credit`).

    Returns:
        The Matplotlib ``Figure`` (:func:`plot_gallery`), two panels per class that has images (one
        for a class with a single image), in class order: the most sure first.

    Raises:
        ValueError: lengths that differ, a label outside ``0..len(class_names) - 1``, or an image
            without a prediction.
    """
    labels = np.asarray(labels)
    if not len(images) == len(predictions) == len(labels):
        raise ValueError(
            f"need one prediction and one label per image, got {len(images)} images, "
            f"{len(predictions)} predictions and {len(labels)} labels"
        )
    bad = [int(y) for y in labels if not 0 <= y < len(class_names)]
    if bad:
        raise ValueError(
            f"label {bad[0]} has no class name: {len(class_names)} class names give labels 0..{len(class_names) - 1}"
        )
    empty = [i for i, guesses in enumerate(predictions) if len(guesses) == 0]
    if empty:
        raise ValueError(f"image {empty[0]} has no guess; pass imagenet_predictions(images, top=k) with k >= 1")
    top1 = np.array([guesses[0][2] for guesses in predictions], dtype=float)
    shown = []
    for k in range(len(class_names)):
        members = np.flatnonzero(labels == k)
        if len(members):
            ranked = members[np.argsort(-top1[members], kind="stable")]
            shown.extend(dict.fromkeys((int(ranked[0]), int(ranked[-1]))))
    captions = [
        "\n".join(
            [f"true: {class_names[labels[i]]}"]
            + [f"{rank}. {name} {probability:.2f}" for rank, (_, name, probability) in enumerate(predictions[i], 1)]
        )
        for i in shown
    ]
    return plot_gallery(np.asarray(images)[shown], captions, title=title, columns=4, credit=credit, fig=fig)


def plot_baselines(class_counts, title: str | None = None, ax=None):
    """Bar chart of the class shares with the chance level 1/K and the majority baseline.

    The title states K and the uniform-guess loss ln K. Every bar's height is the accuracy of the
    constant predictor that always answers that class.
    """
    from tlbook import diagnostics

    shares = diagnostics.class_shares(class_counts)
    b = diagnostics.baselines(class_counts)
    ax = _axes(ax, figsize=(6.5, 3.8))
    ax.bar(
        np.arange(len(shares)),
        100 * shares,
        color=PALETTE[0],
        alpha=0.7,
        label="class share = accuracy of always predicting it",
    )
    ax.axhline(
        100 * b["chance_accuracy"], color=PALETTE[1], ls="--", label=f"chance 1/K = {100 * b['chance_accuracy']:.1f} %"
    )
    ax.axhline(
        100 * b["majority_baseline"],
        color="black",
        ls=":",
        label=f"majority baseline = {100 * b['majority_baseline']:.1f} %",
    )
    ax.set_title(title or f"K = {b['num_classes']} classes: a uniform guess costs ln K = {b['uniform_guess_loss']:.4f}")
    ax.set_xlabel("class index")
    ax.set_ylabel("share of examples (%)")
    ax.set_xticks(np.arange(len(shares)))
    ax.set_ylim(0, max(100 * shares.max() * 1.25, 5))
    ax.legend(fontsize="small", loc="upper right")
    return ax


def plot_trace(trace, *, metric: str = "val_accuracy", title: str = "The workflow, round by round", ax=None):
    """A workflow run's metric per round, each point labelled with the decision taken.

    Args:
        trace: a :class:`tlbook.workflow.Trace`.
        metric: a key of every round's metrics.
    """
    rounds = [r.round for r in trace.rounds]
    values = [r.metrics[metric] for r in trace.rounds]
    ax = _axes(ax, figsize=(6.5, 4))
    ax.plot(rounds, values, **series_style(0))
    for r, v in zip(trace.rounds, values, strict=True):
        ax.annotate(
            "adjust" if r.keep_adjusting else "stop",
            (r.round, v),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize="small",
        )
    ax.set_title(title)
    ax.set_xlabel("round (fine-tune → evaluate)")
    unit = " (fraction)" if "acc" in metric else " (cross-entropy, nats)" if "loss" in metric else ""
    ax.set_ylabel(metric.replace("_", " ") + unit)
    ax.set_xticks(rounds)
    ax.grid(alpha=0.3)
    return ax


def plot_history(
    history,
    *,
    title: str = "Training curves",
    num_classes: int | None = None,
    marker_epoch: int | None = None,
    marker_label: str = "start fine-tuning",
    fig=None,
    xlabel: str = "epoch",
):
    """Loss and accuracy per epoch, training and validation, side by side.

    Args:
        history: Keras's ``history.history`` dict (``loss``, ``accuracy``, optionally ``val_loss``,
            ``val_accuracy``; ``acc``/``val_acc`` also work), one value per epoch.
        num_classes: if given, draws ln K on the loss panel and 1/K on the accuracy panel: the
            uniform guess and chance.
        marker_epoch: if given, a vertical line before that (1-based) epoch, for example where
            fine-tuning starts.

    Returns:
        The two ``Axes`` (loss, accuracy).

    Raises:
        ValueError: no ``loss`` series.
    """
    import math

    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if "loss" not in history:
        raise ValueError(f"history has no 'loss' series; its keys are {sorted(history)}")
    if fig is None:
        fig = plt.figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = np.arange(1, len(history["loss"]) + 1)
    acc_key = "accuracy" if "accuracy" in history else "acc"
    for ax, key, ylabel in ((ax_loss, "loss", "cross-entropy (nats)"), (ax_acc, acc_key, "accuracy (fraction)")):
        for i, (prefix, label, line) in enumerate((("", "training", "-"), ("val_", "validation", "--"))):
            if prefix + key in history:
                ax.plot(epochs, history[prefix + key], ls=line, **series_style(i), label=label, markersize=4)
        if num_classes:
            ref = math.log(num_classes) if key == "loss" else 1 / num_classes
            ax.axhline(
                ref,
                color="grey",
                lw=1,
                ls=":",
                label=f"ln K = {ref:.3f}" if key == "loss" else f"chance 1/K = {ref:.3f}",
            )
        if marker_epoch:
            ax.axvline(marker_epoch - 0.5, color="black", lw=1, ls="-.", label=marker_label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    ax_loss.set_title(f"{title}: loss")
    ax_acc.set_title(f"{title}: accuracy")
    fig.tight_layout()
    return ax_loss, ax_acc


def plot_prediction_histogram(counts, class_names: Sequence[str], *, title: str = "What the model predicts", ax=None):
    """Bars: how many inputs the model assigns to each class (from
    :func:`tlbook.diagnostics.checks.prediction_histogram`). One bar alone means collapse."""
    counts = np.asarray(counts)
    ax = _axes(ax, figsize=(6, 3.5))
    ax.bar(range(len(counts)), counts, color=PALETTE[1] if (counts > 0).sum() == 1 else PALETTE[0])
    ax.set_xticks(range(len(counts)), list(class_names))
    ax.set_title(title)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("images (count)")
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_confusion(y_true, y_pred, class_names: Sequence[str], *, title: str = "Confusion matrix", ax=None):
    """The confusion matrix (rows: true class, columns: predicted class, cells: image counts),
    drawn with scikit-learn's ``ConfusionMatrixDisplay``. A collapsed model fills one column."""
    from sklearn.metrics import ConfusionMatrixDisplay

    ax = _axes(ax, figsize=(5.5, 5))
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=list(range(len(class_names))),
        display_labels=list(class_names),
        ax=ax,
        colorbar=False,
        cmap="Blues",
    )
    ax.set_title(title)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (images per cell)")
    return ax


def plot_budget_curves(
    table, *, title: str = "Accuracy against labelled images per class", chance: float | None = None, ax=None
):
    """Mean test accuracy (± one standard deviation over seeds) per method against the label budget.

    Args:
        table: :func:`tlbook.studies.budget_tables.budget_table` output (index: labels per class; columns:
            ``(method, "mean")`` and ``(method, "std")``).
        chance: if given, a horizontal line at chance accuracy.
    """
    ax = _axes(ax, figsize=(7, 4.5))
    budgets = [str(b) for b in table.index]
    positions = np.arange(len(budgets))
    methods = list(dict.fromkeys(m for m, _ in table.columns))
    for i, method in enumerate(methods):
        mean, std = table[(method, "mean")].to_numpy(float), table[(method, "std")].to_numpy(float)
        ax.errorbar(
            positions + (i - (len(methods) - 1) / 2) * 0.06,
            mean,
            yerr=np.nan_to_num(std),
            **series_style(i),
            capsize=3,
            label=method,
        )
    if chance is not None:
        ax.axhline(chance, color="black", lw=1, ls=":", label=f"chance = {chance:.2f}")  # not a palette grey
    ax.set_xticks(positions, budgets)
    ax.set_title(title)
    ax.set_xlabel("labelled training images per class")
    ax.set_ylabel("test accuracy (fraction, mean ± std over seeds)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return ax
