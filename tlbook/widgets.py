"""Interactive explorers for a live kernel (Jupyter, Colab, Binder).

On the static online page widgets cannot call back into Python, so every chapter that shows an
explorer also shows a static figure with the same content.
"""

from __future__ import annotations

import numpy as np

from tlbook import diagnostics


def class_distribution(num_classes: int, imbalance: float = 1.0, total: int = 1000) -> np.ndarray:
    """Class counts for an explorer: ``total`` examples over K classes, geometrically imbalanced.

    Class k gets a share proportional to ``imbalance ** k``: 1.0 is balanced, smaller values make
    class 0 ever more dominant.

    Returns:
        ``float`` array ``(K,)`` summing to ``total``.

    Raises:
        ValueError: K < 2, an ``imbalance`` outside (0, 1], or a non-positive total.
    """
    k = diagnostics.check_num_classes(num_classes)
    if not 0.0 < imbalance <= 1.0:
        raise ValueError(f"imbalance must be in (0, 1] (1 = balanced), got {imbalance!r}")
    if not total > 0:
        raise ValueError(f"total must be positive, got {total!r}")
    weights = imbalance ** np.arange(k, dtype=float)
    return total * weights / weights.sum()


def render_baselines(class_counts) -> str:
    """An HTML table of :func:`tlbook.diagnostics.chance.baselines` for ``class_counts``."""
    b = diagnostics.baselines(class_counts)
    rows = [
        ("classes K", f"{b['num_classes']}"),
        ("uniform-guess loss ln K", f"{b['uniform_guess_loss']:.6f}"),
        ("chance accuracy 1/K", f"{b['chance_accuracy']:.4f}"),
        ("majority baseline (best constant predictor)", f"{b['majority_baseline']:.4f}"),
        ("worst constant predictor", f"{b['constant_accuracy_min']:.4f}"),
    ]
    body = "".join(f"<tr><td>{name}</td><td style='text-align:right'>{value}</td></tr>" for name, value in rows)
    return f"<table>{body}</table>"


def baseline_explorer(num_classes: int = 10, imbalance: float = 1.0):
    """Sliders for K and the imbalance; the reference numbers and a bar chart follow them.

    The chart is drawn off-screen (a Matplotlib ``Figure`` without pyplot) into an
    ``ipywidgets.Image``, so it lives in the widget's own state: it needs no output capture and
    appears in saved widget state too.

    Returns:
        An ``ipywidgets.VBox``: a row with the two sliders, the HTML table, the chart image.
    """
    import io

    import ipywidgets as w
    from matplotlib.figure import Figure

    from tlbook.plots import plot_baselines

    k_slider = w.IntSlider(value=num_classes, min=2, max=20, description="classes K")
    r_slider = w.FloatSlider(value=imbalance, min=0.05, max=1.0, step=0.05, description="imbalance")
    table = w.HTML()
    chart = w.Image(format="png")

    def update(_=None):
        counts = class_distribution(k_slider.value, r_slider.value)
        table.value = render_baselines(counts)
        fig = Figure(figsize=(6.5, 3.8))
        plot_baselines(counts, ax=fig.subplots())
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        chart.value = buf.getvalue()

    k_slider.observe(update, names="value")
    r_slider.observe(update, names="value")
    update()
    return w.VBox([w.HBox([k_slider, r_slider]), table, chart])
