"""tlbook.backbones.resnet50: ResNet50's ImageNet weights, from the tlbook cache, Keras's or a download."""

import contextlib
import dataclasses
import urllib.request

import h5py
import keras
import numpy as np
import pytest

from tlbook import backbones, downloads, files, models

SHAPE = (32, 32, 3)


def _imagenet_like_file(path):
    """A weights file in the format of Keras's ImageNet download (legacy HDF5), with random weights."""
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(7)
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=SHAPE)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, base)
    return base


def _patch_weights_item(monkeypatch, path, url="http://127.0.0.1:9/none.h5"):
    data = path.read_bytes()
    item = dataclasses.replace(downloads.RESNET50_NOTOP, url=url, size=len(data), digest=files.file_digest(path, "md5"))
    monkeypatch.setattr(downloads, "RESNET50_NOTOP", item)
    return item


def test_imagenet_weights_come_from_the_tlbook_cache(tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    path = tmp_cache / downloads.DOWNLOADS_DIR / downloads.RESNET50_NOTOP.filename
    path.parent.mkdir(parents=True)
    saved = _imagenet_like_file(path)
    _patch_weights_item(monkeypatch, path)
    model = models.build_transfer_model(5, weights="imagenet", input_shape=SHAPE)
    for a, b in zip(model.get_layer("base").get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_imagenet_weights_offline_fail_fast_with_advice(tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    # a damaged copy in Keras's cache is not used either
    (tmp_path / "keras" / "models").mkdir(parents=True)
    (tmp_path / "keras" / "models" / downloads.RESNET50_NOTOP.filename).write_bytes(b"half a file")
    monkeypatch.setattr(
        downloads, "RESNET50_NOTOP", dataclasses.replace(downloads.RESNET50_NOTOP, url="http://127.0.0.1:9/w.h5")
    )
    # fast: one attempt to connect, no retries (a wall-clock bound would fail on a loaded machine)
    attempts = []
    real_urlopen = urllib.request.urlopen

    def counting_urlopen(url, *args, **kwargs):
        attempts.append(url)
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", counting_urlopen)
    with pytest.raises(backbones.WeightsUnavailableError) as info:
        models.build_transfer_model(5, weights="imagenet", input_shape=SHAPE)
    assert attempts == ["http://127.0.0.1:9/w.h5"]
    message = str(info.value)
    assert "python -m tlbook prefetch --only resnet50" in message and "weights=None" in message
    assert str(tmp_cache / downloads.DOWNLOADS_DIR) in message and "backbone='efficientnet_lite0'" in message
    assert not list(tmp_cache.glob("downloads/*.h5"))


@contextlib.contextmanager
def _serving(folder):
    """An HTTP server on loopback serving ``folder``; yields its base URL."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_imagenet_weights_downloaded_verified_into_the_tlbook_cache_when_online(tmp_path, tmp_cache, monkeypatch):
    import socket

    served = tmp_path / "www"
    served.mkdir()
    saved = _imagenet_like_file(served / "w.h5")
    with _serving(served) as base_url:
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
        _patch_weights_item(monkeypatch, served / "w.h5", url=f"{base_url}/w.h5")
        path = backbones.resolve_imagenet_weights()
    assert path == downloads.download_path(downloads.RESNET50_NOTOP)  # the tlbook cache, as prefetch puts it
    assert socket.getdefaulttimeout() is None  # nothing process-wide was changed
    model = models.build_transfer_model(2, weights="imagenet", input_shape=SHAPE)  # now found in the cache
    np.testing.assert_array_equal(model.get_layer("base").get_weights()[0], saved.get_weights()[0])
