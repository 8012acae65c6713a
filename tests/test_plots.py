import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from tlbook import data, plots  # noqa: E402


def test_plot_projection_labels_everything():
    pts = np.random.default_rng(0).normal(size=(30, 2))
    ax = plots.plot_projection(pts, np.repeat([0, 1, 2], 10), ["a", "b", "c"], title="title here")
    assert ax.get_title() == "title here"
    assert "component" in ax.get_xlabel() and "component" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    assert len(ax.collections) == 3
    plt.close("all")


def test_plot_projection_rejects_bad_points():
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plots.plot_projection(np.zeros((5, 3)), np.zeros(5, int), ["a"], title="t")


def test_plot_probe_comparison():
    idx = pd.MultiIndex.from_product([["pre", "rand"], [1, 10]], names=["backbone", "labels_per_class"])
    table = pd.DataFrame({"mean": [0.5, 0.9, 0.3, 0.6], "std": [0.1, 0.0, 0.05, 0.02], "runs": 3}, index=idx)
    ax = plots.plot_probe_comparison(table, title="probe")
    assert ax.get_title() == "probe" and "%" in ax.get_ylabel() and "per class" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["pre", "rand"]
    line = ax.get_lines()[0]
    np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float), [50, 90])
    plt.close("all")


def test_plot_examples_grid():
    task = data.make_task([1, 2, 3], image_size=10, seed=0)
    fig = plots.plot_examples(task.train, per_class=3, title="examples", classes=[0, 2])
    assert len(fig.axes) == 6
    assert fig.axes[0].get_ylabel() == "1" and fig.axes[3].get_ylabel() == "3"
    assert "10×10 pixels" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="per_class"):
        plots.plot_examples(task.train, per_class=0)
    plt.close("all")


def test_plot_examples_leaves_empty_places_for_a_small_class():
    task = data.make_task([1, 2], image_size=10, seed=0)
    keep = np.flatnonzero(task.train.y == 0)[:2].tolist() + np.flatnonzero(task.train.y == 1).tolist()
    small = data.Split(task.train.x[keep], task.train.y[keep], task.train.class_names)
    fig = plots.plot_examples(small, per_class=4, title="a small class")
    shown = [len(ax.get_images()) for ax in fig.axes]
    assert shown == [1, 1, 0, 0, 1, 1, 1, 1]
    assert [ax.axison for ax in fig.axes[:4]] == [True, True, False, False]
    plt.close("all")


def test_plot_baselines():
    ax = plots.plot_baselines([6, 10, 16])
    assert "ln K = 1.0986" in ax.get_title()
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, [18.75, 31.25, 50.0])
    assert "%" in ax.get_ylabel() and ax.get_xlabel() == "class index"
    plt.close("all")


def test_plot_trace():
    from tlbook import workflow

    rounds = [
        workflow.Round(1, "initial model", {"val_accuracy": 0.5}, True, "r"),
        workflow.Round(2, "adjust", {"val_accuracy": 0.7}, False, "target"),
    ]
    ax = plots.plot_trace(workflow.Trace(rounds, []))
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.5, 0.7])
    assert [t.get_text() for t in ax.texts] == ["adjust", "stop"]
    assert "round" in ax.get_xlabel()
    plt.close("all")


def test_plot_budget_curves_draws_one_line_per_method():
    import pandas as pd

    from tlbook import plots

    columns = pd.MultiIndex.from_tuples([(m, s) for m in ("scratch", "head only") for s in ("mean", "std")])
    table = pd.DataFrame([[0.2, 0.05, 0.5, 0.1], [0.6, 0.02, 0.8, 0.03]], index=[1, "all"], columns=columns)
    ax = plots.plot_budget_curves(table, title="Budget", chance=0.2)
    assert ax.get_title() == "Budget" and [t.get_text() for t in ax.get_xticklabels()] == ["1", "all"]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["chance = 0.20", "head only", "scratch"]
    assert len(ax.containers) == 2  # one errorbar line per method
    assert "labelled" in ax.get_xlabel() and "std" in ax.get_ylabel()


