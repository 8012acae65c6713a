"""Models built on a backbone: every classifier the book trains, and what a chapter inspects in one.

One idea a learner meets per submodule:

- :mod:`tlbook.models.heads` - the head θ, b on the features φ(x): the article's Dense(1024) →
  Dense(K) (:func:`~tlbook.models.heads.article_head`), the head alone on cached features
  (:func:`~tlbook.models.heads.head_model`), how a new head starts (a zero kernel, so the first loss
  is ln K: :func:`~tlbook.models.heads.head_kernel_initializer`), and its weights read back as
  NumPy arrays; the layer names ``BASE``, ``HIDDEN`` and ``HEAD`` every model here uses;
- :mod:`tlbook.models.transfer` - the article's transfer model, corrected
  (:func:`~tlbook.models.transfer.build_transfer_model`), and the two arms of every comparison:
  the source-pretrained base frozen under a new head
  (:func:`~tlbook.models.transfer.pretrained_model`) and the same network from scratch
  (:func:`~tlbook.models.transfer.scratch_model`);
- :mod:`tlbook.models.inspection` - what a reader checks in a model: its layers and which of them
  train (:func:`~tlbook.models.inspection.layer_table`,
  :func:`~tlbook.models.inspection.set_trainable`), its BatchNorm layers, and the split
  prediction = softmax(φ(x)θ + b) drawn from the model itself;
- :mod:`tlbook.models.imagenet` - what the ImageNet classifier itself sees in an image.

The backbones (φ) and their weights are in :mod:`tlbook.backbones`; the classifier that pretrains
the small CNN on the source task is built there (:func:`tlbook.backbones.small_cnn.build_classifier`),
next to the pretraining that uses it. Every public name of the submodules is importable from here
too (``from tlbook import models; models.build_transfer_model(...)``).
"""

from tlbook.models.heads import (
    BASE,
    HEAD,
    HEAD_INITIALIZERS,
    HIDDEN,
    article_head,
    head_kernel_initializer,
    head_model,
    head_parameters,
    predict_by_hand,
    strategy_scope,
)
from tlbook.models.imagenet import imagenet_input, imagenet_predictions
from tlbook.models.inspection import batchnorm_layers, layer_table, phi_theta_diagram, phi_theta_mermaid, set_trainable
from tlbook.models.transfer import (
    article_weights,
    build_transfer_model,
    pretrained_model,
    scratch_model,
    transfer_classifier,
)

__all__ = [
    # heads
    "BASE",
    "HIDDEN",
    "HEAD",
    "HEAD_INITIALIZERS",
    "strategy_scope",
    "head_kernel_initializer",
    "article_head",
    "head_model",
    "head_parameters",
    "predict_by_hand",
    # transfer
    "build_transfer_model",
    "article_weights",
    "transfer_classifier",
    "pretrained_model",
    "scratch_model",
    # inspection
    "batchnorm_layers",
    "set_trainable",
    "layer_table",
    "phi_theta_mermaid",
    "phi_theta_diagram",
    # imagenet
    "imagenet_input",
    "imagenet_predictions",
]
