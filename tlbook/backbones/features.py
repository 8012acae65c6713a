"""Feature extraction: φ(x) of every image through a frozen backbone, computed once and cached.

:func:`extract_features` runs images through a backbone in inference mode; :func:`cached_features`
keeps what it returns in the tlbook cache, under a key (:func:`features_key`) made of the
backbone's weights, the images, the code and the kernels that compute them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from tlbook.cache import cached
from tlbook.config import code_digest
from tlbook.progress import keras_callback, progress_bar


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
    code of :mod:`tlbook.backbones` and of :mod:`tlbook.preprocessing`, the images (shape, dtype, bytes) and
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

    def read(path: Path) -> np.ndarray:
        stored = np.load(path, allow_pickle=False)
        if stored.shape[0] != len(images) or stored.dtype != np.float32:
            raise ValueError(f"holds {stored.shape} {stored.dtype} features for {len(images)} images")
        return stored

    return cached(
        "features",
        {"features": features_key(backbone, images)},
        lambda: extract_features(backbone, images, batch_size=batch_size),
        write=lambda features, path: np.save(path, features),
        read=read,
        code=(),  # features_key holds the code's digest
        suffix=".npy",
    )
