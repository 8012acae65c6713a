"""The tlbook.diagnostics package: every name it exports, and an import that leaves TensorFlow alone."""

import importlib
import subprocess
import sys

from public_api import defined_here

import tlbook.diagnostics

SUBMODULES = ["chance", "logs", "diagnosis", "checks", "text"]

# Runs tlbook.diagnostics with TensorFlow and Keras unimportable: tlbook's own __init__ imports
# TensorFlow when it can (and only warns when it cannot), so the check is that nothing in the
# diagnostics package needs it at import time.
WITHOUT_TENSORFLOW = """
import sys, warnings

class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ModuleNotFoundError(f"{name} is blocked in this test")

sys.meta_path.insert(0, NoTensorFlow())
warnings.simplefilter("ignore")
import tlbook.diagnostics
from tlbook.diagnostics import *
assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "tlbook.diagnostics imported TensorFlow"
"""


def test_every_exported_name_is_importable_and_every_public_name_is_exported():
    exported = tlbook.diagnostics.__all__
    assert len(exported) == len(set(exported))
    for name in exported:
        assert getattr(tlbook.diagnostics, name) is not None, name
    namespace = {}
    exec("from tlbook.diagnostics import *", namespace)
    assert set(exported) <= set(namespace)
    for sub in SUBMODULES:
        module = importlib.import_module(f"tlbook.diagnostics.{sub}")
        assert module.__doc__, f"tlbook.diagnostics.{sub} has no docstring"
        defined = defined_here(module)
        assert defined <= set(exported), f"tlbook.diagnostics.{sub} defines {sorted(defined - set(exported))}"
        for name in defined:
            assert getattr(tlbook.diagnostics, name) is getattr(module, name), name


def test_importing_the_diagnostics_does_not_import_tensorflow():
    subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW], check=True, timeout=120)
