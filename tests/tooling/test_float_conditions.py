"""The notebook check of `make test` (Makefile: check, and notebooks-check alone) runs the chapters under ELSEWHERE_ENV
(Eigen's kernels) and AVX2 (oneDNN limited to AVX2 kernels). Each must really change TensorFlow's
float results on the machine that runs it; otherwise comparing its outputs with the stored ones
would prove nothing about other machines."""

import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A few training steps of the quick profile's small CNN, printed as a digest of every weight bit.
TRAIN = """
import hashlib
import numpy as np
import tlbook
tlbook.seed_everything(0)
from tlbook import models
rng = np.random.default_rng(0)
x = rng.integers(0, 256, size=(128, 32, 32, 3)).astype("float32")
y = rng.integers(0, 5, size=128)
model = models.scratch_model(5, seed=0)
model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False)
weights = np.concatenate([w.numpy().ravel() for w in model.weights])
print("digest", hashlib.sha256(weights.tobytes()).hexdigest())
"""


def makefile_variable(pattern: str) -> str:
    match = re.search(pattern, (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, f"the Makefile has no line matching {pattern!r}"
    return match.group(1).strip()


def stored_environment() -> dict[str, str]:
    """The kernel choice the Makefile exports for every run (the one the stored outputs were made under)."""
    return {"TF_ENABLE_ONEDNN_OPTS": makefile_variable(r"^export TF_ENABLE_ONEDNN_OPTS\s*\??=\s*(.+)$")}


def elsewhere_environment() -> dict[str, str]:
    """The variables the Makefile's ELSEWHERE_ENV sets for the Eigen half of the notebook check."""
    return dict(item.split("=", 1) for item in shlex.split(makefile_variable(r"^ELSEWHERE_ENV\s*:=\s*(.+)$")))


def avx2_environment() -> dict[str, str]:
    """The variables the Makefile's AVX2 condition (check, notebooks-check) sets."""
    return dict(item.split("=", 1) for item in shlex.split(makefile_variable(r"^AVX2\s*:=\s*env\s+(.+)$")))


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def weight_digest(tmp_path, extra_env: dict[str, str]) -> str:
    # the conditions of `make test`, and extra_env on top
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")}
    env.update(
        {
            "TLBOOK_CACHE": str(tmp_path / "cache"),
            "TLBOOK_THREADS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **stored_environment(),
            **extra_env,
        }
    )
    done = subprocess.run([sys.executable, "-c", TRAIN], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return re.search(r"digest (\w+)", done.stdout).group(1)


@pytest.fixture(scope="module")
def stored_digest(tmp_path_factory) -> str:
    """The digest under the stored outputs' conditions, computed once for both tests below."""
    return weight_digest(tmp_path_factory.mktemp("stored"), {})


def test_the_makefile_stores_with_onednn_and_checks_again_with_eigen_and_with_avx2_kernels():
    assert stored_environment() == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert elsewhere_environment() == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert avx2_environment() == {"ONEDNN_MAX_CPU_ISA": "AVX2"}


@pytest.mark.parametrize("target", ["check", "notebooks-check"])
def test_the_notebook_check_runs_each_chapter_once_under_one_of_the_two_conditions_in_its_own_cache(target):
    """`make check` (what `make test` runs) and `make notebooks-check` (its notebooks alone)."""
    text = (ROOT / "Makefile").read_text()
    recipe = text.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
    commands = recipe.replace("\\\n", " ").split("|| failed=1;")  # one shell command each
    avx2_line = next(command for command in commands if "$(AVX2_NOTEBOOKS)" in command)
    eigen_line = next(command for command in commands if "$(ELSEWHERE_NOTEBOOKS)" in command)
    assert "$(AVX2)" in avx2_line and "$(IN_CHECK_CACHE)" in avx2_line and "$(ELSEWHERE)" not in avx2_line
    assert "$(ELSEWHERE)" in eigen_line and "$(IN_CHECK_CACHE)" in eigen_line and "$(AVX2)" not in eigen_line
    assert "$(NEW_CHECK_CACHE)" in recipe  # emptied first: nothing computed under other conditions is read
    assert re.search(r"^AVX2_NOTEBOOKS\s*:=\s*\$\(filter-out \$\(ELSEWHERE_NOTEBOOKS\),\$\(NOTEBOOKS\)\)", text, re.M)
    assert "$(MAKE) --no-print-directory check" in text.split("\ntest:", 1)[1].split("\n\n", 1)[0]


@pytest.mark.slow
@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"),
    reason="oneDNN's x86 kernels are the ones switched; on ARM TensorFlow may use one library either way",
)
def test_the_eigen_run_changes_float_results_on_this_machine(tmp_path, stored_digest):
    assert weight_digest(tmp_path, {}) == stored_digest, "the same run twice must give the same bits"
    assert weight_digest(tmp_path, elsewhere_environment()) != stored_digest, (
        "the ELSEWHERE_ENV conditions reproduce the stored outputs' float results bit for bit, so the Eigen "
        "half of the notebook check would not stand for another machine; choose conditions that change them"
    )


@pytest.mark.slow
@pytest.mark.skipif(
    "avx512f" not in cpu_flags(),
    reason="this CPU has no AVX-512: oneDNN already computes with AVX2 kernels (or fewer) here, so the AVX2 run "
    "repeats the default one; the Eigen run is the one that differs",
)
def test_the_avx2_run_changes_float_results_on_a_cpu_with_more_than_avx2(tmp_path, stored_digest):
    assert weight_digest(tmp_path, avx2_environment()) != stored_digest, (
        "ONEDNN_MAX_CPU_ISA=AVX2 reproduces this AVX-512 machine's float results bit for bit, so the AVX2 "
        "notebook run would not stand for an AVX2 machine"
    )
