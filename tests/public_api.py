"""What a tlbook module offers: the one definition the package tests and the API-page test share,
and the checks every sub-package (``tlbook.data``, ``tlbook.backbones``, ...) passes."""

import ast
import importlib
import inspect
from pathlib import Path


def defined_here(module) -> set[str]:
    """The public functions and classes ``module`` itself defines (not the ones it imports)."""
    return {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    }


def documented_constants(path: Path) -> set[str]:
    """The public module-level names of ``path`` assigned right below a ``#:`` comment (what autodoc shows)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return {
        target.id
        for node in ast.parse("\n".join(lines)).body
        if isinstance(node, ast.Assign) and node.lineno > 1 and lines[node.lineno - 2].lstrip().startswith("#:")
        for target in node.targets
        if isinstance(target, (ast.Name, ast.Tuple))
        for target in (target.elts if isinstance(target, ast.Tuple) else [target])
        if not target.id.startswith("_")
    }


def check_exports(package_name: str, submodules: list[str]) -> None:
    """Every name in the package's ``__all__`` is importable and documented (a docstring, or a ``#:``
    comment for a constant); every public name a submodule defines is exported, the same object;
    every submodule has a docstring and a line in the package's; no other module sits in the folder."""
    package = importlib.import_module(package_name)
    folder = Path(package.__file__).parent
    exported = package.__all__
    assert len(exported) == len(set(exported))
    namespace = {}
    exec(f"from {package_name} import *", namespace)
    assert set(exported) <= set(namespace)
    constants = set().union(*(documented_constants(path) for path in folder.glob("*.py")))
    for name in exported:
        obj = getattr(package, name)
        if inspect.isclass(obj):
            assert vars(obj).get("__doc__"), f"{name} has no docstring of its own"
        elif inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"
        else:
            assert name in constants, f"{name} has no #: comment where it is defined"
    for sub in submodules:
        module = importlib.import_module(f"{package_name}.{sub}")
        assert module.__doc__, f"{package_name}.{sub} has no docstring"
        assert f":mod:`{package_name}.{sub}`" in package.__doc__, f"the package docstring skips {sub}"
        defined = defined_here(module) | documented_constants(folder / f"{sub}.py")
        assert defined <= set(exported), f"{package_name}.{sub} defines {sorted(defined - set(exported))}"
        for name in defined:
            assert getattr(package, name) is getattr(module, name), name
    assert {p.stem for p in folder.glob("*.py")} == {"__init__", *submodules}


def check_imports(package_name: str, submodules: list[str]) -> None:
    """A submodule imports another by its own name, never through the package's ``__init__`` (which
    imports them all), and a name starting with ``_`` stays in its module."""
    folder = Path(importlib.import_module(package_name).__file__).parent
    short = package_name.rsplit(".", 1)[-1]
    for sub in submodules:
        path = folder / f"{sub}.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tlbook"):
                names = [alias.name for alias in node.names]
                assert node.module != package_name and not (node.module == "tlbook" and short in names), (
                    f"{sub}.py imports through {package_name}"
                )
                assert not any(n.startswith("_") for n in names), f"{sub}.py imports {names} from {node.module}"
