import os

from tlbook import _quiet


def test_import_tensorflow_returns_the_module():
    tf = _quiet.import_tensorflow()
    assert hasattr(tf, "constant")
    assert "TF_CPP_MIN_LOG_LEVEL" in os.environ  # set before the import, so it took effect


def test_descriptor_2_is_silenced_then_restored(capfd):
    with _quiet._stderr_fd_silenced():
        os.write(2, b"native chatter\n")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "native chatter" not in err
    assert "after" in err
