import os
import subprocess
import sys

from tlbook import _quiet


def test_import_tensorflow_returns_the_module():
    tf = _quiet.import_tensorflow()
    assert hasattr(tf, "constant")


def test_importing_tlbook_is_quiet_and_leaves_environment_and_loggers_alone():
    code = (
        "import logging, os; before = dict(os.environ); import tlbook, tensorflow as tf; "
        "print(sorted(set(os.environ.items()) ^ set(before.items()))); "
        "print(tf.get_logger().level, logging.getLogger().level)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    changed, levels = run.stdout.splitlines()[-2:]
    assert changed == "[]"  # no variable added or changed
    assert levels == "0 30"  # TensorFlow's logger and the root logger at their defaults (NOTSET, WARNING)
    assert "oneDNN" not in run.stderr and "absl" not in run.stderr, run.stderr[-2000:]


def test_descriptor_2_is_silenced_then_restored(capfd):
    with _quiet._stderr_fd_silenced():
        os.write(2, b"native chatter\n")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "native chatter" not in err
    assert "after" in err
