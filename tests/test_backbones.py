"""The tlbook.backbones package: every name it exports, documented, and how its submodules import."""

import ast
import importlib
import inspect
from pathlib import Path

from public_api import defined_here

import tlbook.backbones

SUBMODULES = ["small_cnn", "source", "controls", "features", "resnet50", "lite0"]
FOLDER = Path(tlbook.backbones.__file__).parent


def _documented_constants(path: Path) -> set[str]:
    """The module-level names of ``path`` assigned right below a ``#:`` comment (what autodoc shows)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return {
        target.id
        for node in ast.parse("\n".join(lines)).body
        if isinstance(node, ast.Assign) and node.lineno > 1 and lines[node.lineno - 2].lstrip().startswith("#:")
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def test_every_exported_name_is_importable_and_documented():
    exported = tlbook.backbones.__all__
    assert len(exported) == len(set(exported))
    namespace = {}
    exec("from tlbook.backbones import *", namespace)
    assert set(exported) <= set(namespace)
    constants = set().union(*(_documented_constants(path) for path in FOLDER.glob("*.py")))
    for name in exported:
        obj = getattr(tlbook.backbones, name)
        if inspect.isclass(obj):
            assert vars(obj).get("__doc__"), f"{name} has no docstring of its own"
        elif inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"
        else:
            assert name in constants, f"{name} has no #: comment where it is defined"


def test_every_public_name_of_the_submodules_is_exported():
    exported = set(tlbook.backbones.__all__)
    for sub in SUBMODULES:
        module = importlib.import_module(f"tlbook.backbones.{sub}")
        assert module.__doc__, f"tlbook.backbones.{sub} has no docstring"
        assert f":mod:`tlbook.backbones.{sub}`" in tlbook.backbones.__doc__, f"the package docstring skips {sub}"
        defined = defined_here(module)
        defined |= _documented_constants(FOLDER / f"{sub}.py")
        assert defined <= exported, f"tlbook.backbones.{sub} defines {sorted(defined - exported)}"
        for name in defined:
            assert getattr(tlbook.backbones, name) is getattr(module, name), name
    assert {p.stem for p in FOLDER.glob("*.py")} == {"__init__", *SUBMODULES}


def test_submodules_import_each_other_directly_and_no_private_name():
    """A submodule imports another by its own name, never through the package's ``__init__`` (which
    imports them all), and a name starting with ``_`` stays in its module."""
    for sub in SUBMODULES:
        path = FOLDER / f"{sub}.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tlbook"):
                names = [alias.name for alias in node.names]
                assert node.module != "tlbook.backbones" and not (node.module == "tlbook" and "backbones" in names), (
                    f"{sub}.py imports through tlbook.backbones"
                )
                assert not any(n.startswith("_") for n in names), f"{sub}.py imports {names} from {node.module}"
