"""Import TensorFlow without its C++ start-up log lines.

TensorFlow 2.21 writes lines such as "All log messages before absl::InitializeLog() is called are
written to STDERR", the oneDNN notice and CUDA probing results straight to file descriptor 2 while
it loads, whatever ``TF_CPP_MIN_LOG_LEVEL`` says. Jupyter forwards that descriptor into notebook
outputs, where the lines (with timestamps and process ids) would differ on every run. This module
points descriptor 2 at the null device for the duration of the import and the first device query,
then restores it; Python-level warnings and exceptions are unaffected.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def _stderr_fd_silenced():
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (some embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Import and return ``tensorflow`` with its C++ start-up messages suppressed.

    For the import only, ``TF_CPP_MIN_LOG_LEVEL=3`` and ``KERAS_BACKEND=tensorflow`` are set where
    the user has not set them; afterwards the environment is as it was (processes the user starts
    inherit their own settings), and no logger is reconfigured. Real failures still raise Python
    exceptions. A second call is cheap.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    defaults = {"TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    added = [name for name in defaults if name not in os.environ]
    os.environ.update({name: defaults[name] for name in added})
    try:
        with _stderr_fd_silenced():
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA probing happens here; keep its messages out too
    finally:
        for name in added:
            os.environ.pop(name, None)
    return tf
