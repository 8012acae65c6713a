"""python -m tlbook doctor: a healthy and a broken environment."""

import dataclasses

import pytest

from tlbook import backbones, doctor, downloads, files
from tlbook.__main__ import main
from tlbook.config import get_profile


def _by_name(checks):
    return {c.name: c for c in checks}


def test_healthy_quick_environment(tmp_cache, tiny_profile, monkeypatch, capsys):
    import tlbook.config

    monkeypatch.setitem(tlbook.config.PROFILES, "quick", tiny_profile)
    backbones.source_classifier(tiny_profile)  # the backbone the chapters need, cached
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "Ready: every chapter can run" in out and "[  ok] Source backbone: pretrained and verified" in out
    assert "FAIL" not in out


def test_doctor_in_the_repository_without_make_names_the_cache_make_uses(tmp_path, monkeypatch):
    import tlbook.config

    (tmp_path / "Makefile").write_text("lab:\n")
    (tmp_path / "tlbook").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TLBOOK_CACHE", raising=False)
    (tmp_path / "user-cache").mkdir()
    monkeypatch.setattr(tlbook.config, "cache_dir", lambda: tmp_path / "user-cache")  # not the real home

    def cache_check():
        return next(c for c in doctor.run_checks("quick") if c.name == "Cache")

    assert f"uses {tmp_path / '.cache' / 'tlbook'} instead" in cache_check().detail
    assert "make doctor" in cache_check().detail
    monkeypatch.setenv("TLBOOK_CACHE", str(tmp_path / "chosen"))  # a cache chosen on purpose: no note
    assert "make doctor" not in cache_check().detail


def test_missing_backbone_is_a_warning_with_advice(tmp_cache):
    checks = _by_name(doctor.run_checks("quick"))
    assert checks["Source backbone"].status == "warn" and "trains it" in checks["Source backbone"].advice
    assert not [c for c in checks.values() if c.status == "FAIL"]


