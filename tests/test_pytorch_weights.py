"""The restricted PyTorch reader: a legacy file written here without PyTorch is read back tensor by tensor,
and hostile legacy PyTorch files: each is refused by the restricted reader with an UnsafeWeightsError that
names the file, in well under a second and a few megabytes, never by hanging, exhausting memory or
another exception. The files are crafted by hand (pickle opcodes, struct) from a small valid one."""

import collections
import io
import os
import pickle
import struct
import sys
import tracemalloc
import types

import numpy as np
import pytest
from hang_guard import no_hang

from tlbook import pytorch_weights
from tlbook.pytorch_weights import UnsafeWeightsError, read_state_dict

MARKER = "MARKER-0123456789"  # a string in a valid file whose pickle opcode is replaced by hostile ones
BASE = 1_000_000  # memo indices of the injected opcodes, far from the file's own


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


def _small_file(tmp_path, monkeypatch):
    """A valid file of three tensors: a 2x3 matrix and a view of its last two elements (one storage), and a counter."""
    torch, utils = _fake_torch(monkeypatch)
    storage = _FakeStorage("0", "<f4", np.arange(6))
    counter = _FakeStorage("1", "<i8", [3])
    tensors = {"w": (storage, 0, (2, 3), (3, 1)), "b": (storage, 4, (2,), (1,)), "n": (counter, 0, (), ())}
    return write_legacy(tmp_path / "small.pth", tensors, torch, utils)


def _inject(tmp_path, monkeypatch, name, where, opcodes: bytes):
    """A small valid file with MARKER in place ``where`` (a tensor's name, a state dict value, a storage
    key, a tensor's shape), whose opcode for it then becomes ``opcodes`` (which push one object)."""
    torch, utils = _fake_torch(monkeypatch)
    storage = _FakeStorage(MARKER if where == "key" else "0", "<f4", [1.0, 2.0])
    size = MARKER if where == "size" else (2,)
    tensors = {MARKER if where == "name" else "w": (storage, 0, size, (1,))}
    extra = MARKER if where == "value" else None
    path = write_legacy(tmp_path / name, tensors, torch, utils, extra=extra)
    op = b"X" + struct.pack("<I", len(MARKER)) + MARKER.encode()
    assert op in path.read_bytes()
    path.write_bytes(path.read_bytes().replace(op, opcodes))
    return path


def _exponential(depth=100) -> bytes:
    """Opcodes for t = (); t = (t, t) ``depth`` times, sharing each level through the memo: a few
    hundred bytes whose repr() or hash() would take 2**depth steps."""
    out = b")r" + struct.pack("<I", BASE) + b"0"  # EMPTY_TUPLE, LONG_BINPUT, POP
    for i in range(depth):
        get = b"j" + struct.pack("<I", BASE + i)  # LONG_BINGET
        out += get + get + b"\x86r" + struct.pack("<I", BASE + i + 1) + b"0"  # TUPLE2, LONG_BINPUT, POP
    return out + b"j" + struct.pack("<I", BASE + depth)


def _refused(path, match=None):
    """Read ``path``; the UnsafeWeightsError it must raise, before a hang and within 50 MB of memory."""
    tracemalloc.start()
    try:
        with no_hang(), pytest.raises(UnsafeWeightsError, match=match) as error:
            read_state_dict(path)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    message = str(error.value)
    assert str(path) in message and "Get the file again" in message, message
    assert peak < 50e6, (peak, message)
    return message


