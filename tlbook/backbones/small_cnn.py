"""The small CNN: the quick profile's backbone architecture, and a classifier on any backbone.

A *backbone* maps an image batch ``(n, h, w, 3)`` with values 0..255 to a feature vector per
image, ``(n, d)``: the φ(x) of the article's prediction = θ·φ(x). Preprocessing (here a rescaling
to 0..1) sits inside the model, so whoever receives the model receives its preprocessing too.
:func:`build_small_cnn` builds the quick profile's backbone with random, seeded weights;
:func:`build_classifier` puts a softmax layer over K classes on any backbone (θ·φ(x) + b).
"""

from __future__ import annotations


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
    backbone,
    num_classes: int,
    *,
    seed: int = 0,
    name: str = "classifier",
    backbone_training: bool | None = None,
    head_initializer: str = "zeros",
):
    """``backbone`` followed by a softmax layer over ``num_classes`` classes (θ·φ(x) + b).

    Args:
        backbone: image → feature model, a functional ``keras.Model`` (a subclassed model has no
            input tensor to build on). The classifier's input is the backbone's own input tensor, so
            ``keras.Model(model.inputs, backbone.output)`` is φ again.
        num_classes: K, the number of classes (>= 2).
        seed: seeds the head's initializer (when it is random).
        head_initializer: how the head's kernel starts, one of
            :data:`~tlbook.models.heads.HEAD_INITIALIZERS`: ``"zeros"`` (the untrained model's loss
            is exactly ln K) or ``"glorot_uniform"`` (Keras's default).
        backbone_training: passed as ``training=`` when calling the backbone. It decides the
            BatchNorm mode when the model is *called directly*; under Keras 3's ``fit`` the outer
            ``training=True`` overrides it (keras-team/keras#20285), and only ``trainable=False``
            keeps a BatchNorm layer in inference mode (see :func:`~tlbook.models.inspection.set_trainable`).

    Raises:
        ValueError: ``num_classes < 2``, or an unknown ``head_initializer``.
    """
    import keras
    from keras import layers

    from tlbook.models.heads import head_kernel_initializer  # here: tlbook.models imports this module

    if num_classes < 2:
        raise ValueError(f"a classifier needs num_classes >= 2, got {num_classes!r}")
    kernel = head_kernel_initializer(head_initializer, seed=seed)
    inputs = backbone.inputs[0]  # the backbone's own input: its layers stay reachable from the model's input
    outputs = layers.Dense(
        num_classes,
        activation="softmax",
        kernel_initializer=kernel,
        name="head",
    )(backbone(inputs, training=backbone_training))
    return keras.Model(inputs, outputs, name=name)