def test_the_retired_full_profile_fails_with_what_replaced_it(tmp_cache, capsys):
    assert main(["doctor", "--profile", "full"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] Profile: The tlbook profile 'full' (from the argument) was retired" in out
    assert 'build_transfer_model(K, backbone="resnet50", weights="imagenet")' in out and "1 problem(s)" in out
    assert "-> unset TLBOOK_PROFILE or set it to quick" in out


def test_the_optional_downloads_are_reported_never_required(tmp_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    checks = _by_name(doctor.run_checks("quick"))
    for item in (downloads.RESNET50_NOTOP, downloads.FLOWERS):
        check = checks[item.description]
        assert check.status == "ok" and check.detail.startswith("not downloaded: optional")
        assert f"python -m tlbook prefetch --only {item.key}" in check.detail
    assert not [c for c in checks.values() if c.status == "FAIL"]


def test_verified_download_counts_as_present(tmp_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    path = tmp_cache / downloads.DOWNLOADS_DIR / "w.h5"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    item = dataclasses.replace(downloads.RESNET50_NOTOP, filename="w.h5", size=7, digest=files.file_digest(path, "md5"))
    monkeypatch.setattr(downloads, "RESNET50_NOTOP", item)
    checks = _by_name(doctor.run_checks("quick"))
    assert checks[item.description].status == "ok" and checks[item.description].detail.startswith("present")


@pytest.mark.parametrize(
    "setup, name",
    [
        (lambda mp, tmp: mp.setenv("TLBOOK_PROFILE", "huge"), "Profile"),
        (lambda mp, tmp: (tmp.joinpath("file").write_text("x"), mp.setenv("TLBOOK_CACHE", str(tmp / "file"))), "Cache"),
    ],
)
def test_broken_environment_fails(setup, name, monkeypatch, tmp_path, capsys):
    setup(monkeypatch, tmp_path)
    assert main(["doctor"]) == 1
    check = _by_name(doctor.run_checks())[name]
    assert check.status == "FAIL" and check.advice
    assert "1 problem(s)" in capsys.readouterr().out


@pytest.mark.parametrize("version, status", [((3, 11, 7), "ok"), ((3, 12, 1), "warn"), ((3, 10, 13), "FAIL")])
def test_python_311_is_supported_newer_ones_warned_about_older_ones_refused(tmp_cache, monkeypatch, version, status):
    monkeypatch.setattr(doctor.sys, "version_info", (*version, "final", 0))
    check = _by_name(doctor.run_checks("quick"))["Python"]
    assert check.status == status and check.detail.startswith(".".join(map(str, version)))
    assert ("Python 3.11" in check.advice) == (status != "ok")


def test_every_place_names_the_same_python():
    """README, intro, workshop guide, Makefile, pyproject.toml, Binder and the publishing workflow."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    supported = ".".join(map(str, doctor.MIN_PYTHON))
    assert f"Python {supported} and `make`" in (root / "README.md").read_text()
    assert f"Python {supported} and `make`" in (root / "book" / "intro.md").read_text()
    assert f"Python {supported} and `make`" in (root / "book" / "workshop.md").read_text()
    assert f'requires-python = ">={supported}"' in (root / "pyproject.toml").read_text()
    assert f"sys.version_info < ({supported.replace('.', ', ')})" in (root / "Makefile").read_text()
    assert (root / "binder" / "runtime.txt").read_text().strip() == f"python-{supported}"
    assert f'python-version: "{supported}"' in (root / ".github" / "workflows" / "pages.yml").read_text()
    assert not re.search(r"python_version\s*[<>]", (root / "requirements.txt").read_text())  # one set of pins


def test_doctor_reports_a_missing_tensorflow_instead_of_crashing(tmp_path):
    import os
    import subprocess
    import sys

    script = (
        "import sys\n"
        "sys.modules['tensorflow'] = None; sys.modules['keras'] = None  # as if not installed\n"
        "from tlbook.__main__ import main\n"
        "sys.exit(main(['doctor']))\n"
    )
    env = {**os.environ, "TLBOOK_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "[FAIL] TensorFlow: cannot import" in done.stdout and "pip install -r requirements.txt" in done.stdout
    assert "run `python -m tlbook doctor`" in done.stderr  # the import warning


def test_doctor_knows_chapter_9s_weights_and_photos(tmp_cache, monkeypatch):
    import shutil

    checks = {c.name: c for c in doctor.run_checks("quick")}
    assert checks["EfficientNet-Lite0 weights"].status == "ok"
    assert (
        checks["Photos (Chapters 4, 5, 9)"].status == "warn"
        and "prefetch --only photos" in checks["Photos (Chapters 4, 5, 9)"].advice
    )
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(
        backbones, "lite0_pytorch_file", lambda: (_ for _ in ()).throw(backbones.WeightsUnavailableError("gone"))
    )
    checks = {c.name: c for c in doctor.run_checks("quick")}
    assert checks["EfficientNet-Lite0 weights"].status == "FAIL"
    photos = checks["Photos (Chapters 4, 5, 9)"]  # no apt-get: the same advice, HTTPS needs none
    assert (
        "over HTTPS" in photos.detail
        and str(downloads.download_path(downloads.TUXPAINT_STAMPS).parent) in photos.advice
    )


def test_the_pretraining_command_doctor_suggests_runs_as_printed(tmp_cache, monkeypatch):
    """The advice's `python -c` code, run as printed (with the training replaced by a recorder):
    it imports what it names and calls the function that pretrains the source backbone."""
    import shlex

    advice = _by_name(doctor.run_checks("quick"))["Source backbone"].advice
    command = shlex.split(advice[advice.index("python -c") :])
    assert command[:2] == ["python", "-c"] and command[2:3] == [command[-1]]
    calls = []
    monkeypatch.setattr(backbones, "source_classifier", lambda *a, **k: calls.append((a, k)))
    exec(compile(command[2], "<doctor's advice>", "exec"), {})
    assert calls == [((get_profile("quick"),), {})]  # the profile checked, not TLBOOK_PROFILE's


def test_the_photos_command_doctor_suggests_names_a_download_prefetch_knows(tmp_cache, monkeypatch):
    import re

    monkeypatch.setattr(doctor.shutil, "which", lambda name: f"/usr/bin/{name}")  # a system with apt-get
    advice = _by_name(doctor.run_checks("quick"))["Photos (Chapters 4, 5, 9)"].advice
    key = re.search(r"python -m tlbook prefetch --only (\S+)", advice).group(1)
    fetched = []
    monkeypatch.setattr(downloads, "debian_package", lambda **kwargs: fetched.append(kwargs) or "photos.deb")
    assert downloads.prefetch([key], quiet=True) == {key: "photos.deb"} and len(fetched) == 1


def test_a_missing_chapter_package_fails_with_the_pip_command(tmp_cache, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "myst_nb" else real(name, *a))
    check = _by_name(doctor.run_checks("quick"))["Chapter packages"]
    assert check.status == "FAIL" and check.detail == "not installed: myst-nb"
    assert check.advice.endswith("pip install myst-nb")
    monkeypatch.setattr(importlib.util, "find_spec", real)
    assert _by_name(doctor.run_checks("quick"))["Chapter packages"].status == "ok"


def test_doctor_reports_cache_leftovers_and_the_prune_command_removes_them(tmp_cache, monkeypatch, capsys):
    import shlex
    import subprocess
    import sys

    tmp_cache.mkdir(parents=True, exist_ok=True)
    assert _by_name(doctor.run_checks("quick"))["Cache leftovers"].advice == ""
    (tmp_cache / "features").mkdir()
    (tmp_cache / "features" / "0123456789abcdef.npy").write_bytes(b"x" * 2048)  # an earlier tlbook's features
    check = _by_name(doctor.run_checks("quick"))["Cache leftovers"]
    assert check.detail.startswith("1 item, 0.0 MiB") and check.status == "ok"
    assert (tmp_cache / "features" / "0123456789abcdef.npy").exists()  # the check only looks
    command = shlex.split(check.advice.split(" removes")[0])
    assert command[:3] == ["python", "-m", "tlbook"]
    from tlbook.__main__ import main

    assert main([*command[3:], "--dry-run"]) == 0  # in this process: one start of TensorFlow is enough
    out = capsys.readouterr().out
    assert "would remove features/0123456789abcdef.npy" in out and "1 to remove" in out
    assert (tmp_cache / "features" / "0123456789abcdef.npy").exists()
    done = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "removed features/0123456789abcdef.npy" in done.stdout
    assert not (tmp_cache / "features").exists()


def test_an_unreadable_cache_is_a_warning_not_a_crash(tmp_cache, monkeypatch):
    from tlbook import cache

    def unreadable(**kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_cache / "features"))

    monkeypatch.setattr(cache, "prune", unreadable)
    check = _by_name(doctor.run_checks("quick"))["Cache leftovers"]
    assert check.status == "warn" and "Permission denied" in check.detail and "features" in check.detail