def test_the_module_keeps_its_promise_on_what_each_function_takes_and_returns():
    """Single-panel functions take ax= (and return it, tested above); the multi-panel ones take fig=."""
    import inspect

    public = {
        name: f
        for name, f in inspect.getmembers(plots, inspect.isfunction)
        if name.startswith("plot_") and f.__module__ == plots.__name__
    }
    takes_fig = sorted(name for name, f in public.items() if "fig" in inspect.signature(f).parameters)
    assert takes_fig == ["plot_examples", "plot_gallery", "plot_history", "plot_imagenet_guesses"]
    assert all("ax" in inspect.signature(f).parameters for name, f in public.items() if name not in takes_fig)
    for name in takes_fig:
        assert name in plots.__doc__


def test_plot_gallery_captions_every_image_and_hides_spare_panels():
    images = np.zeros((5, 10, 10, 3), dtype=np.uint8)
    fig = plots.plot_gallery(images, [f"image {i}" for i in range(5)], title="Mistakes", columns=3)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == [f"image {i}" for i in range(5)] and len(fig.axes) == 6
    assert "Mistakes" in fig._suptitle.get_text() and "10×10 pixels" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="one caption per image"):
        plots.plot_gallery(images, ["one"], title="x")
    with pytest.raises(ValueError, match="columns must be at least 1"):
        plots.plot_gallery(images, ["c"] * 5, title="x", columns=0)
    empty = plots.plot_gallery(images[:0], [], title="Mistakes")  # a model with no mistake
    assert empty._suptitle.get_text() == "Mistakes"
    assert [t.get_text() for t in empty.axes[0].texts] == ["no images to show"]


def test_plot_imagenet_guesses_shows_the_most_and_least_sure_image_of_each_class():
    images = np.zeros((5, 10, 10, 3), dtype=np.uint8)
    guesses = [
        [(1, "goose", 0.9), (2, "swan", 0.05)],
        [(3, "daisy", 0.2), (4, "vase", 0.1)],
        [(5, "kite", 0.5), (6, "hen", 0.3)],
        [(7, "hair clip", 0.6), (8, "candle", 0.2)],
        [(9, "abacus", 0.1), (10, "fig", 0.05)],
    ]
    labels = [0, 0, 0, 1, 2]  # class 1 and class 2 have one image each: shown once
    fig = plots.plot_imagenet_guesses(images, guesses, labels, ["birds", "flowers", "fruit", "none"], title="Top 2")
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == [
        "true: birds\n1. goose 0.90\n2. swan 0.05",
        "true: birds\n1. daisy 0.20\n2. vase 0.10",
        "true: flowers\n1. hair clip 0.60\n2. candle 0.20",
        "true: fruit\n1. abacus 0.10\n2. fig 0.05",
    ]
    assert "Top 2" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="one prediction and one label per image"):
        plots.plot_imagenet_guesses(images, guesses[:4], labels, ["a", "b", "c"], title="x")
    with pytest.raises(ValueError, match="image 0 has no guess"):
        plots.plot_imagenet_guesses(images[:1], [[]], [0], ["a"], title="x")
    with pytest.raises(ValueError, match="label 3 has no class name"):
        plots.plot_imagenet_guesses(images[:1], guesses[:1], [3], ["a", "b", "c"], title="x")


def test_plot_history_draws_both_panels_with_references():
    history = {"loss": [2.3, 1.0], "accuracy": [0.1, 0.6], "val_loss": [2.2, 1.1], "val_acc": [0.1, 0.5]}
    ax_loss, ax_acc = plots.plot_history(history, title="Run", num_classes=10, marker_epoch=2)
    assert ax_loss.get_title() == "Run: loss" and "nats" in ax_loss.get_ylabel() and ax_acc.get_xlabel() == "epoch"
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert labels == ["training", "validation", "ln K = 2.303", "start fine-tuning"]
    assert [t.get_text() for t in ax_acc.get_legend().get_texts()][:1] == ["training"]
    assert np.allclose(ax_loss.lines[0].get_ydata(), [2.3, 1.0])
    with pytest.raises(ValueError, match="no 'loss' series"):
        plots.plot_history({"acc": [0.1]})