def test_the_small_file_reads(tmp_path, monkeypatch):
    state = read_state_dict(_small_file(tmp_path, monkeypatch))
    np.testing.assert_array_equal(state["w"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(state["b"], [4, 5])
    assert state["n"] == 3 and state["n"].dtype == np.int64


@pytest.mark.parametrize(
    "offset, size, stride, match",
    [
        (0, (2**40,), (0,), "1099511627776 elements, its storage only 1"),  # stride 0 broadcasts one element
        (0, (2**31, 2**31), (0, 0), "elements, its storage only 1"),
        (0, (2**32, 2**32), (1, 1), "elements, its storage only 1"),  # the product overflows int64
        (0, (2**62, 2**62, 2**62), (1, 1, 1), "elements, its storage only 1"),
        (0, (-1,), (1,), "not an int from 0 to 2\\*\\*63-1"),
        (0, (1,), (-1,), "not an int from 0 to 2\\*\\*63-1"),
        (-1, (1,), (1,), "not an int from 0 to 2\\*\\*63-1"),
        (0, (2**64,), (1,), "an int of 65 bits"),
        (0, (1,) * 33, (1,) * 33, "at most 32"),
        (2**62, (1,), (1,), "past the end"),
        (0, (0, 2**62, 2**62), (1, 1, 1), "more than 2\\*\\*63 bytes"),
    ],
)
def test_a_tensor_whose_elements_are_not_in_its_storage_is_refused(tmp_path, monkeypatch, offset, size, stride, match):
    torch, utils = _fake_torch(monkeypatch)
    storage = _FakeStorage("0", "<f4", [1.0])
    path = write_legacy(tmp_path / "views.pth", {"w": (storage, offset, size, stride)}, torch, utils)
    _refused(path, match)


@pytest.mark.parametrize(
    "where, match",
    [
        ("name", "a dict whose key is a tuple of 2 items"),  # the C unpickler would hash it forever
        ("value", "its entry 'extra' is a tuple of 2 items, not a tensor"),
        ("key", "a storage of type 'FloatStorage', key a tuple of 2 items"),
        ("size", "a tensor's shape \\(a tuple of 2 items\\)"),
    ],
)
def test_an_object_with_an_exponentially_long_text_form_is_described_briefly(tmp_path, monkeypatch, where, match):
    path = _inject(tmp_path, monkeypatch, "exponential.pth", where, _exponential())
    assert len(_refused(path, match)) < 1000


DEEP = 20_000


@pytest.mark.parametrize(
    "where, opcodes, match",
    [
        ("name", b"]" + b"\x85" * DEEP, "a dict whose key is a tuple of 1 items"),  # tuples 20 000 deep
        ("value", b"]" * DEEP + b"a" * (DEEP - 1), "its entry 'extra' is a list of 1 items"),  # lists
        ("key", b"}" + b"\x85" * DEEP, "key a tuple of 1 items"),
        ("size", b"(" * DEEP + b"t" * DEEP, "shape or strides hold a tuple of 1 items"),  # marks
    ],
)
def test_nesting_thousands_deep_is_refused_without_recursion(tmp_path, monkeypatch, where, opcodes, match):
    _refused(_inject(tmp_path, monkeypatch, "deep.pth", where, opcodes), match)


def test_many_views_of_one_storage_are_refused_before_they_fill_memory(tmp_path, monkeypatch):
    torch, utils = _fake_torch(monkeypatch)
    storage = _FakeStorage("0", "<f4", np.zeros(4000))
    tensors = {f"w{i}": (storage, 0, (4000,), (1,)) for i in range(2000)}  # 32 MB of copies from 16 kB
    path = write_legacy(tmp_path / "views.pth", tensors, torch, utils)
    _refused(path, "its tensors hold more than 4 times its size")


class _Claims:
    """Storage values that declare ``size`` elements but write only ``values``."""

    def __init__(self, size, values):
        self.size, self._values = size, np.asarray(values, dtype="<f4")

    def astype(self, dtype):
        return self._values.astype(dtype)


@pytest.mark.parametrize(
    "claim, match",
    [
        (2**60, "needs 4611686018427387904 bytes, 4 remain"),
        (2**63 - 1, "needs .* bytes, 4 remain"),
        (2**64 - 1, "declares 18446744073709551615 elements, not a count from 0 to 2\\*\\*63-1"),
        (0, "has 4 bytes after its last storage"),
    ],
)
def test_a_storage_larger_than_the_file_is_refused_before_it_is_read(tmp_path, monkeypatch, claim, match):
    torch, utils = _fake_torch(monkeypatch)
    storage = _FakeStorage("0", "<f4", [1.0])
    storage.values = _Claims(claim, [1.0])
    size = (1,) if claim else (0,)
    path = write_legacy(tmp_path / "huge.pth", {"w": (storage, 0, size, (1,))}, torch, utils)
    _refused(path, match)


def test_a_cut_short_or_random_file_is_refused(tmp_path, monkeypatch):
    good = _small_file(tmp_path, monkeypatch).read_bytes()
    cases = {
        "empty.pth": b"",
        "header.pth": good[:40],
        "in-storage.pth": good[:-5],
        "random.pth": np.random.default_rng(1).bytes(4096),
        "pickled-int.pth": b"\x80\x02K\x01.",
        "memo.pth": b"\x80\x02Nr\xff\xff\xff\xff.",  # the C unpickler would allocate a 32 GB memo
        "opcode.pth": b"\x80\x02c__builtin__\nset\n)R.",
    }
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        _refused(tmp_path / name)


def test_random_truncated_and_damaged_files_read_or_are_refused_quickly(tmp_path, monkeypatch):
    """About 200 files: cut at every 1/50 of a valid file's length, 100 with random bytes changed,
    50 of random bytes. Each reads, or raises UnsafeWeightsError naming it, within a second."""
    good = _small_file(tmp_path, monkeypatch).read_bytes()
    rng = np.random.default_rng(0)
    files = [good[: len(good) * i // 50] for i in range(50)]
    for _ in range(100):
        damaged = bytearray(good)
        for at in rng.integers(0, len(good), size=rng.integers(1, 6)):
            damaged[at] = rng.integers(0, 256)
        files.append(bytes(damaged))
    files += [rng.bytes(int(rng.integers(0, 2000))) for _ in range(50)]
    path, read = tmp_path / "fuzz.pth", 0
    for raw in files:
        path.write_bytes(raw)
        try:
            with no_hang():
                read_state_dict(path)
            read += 1
        except UnsafeWeightsError as error:
            assert str(path) in str(error)
    assert 0 < read < len(files)  # some damage lands in the elements, which then read
