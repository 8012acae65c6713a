"""What a chapter inspects in a model: its layers and which of them train, its BatchNorm layers, and the
split prediction = softmax(φ(x)θ + b) drawn from the model itself."""

from __future__ import annotations

import numpy as np

from tlbook.models.heads import HEAD


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


def phi_theta_mermaid(model, *, backbone: str = "backbone", head: str = HEAD) -> str:
    """The split prediction = softmax(φ(x)θ + b) of a classifier, as a Mermaid flowchart (source text).

    Read from the model itself, so the picture cannot drift from the code: the input's shape, the
    backbone φ (its layer count, parameters, and whether it is frozen), the feature vector φ(x)
    with its length d, and the head θ, b (a d × K matrix and K biases) with its softmax over K classes.

    Args:
        model: a classifier whose layers include the backbone and the head (for example
            :func:`~tlbook.models.transfer.transfer_classifier`'s model).
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
