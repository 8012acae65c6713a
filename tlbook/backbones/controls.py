"""The no-transfer controls: backbones that learned nothing, to show what pretraining adds.

:func:`random_backbone` is the pretrained backbone's architecture (:mod:`tlbook.backbones.small_cnn`,
as wide as the source pretraining's) with random, seeded weights; :func:`pixel_backbone` has no
weights at all, its features are the pixels. A linear probe on each, beside one on the pretrained
backbone (:mod:`tlbook.backbones.source`), shows what the source task taught it.
"""

from __future__ import annotations

from tlbook.backbones.small_cnn import build_small_cnn
from tlbook.backbones.source import source_settings
from tlbook.config import Profile, get_profile


def random_backbone(profile: Profile | None = None, *, seed: int | None = None):
    """The same architecture as :func:`~tlbook.backbones.source.pretrained_backbone` with random
    (seeded) weights: the no-transfer control."""
    profile = profile or get_profile()
    return build_small_cnn(
        profile.input_shape, width=source_settings(profile)["width"], seed=profile.seed if seed is None else seed
    )


def pixel_backbone(profile: Profile | None = None):
    """A "backbone" that learned nothing: it only flattens the image, φ(x) = the pixels.

    Output ``(n, h * w * 3)`` with values 0..255; the baseline that shows what features add.
    """
    import keras

    profile = profile or get_profile()
    inputs = keras.Input(shape=profile.input_shape, name="image")
    return keras.Model(inputs, keras.layers.Flatten(name="pixels")(inputs), name="pixels")