def test_a_credit_line_is_printed_on_the_figure_itself():
    def printed(fig):
        return [t.get_text() for t in fig.texts if t is not fig._suptitle]

    images = np.zeros((2, 10, 10, 3), dtype=np.uint8)
    fig = plots.plot_gallery(images, ["a", "b"], title="Photos", credit="Photos: someone, GPL-2")
    assert printed(fig) == ["Photos: someone, GPL-2"]
    task = data.make_task([1, 2], image_size=10, seed=0)
    assert printed(plots.plot_examples(task.train, per_class=2, credit="c")) == ["c"]
    assert printed(plots.plot_gallery(images, ["a", "b"], title="Photos")) == []  # none unless asked
    guesses = [[(1, "goose", 0.9)], [(2, "daisy", 0.5)]]
    fig = plots.plot_imagenet_guesses(images, guesses, [0, 1], ["birds", "flowers"], title="t", credit="c")
    assert printed(fig) == ["c"]
    plt.close("all")


def _min_distance_seen_with(colours, cvd_type):
    """The smallest distance between two of ``colours`` in CAM02-UCS (about 1 is a just noticeable
    difference) as a reader with ``cvd_type`` (full severity, Machado et al. 2009) sees them."""
    import itertools

    from colorspacious import cspace_convert
    from matplotlib.colors import to_rgb

    rgb = np.array([to_rgb(c) for c in colours])
    seen = np.clip(cspace_convert(rgb, {"name": "sRGB1+CVD", "cvd_type": cvd_type, "severity": 100}, "sRGB1"), 0, 1)
    ucs = cspace_convert(seen, "sRGB1", "CAM02-UCS")
    return min(np.linalg.norm(ucs[i] - ucs[j]) for i, j in itertools.combinations(range(len(colours)), 2))


@pytest.mark.parametrize("cvd_type", ["protanomaly", "deuteranomaly", "tritanomaly"])
def test_the_palette_stays_apart_for_colour_blind_readers(cvd_type):
    """The first MAX_SERIES colours differ by at least 15 CAM02-UCS units for each deficiency; the
    check fails Matplotlib's default palette, whose orange and green a protanope sees as one."""
    assert _min_distance_seen_with(plots.PALETTE[: plots.MAX_SERIES], cvd_type) >= 15
    default = [matplotlib.colormaps["tab10"](i) for i in range(plots.MAX_SERIES)]
    assert _min_distance_seen_with(default, "protanomaly") < 15


def test_series_style_gives_each_series_the_palettes_colour_and_its_own_marker():
    styles = [plots.series_style(i) for i in range(12)]
    assert [s["color"] for s in styles[:10]] == list(plots.PALETTE)
    assert styles[10] == styles[0] and len({s["marker"] for s in styles[:10]}) == 10
    with pytest.raises(ValueError, match="a series index is >= 0, got -1"):
        plots.series_style(-1)


def test_every_figure_with_series_draws_them_in_the_palette():
    from matplotlib.colors import to_hex

    arms = ("scratch", "head only", "top block", "full", "gradual")
    columns = pd.MultiIndex.from_tuples([(m, s) for m in arms for s in ("mean", "std")])
    table = pd.DataFrame(np.full((2, 10), 0.5), index=[3, "all"], columns=columns)
    ax = plots.plot_budget_curves(table, title="Budget")
    lines = [container.lines[0] for container in ax.containers]
    assert [to_hex(line.get_color()).upper() for line in lines] == list(plots.PALETTE[:5])
    assert len({line.get_marker() for line in lines}) == 5
    ax_loss, _ = plots.plot_history({"loss": [2.0, 1.0], "val_loss": [2.1, 1.2], "accuracy": [0.1, 0.5]}, title="Run")
    assert [to_hex(line.get_color()).upper() for line in ax_loss.lines[:2]] == list(plots.PALETTE[:2])
    ax = plots.plot_projection(np.zeros((4, 2)), np.array([0, 1, 2, 3]), list("abcd"), title="t")
    assert [to_hex(c.get_facecolor()[0]).upper() for c in ax.collections] == list(plots.PALETTE[:4])
    plt.close("all")
