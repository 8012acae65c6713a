"""pyproject.toml declares what tlbook imports: a `pip install` of tlbook alone gets all of it."""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_distributions(package: Path) -> dict[str, set[str]]:
    """{distribution: modules of ``package`` importing it} for every absolute import of a module
    outside the standard library and the package itself, at any depth (lazy imports included)."""
    found: dict[str, set[str]] = {}
    owners = importlib.metadata.packages_distributions()
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {name.split(".")[0] for name in names}:
                if top in sys.stdlib_module_names or top == package.name:
                    continue
                for dist in owners.get(top, [top]):
                    found.setdefault(normalized(dist), set()).add(path.name)
    return found


def declared(pyproject: Path) -> set[str]:
    requirements = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return {normalized(re.split(r"[ <>=!~;\[]", r, maxsplit=1)[0]) for r in requirements}


def normalized(name: str) -> str:
    """A distribution's name as pip compares it (PEP 503): case and runs of -_. do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_import_of_tlbook_is_a_declared_dependency():
    missing = {
        d: sorted(m)
        for d, m in imported_distributions(ROOT / "tlbook").items()
        if d not in declared(ROOT / "pyproject.toml")
    }
    assert not missing, f"imported by tlbook but not in pyproject.toml's dependencies: {missing}"


def test_the_check_finds_an_undeclared_import(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("import os\nfrom pkg import b\n\ndef f():\n    from scipy import stats\n")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "pkg"\ndependencies = ["numpy>=2"]\n')
    assert imported_distributions(package) == {"scipy": {"a.py"}}
    assert "scipy" not in declared(pyproject) and declared(pyproject) == {"numpy"}
