"""ResNet50, the article's backbone: its ImageNet weights, found in a cache or downloaded once.

ResNet50's ImageNet weights come from the tlbook cache, verified, or are downloaded once
(:mod:`tlbook.downloads`); its preprocessing is a layer of the model (:func:`resnet_preprocess`).
:class:`WeightsUnavailableError` says that pretrained weights are neither cached nor downloadable
here (:mod:`tlbook.backbones.lite0` raises it too, for EfficientNet-Lite0's).
"""

from __future__ import annotations

import os
from pathlib import Path

from tlbook.preprocessing import ResNetPreprocess


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
