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
"""

from __future__ import annotations

import collections
import io
import pickle
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


class UnsafeWeightsError(ValueError):
    """A weight file that is not a plain legacy PyTorch state dict (it names other code, or its
    layout is broken); the message names the file and what was found."""


class _Storage:
    def __init__(self, key: str, dtype: str, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.data: np.ndarray | None = None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor whose storage is not a typed storage")
    return _Tensor(storage, int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


class _StateDictUnpickler(pickle.Unpickler):
    """An unpickler that builds only ordered dicts, tensors and storages."""

    def __init__(self, file, storages: dict):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return name  # a storage type: only ever passed to persistent_load
        raise pickle.UnpicklingError(f"it names {module}.{name}, which a state dict does not need")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and pid[1] in STORAGE_DTYPES):
            raise pickle.UnpicklingError(f"an unknown persistent reference {pid!r:.80}")
        _, kind, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("a storage view, which a plain state dict does not hold")
        key = str(key)
        if key not in self._storages:
            self._storages[key] = _Storage(key, STORAGE_DTYPES[kind], int(numel))
        return self._storages[key]


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
            another format (a zip-format ``.pth``, say), or is cut short; the message names the
            file. Nothing is built from such a file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"PK":
        raise UnsafeWeightsError(
            f"{path} is a zip-format PyTorch file; tlbook reads only the legacy format of the pinned weights"
        )
    stream = io.BytesIO(raw)
    storages: dict[str, _Storage] = {}
    try:
        magic = _StateDictUnpickler(stream, storages).load()
        protocol = _StateDictUnpickler(stream, storages).load()
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise pickle.UnpicklingError("it does not start as a legacy PyTorch file does")
        system = _StateDictUnpickler(stream, storages).load()
        if not isinstance(system, dict) or system.get("little_endian") is not True:
            raise pickle.UnpicklingError("it was not written on a little-endian machine")
        state = _StateDictUnpickler(stream, storages).load()
        keys = _StateDictUnpickler(stream, storages).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise UnsafeWeightsError(f"{path} is not a plain legacy PyTorch state dict: {error}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, _Tensor) for k, v in state.items()):
        raise UnsafeWeightsError(f"{path} holds something other than a mapping of names to tensors")
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(storages):
        raise UnsafeWeightsError(f"{path}: its list of storages does not match the tensors it holds")
    for key in map(str, keys):
        storage = storages[key]
        head = stream.read(8)
        if len(head) != 8:
            raise UnsafeWeightsError(f"{path} is cut short before storage {key}")
        count = int.from_bytes(head, "little")
        itemsize = np.dtype(storage.dtype).itemsize
        body = stream.read(count * itemsize)
        if count != storage.numel or len(body) != count * itemsize:
            raise UnsafeWeightsError(f"{path}: storage {key} is cut short or has the wrong size")
        storage.data = np.frombuffer(body, dtype=storage.dtype)
    if stream.read(1):
        raise UnsafeWeightsError(f"{path} has bytes after its last storage")
    return {name: _materialise(path, name, tensor) for name, tensor in state.items()}


def _materialise(path: Path, name: str, tensor: _Tensor) -> np.ndarray:
    data = tensor.storage.data
    itemsize = data.itemsize
    last = tensor.offset + sum((s - 1) * st for s, st in zip(tensor.size, tensor.stride, strict=True) if s > 0)
    if tensor.offset < 0 or any(s < 0 or st < 0 for s, st in zip(tensor.size, tensor.stride, strict=True)):
        raise UnsafeWeightsError(f"{path}: tensor {name} has a negative size or stride")
    if 0 in tensor.size:
        return np.zeros(tensor.size, dtype=data.dtype)
    if last >= len(data):
        raise UnsafeWeightsError(f"{path}: tensor {name} reaches past the end of its storage")
    view = np.lib.stride_tricks.as_strided(
        data[tensor.offset :],
        shape=tensor.size,
        strides=tuple(st * itemsize for st in tensor.stride),
        writeable=False,
    )
    return np.array(view, dtype=data.dtype.newbyteorder("="))
