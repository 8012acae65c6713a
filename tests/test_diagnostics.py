"""The tlbook.diagnostics package: every name it exports, documented, how its submodules import, and an
import that leaves TensorFlow alone."""

import subprocess
import sys

from public_api import check_exports, check_imports

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


def test_every_exported_name_is_importable_documented_and_every_public_name_exported():
    check_exports("tlbook.diagnostics", SUBMODULES)


def test_submodules_import_each_other_directly_and_no_private_name():
    check_imports("tlbook.diagnostics", SUBMODULES)


def test_importing_the_diagnostics_does_not_import_tensorflow():
    subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW], check=True, timeout=120)
