import numpy as np
import pytest

from tlbook import widgets


def test_class_distribution():
    assert np.allclose(widgets.class_distribution(4), 250)
    skewed = widgets.class_distribution(3, imbalance=0.5, total=7)
    assert np.allclose(skewed, [4, 2, 1])
    with pytest.raises(ValueError, match="imbalance"):
        widgets.class_distribution(3, imbalance=0)
    with pytest.raises(ValueError, match="K >= 2"):
        widgets.class_distribution(1)


def test_render_baselines_shows_ln_k():
    html = widgets.render_baselines([1] * 10)
    assert "2.302585" in html and "0.1000" in html


def test_explorer_follows_its_sliders():
    box = widgets.baseline_explorer(num_classes=10)
    (k_slider, r_slider), table = box.children[0].children, box.children[1]
    assert "2.302585" in table.value
    k_slider.value = 2
    assert "0.693147" in table.value and "0.5000" in table.value
    r_slider.value = 0.5
    assert "0.6667" in table.value  # majority share of counts 2:1


def test_explorer_chart_is_redrawn():
    box = widgets.baseline_explorer(num_classes=4)
    chart = box.children[2]
    first = chart.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    box.children[0].children[0].value = 7
    assert chart.value != first
