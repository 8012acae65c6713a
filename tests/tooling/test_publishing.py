"""Publishing: the GitHub Actions workflow that builds the book and puts it on GitHub Pages, and Binder."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "pages.yml"
LINTER = Path(sys.executable).parent / "check-jsonschema"  # installed from requirements.txt


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINTER), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_workflow_passes_the_linter():
    done = lint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "break_it",
    [
        lambda text: text.replace("runs-on: ubuntu-24.04\n    steps:", "steps:", 1),  # a job with nowhere to run
        lambda text: text.replace(
            "      - uses: actions/checkout@v4", "      - usses: actions/checkout@v4", 1
        ),  # a misspelled key
    ],
)
def test_the_linter_fails_on_a_broken_workflow(tmp_path, break_it):
    broken = tmp_path / "pages.yml"
    broken.write_text(break_it(WORKFLOW.read_text()))
    assert broken.read_text() != WORKFLOW.read_text()
    assert lint(broken).returncode != 0


def test_the_workflow_builds_as_the_readme_says_and_publishes_the_site_on_a_push_to_main():
    flow = yaml.safe_load(WORKFLOW.read_text())
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads the key `on` as true
    assert triggers["push"]["branches"] == ["main"]
    build = flow["jobs"]["build"]["steps"]
    assert any(step.get("run") == "make book" for step in build) and "make book" in (ROOT / "README.md").read_text()
    pdf = next(step["run"] for step in build if "make pdf" in step.get("run", ""))
    assert "tests/tooling/test_pdf.py" in pdf and "_build/html/pdf/" in pdf  # checked, then published
    python = next(
        step["with"]["python-version"] for step in build if step.get("uses", "").startswith("actions/setup-python")
    )
    assert python == (ROOT / "binder" / "runtime.txt").read_text().strip().removeprefix(
        "python-"
    )  # the one Python CI tests
    upload = next(step for step in build if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert flow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert any(step.get("uses", "").startswith("actions/deploy-pages") for step in flow["jobs"]["deploy"]["steps"])
    assert "## Publishing" in (ROOT / "README.md").read_text()


def test_binder_builds_the_environment_of_make():
    lines = [line.strip() for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()]
    assert "-r ../requirements.txt" in lines  # the pinned requirements, which end with `-e .` (tlbook)
    assert (ROOT / "requirements.txt").read_text().rstrip().endswith("-e .")


RELEASE = ROOT / ".github" / "workflows" / "release.yml"


def test_the_release_workflow_passes_the_linter_and_builds_on_a_version_tag():
    done = lint(RELEASE)
    assert done.returncode == 0, done.stdout + done.stderr
    flow = yaml.safe_load(RELEASE.read_text())
    triggers = flow[True] if True in flow else flow["on"]
    assert triggers == {"push": {"tags": ["v*"]}}
    runs = " ".join(step.get("run", "") for step in flow["jobs"]["release"]["steps"])
    assert "pip wheel" in runs and "make book" in runs and "make pdf" in runs and "gh release create" in runs


def test_the_version_is_the_same_everywhere_it_is_named():
    import tlbook

    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["version"] == tlbook.__version__
    assert f"## {tlbook.__version__}" in (ROOT / "CHANGELOG.md").read_text()
    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()  # read from tlbook/__init__.py
