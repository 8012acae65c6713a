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


def test_the_wheel_installs_non_editable_and_runs(tmp_path):
    """What `pip install tlbook` gives, not the editable checkout: the wheel built from pyproject.toml,
    its version from tlbook/__init__.py, its data files inside, importable and runnable on its own."""
    import os
    import shutil
    import subprocess
    import zipfile

    # built from a copy of the sources: setuptools writes its build/ folder beside them, and two
    # test runs at once on one checkout collided there ("File exists")
    source = tmp_path / "source"
    shutil.copytree(ROOT / "tlbook", source / "tlbook", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", tmp_path, source],
        check=True,
        cwd=tmp_path,
    )
    import tlbook

    (wheel,) = tmp_path.glob("tlbook-*.whl")
    assert wheel.name.startswith(f"tlbook-{tlbook.__version__}-")
    assert "tlbook/data_files/article_log.txt" in zipfile.ZipFile(wheel).namelist()
    target = tmp_path / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target, wheel], check=True
    )
    env = {**os.environ, "PYTHONPATH": str(target), "TLBOOK_CACHE": str(tmp_path / "cache")}
    code = (
        "import tlbook, tlbook.diagnostics as dx; print(tlbook.__file__); "
        "print(len(dx.parse_keras_log(dx.article_log()).history['loss']))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    module, epochs = out.stdout.split()
    assert Path(module).is_relative_to(target) and epochs == "10"  # the wheel's copy, with its data file
    doctor = subprocess.run(
        [sys.executable, "-m", "tlbook", "doctor"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert doctor.returncode in (0, 1) and "Traceback" not in doctor.stderr, doctor.stderr[-2000:]
    assert "[  ok] Python" in doctor.stdout, doctor.stdout
