"""The head θ, b on the features φ(x): the article's Dense(1024) → Dense(K), built alone or inside a model,
and read back as NumPy arrays (prediction = softmax(φ(x)θ + b))."""

from __future__ import annotations

import contextlib

import numpy as np

#: The layer names of every model :func:`~tlbook.models.transfer.build_transfer_model` builds: the
#: (frozen) base, the article's Dense(1024) and its Dense(K) softmax. The chapters,
#: :mod:`tlbook.training` and :mod:`tlbook.experiments` find the parts by these names.
BASE, HIDDEN, HEAD = "base", "hidden", "head"

#: How a new head's kernel θ can start, by the names Keras gives the initializers: ``"zeros"``, every
#: new head tlbook puts on a base (all logits 0 before training, the softmax uniform, so the first
#: loss is ln K on any data: the one first-loss rule of Chapters 3, 4 and 5), or ``"glorot_uniform"``,
#: what ``keras.layers.Dense`` uses when not told (seeded here), for comparing the two and for the
#: networks trained from scratch (:func:`tlbook.models.transfer.scratch_model`). The bias starts at
#: 0 either way. A zero kernel is not the all-zero pitfall: that one is about hidden units, which
#: would stay identical, while each output unit has its own target, so θ's first gradient, h(p - y),
#: differs from class to class. What reaches the layers below is θ(p - y): zero on the first step,
#: small while θ is small, which leaves a pretrained base undisturbed at first and delays a network
#: trained from scratch (why scratch_model keeps the random kernel). ViT's fine-tuning starts its
#: new head at zero too (Dosovitskiy et al. 2021).
HEAD_INITIALIZERS = ("zeros", "glorot_uniform")


def head_kernel_initializer(initializer: str = "zeros", *, seed: int = 0):
    """The Keras initializer for a new head's kernel θ, one of :data:`HEAD_INITIALIZERS`;
    ``"glorot_uniform"`` is seeded by ``seed``, so a seed gives the same weights every time.

    Raises:
        ValueError: an initializer not in :data:`HEAD_INITIALIZERS`.
    """
    import keras

    if initializer == "zeros":
        return keras.initializers.Zeros()
    if initializer == "glorot_uniform":
        return keras.initializers.GlorotUniform(seed=seed * 100 + 99)
    raise ValueError(f"head_initializer must be one of {', '.join(map(repr, HEAD_INITIALIZERS))}, got {initializer!r}")


def strategy_scope(strategy):
    """``strategy.scope()`` for a ``tf.distribute.Strategy``, or a context that does nothing for ``None``:
    every builder here creates its variables inside it, so the same code runs on one CPU or many devices."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def article_head(features, num_classes: int, *, head_units: int = 1024, seed: int = 0, head_initializer: str = "zeros"):
    """The article's head on a feature tensor: Dense(head_units, relu) → Dense(K, softmax).

    The hidden layer starts from seeded Glorot-uniform weights; the ``head`` layer's kernel from
    ``head_initializer`` (:func:`head_kernel_initializer`; the default, zeros, makes the untrained
    model's loss exactly ln K). The layers are named ``"hidden"`` and ``"head"`` and their initial
    weights depend only on ``seed``, so the head built here inside
    :func:`~tlbook.models.transfer.build_transfer_model` and the head trained alone on cached
    features (:func:`head_model`) start from the same weights, and
    :func:`tlbook.training.copy_head` can move one into the other.

    Args:
        features: a Keras tensor of shape ``(batch, d)``.

    Returns:
        The output tensor, ``(batch, num_classes)`` probabilities.

    Raises:
        ValueError: an unknown ``head_initializer``.
    """
    import keras

    kernel = head_kernel_initializer(head_initializer, seed=seed)

    hidden = keras.layers.Dense(
        head_units,
        activation="relu",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed * 100 + 98),
        name=HIDDEN,
    )(features)
    return keras.layers.Dense(
        num_classes,
        activation="softmax",
        kernel_initializer=kernel,
        name=HEAD,
    )(hidden)


def head_model(
    feature_dim: int,
    num_classes: int,
    *,
    head_units: int = 1024,
    learning_rate: float = 1e-3,
    seed: int = 0,
    strategy=None,
    head_initializer: str = "zeros",
):
    """The article's head alone (Dense(head_units, relu) → Dense(K, softmax)) on feature vectors.

    Its layers are those of :func:`tlbook.models.transfer.build_transfer_model`, built by the same
    :func:`article_head` (``head_initializer`` as there), so :func:`tlbook.training.copy_head` can
    move trained weights into the full model.
    """
    import keras

    with strategy_scope(strategy):
        inputs = keras.Input(shape=(feature_dim,), name="features")
        outputs = article_head(inputs, num_classes, head_units=head_units, seed=seed, head_initializer=head_initializer)
        model = keras.Model(inputs, outputs, name="head_on_features")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
    return model


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
