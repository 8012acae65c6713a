import os
import random
import re
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

from tlbook import config


def test_default_profile_is_quick(monkeypatch):
    monkeypatch.delenv("TLBOOK_PROFILE", raising=False)
    profile = config.get_profile()
    assert profile.name == "quick"
    assert profile.input_shape == (32, 32, 3)
    assert set(profile.source_classes).isdisjoint(profile.target_classes)


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("TLBOOK_PROFILE", " Quick ")
    profile = config.get_profile()
    assert profile.name == "quick" and profile is config.PROFILES["quick"]


def test_quick_is_the_only_profile():
    assert list(config.PROFILES) == ["quick"]


@pytest.mark.parametrize("value", ["full", " Full "])
def test_the_retired_full_profile_fails_naming_the_value_the_profiles_and_what_replaced_it(monkeypatch, value):
    monkeypatch.setenv("TLBOOK_PROFILE", value)
    with pytest.raises(ValueError) as info:
        config.get_profile()
    message = str(info.value)
    assert f"The tlbook profile {value.strip()!r} (from the environment variable TLBOOK_PROFILE) was retired" in message
    assert "the profiles are: quick" in message and "export TLBOOK_PROFILE=quick" in message
    assert "options of the photo pipeline" in message
    assert 'models.build_transfer_model(K, backbone="resnet50", weights="imagenet")' in message
    assert "data.load_image_folders(downloads.flowers_folder(), image_size=(224, 224))" in message
    assert "python -m tlbook prefetch" in message
    with pytest.raises(ValueError, match=r"'full' \(from the argument\) was retired"):
        config.get_profile("full")


def test_the_calls_the_retired_profile_names_exist_with_those_arguments():
    """The message's calls, checked against the signatures they name (not run: they need a network)."""
    import inspect

    from tlbook import backbones, data, downloads, models

    message = config.RETIRED_PROFILES["full"]
    assert {"backbone", "weights"} <= set(inspect.signature(models.build_transfer_model).parameters)
    assert "image_size" in inspect.signature(data.load_image_folders).parameters
    assert not [p for p in inspect.signature(downloads.flowers_folder).parameters.values() if p.default is p.empty]
    assert "resnet50" in backbones.BACKBONES and "prefetch" in message


def test_unknown_profile_in_environment_names_value_and_variable(monkeypatch):
    monkeypatch.setenv("TLBOOK_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"'fast'.*TLBOOK_PROFILE.*Choose one of: quick;"):
        config.get_profile()


def test_unknown_profile_argument():
    with pytest.raises(ValueError, match="'huge'"):
        config.get_profile("huge")


def test_cache_dir_from_environment_is_created(tmp_path, monkeypatch):
    target = tmp_path / "a" / "b"
    monkeypatch.setenv("TLBOOK_CACHE", str(target))
    assert config.cache_dir() == target
    assert target.is_dir()
    assert list(target.iterdir()) == []  # the writability probe leaves nothing behind


def test_cache_dir_default_is_user_cache(monkeypatch):
    monkeypatch.delenv("TLBOOK_CACHE", raising=False)
    path = config.cache_dir(create=False)
    assert path.name == "tlbook"


def test_cache_dir_that_cannot_be_created(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TLBOOK_CACHE", str(blocker / "cache"))
    with pytest.raises(PermissionError, match=r"Cannot create.*a-file.*TLBOOK_CACHE"):
        config.cache_dir()


def test_cache_path_that_is_a_file(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("TLBOOK_CACHE", str(blocker))
    with pytest.raises(PermissionError, match="not a directory"):
        config.cache_dir()


def test_unwritable_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TLBOOK_CACHE", str(tmp_path))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(PermissionError, match=r"not writable.*Permission denied.*TLBOOK_CACHE"):
        config.cache_dir()


def test_seed_everything_repeats_every_generator():
    import tensorflow as tf

    def draw():
        return random.random(), np.random.rand(), float(tf.random.uniform(()))

    config.seed_everything(7)
    first = draw()
    config.seed_everything(7)
    assert draw() == first
    config.seed_everything(8)
    assert draw() != first


def _draws():
    """One draw from each generator seed_everything seeds: Python's, NumPy's, TensorFlow's
    (an op without its own seed) and Keras's global seed generator."""
    import keras
    import tensorflow as tf

    return (random.random(), float(np.random.rand()), float(tf.random.uniform(())), float(keras.random.uniform(())))


def _determinism():
    from tensorflow.python.framework import config as tf_config

    return tf_config.is_op_determinism_enabled()


def test_seeded_block_computes_as_after_seed_everything_and_puts_the_callers_state_back():
    config.seed_everything(7, threads=None)
    as_after_seed_everything = _draws()
    config.seed_everything(3, threads=None)
    without_block = [_draws(), _draws()]

    config.seed_everything(3, threads=None)
    before = _draws()
    with config.seeded(7):
        inside = _draws()
    after = _draws()
    assert inside == as_after_seed_everything
    assert [before, after] == without_block  # the caller's streams go on as if the block had not run
    assert len(set(inside + after)) == 8


def test_seeded_restores_op_determinism_and_the_state_after_an_error():
    from tensorflow.python.framework import config as tf_config

    tf_config.disable_op_determinism()
    try:
        config.seed_everything(3, threads=None)
        tf_config.disable_op_determinism()
        expected = _draws()
        config.seed_everything(3, threads=None)
        tf_config.disable_op_determinism()
        with pytest.raises(ZeroDivisionError):
            with config.seeded(1):
                assert _determinism()
                _draws()
                raise ZeroDivisionError("a failing computation inside the block")
        assert not _determinism()
        assert _draws() == expected
    finally:
        tf_config.enable_op_determinism()  # as conftest.py set it for the other tests
    with pytest.raises(ValueError, match="non-negative integer"):
        config.seeded(-1)


def test_seeded_works_before_tensorflow_was_ever_seeded(monkeypatch):
    """In a fresh process TensorFlow has no op-seed stream yet (the attribute does not exist)."""
    from tensorflow.python.eager import context

    ctx = context.context()
    monkeypatch.setattr(ctx, "_seed", None)
    monkeypatch.delattr(ctx, "_rng", raising=False)
    with config.seeded(2):
        inside = _draws()
    config.seed_everything(2, threads=None)
    assert _draws() == inside


def test_a_seeded_stream_continues_across_blocks():
    config.seed_everything(4, threads=None)
    one_block = [_draws(), _draws()]
    stream = config.seeded(4)
    with stream:
        first = _draws()
    between = _draws()  # the caller's own stream, not the block's
    with stream:
        second = _draws()
    assert [first, second] == one_block
    assert between not in one_block


def test_library_training_leaves_the_callers_random_state_alone(tiny_profile, tiny_source_cache):
    from tlbook import data, experiments, models, training

    task = data.target_task(tiny_profile)
    lab = data.sample_per_class(task.train, 2, seed=0)
    model = models.pretrained_model(5, tiny_profile)
    config.seed_everything(11, threads=None)
    expected = _draws()
    config.seed_everything(11, threads=None)
    training.fine_tune(model, lab.x, lab.y, head_steps=2, finetune_steps=2, chunk=2, seed=5)
    experiments.fit_and_evaluate(model, (lab.x, lab.y), None, (lab.x, lab.y), epochs=1, seed=5)
    assert _draws() == expected


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        config.seed_everything(bad)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "1", True])
def test_seed_everything_rejects_bad_thread_counts(bad):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        config.seed_everything(0, threads=bad)


@pytest.mark.parametrize("variable", [config.THREADS_ENV, config.SEED_OFFSET_ENV])
@pytest.mark.parametrize("bad", ["two", "-1", "1.5"])
def test_seed_everything_names_a_bad_environment_variable(monkeypatch, variable, bad):
    monkeypatch.setenv(variable, bad)
    with pytest.raises(ValueError, match=f"{variable}='{re.escape(bad)}' must be an integer"):
        config.seed_everything(0)


def test_the_seed_offset_shifts_every_seed(monkeypatch):
    monkeypatch.delenv(config.SEED_OFFSET_ENV, raising=False)
    config.seed_everything(5, threads=None)
    plain = _draws()
    monkeypatch.setenv(config.SEED_OFFSET_ENV, "2")
    config.seed_everything(3, threads=None)
    shifted = _draws()
    with config.seeded(3):
        in_a_block = _draws()
    monkeypatch.setenv(config.SEED_OFFSET_ENV, "0")
    config.seed_everything(3, threads=None)
    assert shifted == plain == in_a_block != _draws()


def _python(code: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run ``code`` in a new Python process (TensorFlow's thread pool is fixed once it starts),
    with the environment variables ``env`` set (None: unset)."""
    environ = {**os.environ, **{k: v for k, v in env.items() if v is not None}}
    for name in [k for k, v in env.items() if v is None]:
        environ.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, env=environ
    )


@pytest.mark.parametrize(
    ("threads_env", "argument", "expected"),
    [
        ("1", "", "1"),  # make's checks: one thread, one order of additions on every machine
        # a learner's run (TLBOOK_THREADS unset, TensorFlow's default pool) shares the process of the test below
        (None, ", threads=2", "2"),
        ("1", ", threads=None", "0"),
    ],
)
def test_seed_everything_sizes_the_intra_op_pool_in_a_fresh_process(threads_env, argument, expected):
    run = _python(
        f"""
        import tlbook, tensorflow as tf
        before = tf.config.threading.get_intra_op_parallelism_threads()
        tlbook.seed_everything(0{argument})
        x = tf.random.uniform((64, 64))
        print(before, tf.config.threading.get_intra_op_parallelism_threads(), float(tf.reduce_sum(x @ x)))
    """,
        TLBOOK_THREADS=threads_env,
    )
    assert run.returncode == 0, run.stderr
    before, after, _ = run.stdout.split()
    assert (before, after) == ("0", expected)  # 0: TensorFlow's default, one thread per core


def test_seed_everything_leaves_the_default_pool_then_warns_once_when_tensorflow_already_runs():
    # A learner's run (TLBOOK_THREADS unset): seed_everything leaves TensorFlow's default pool alone
    # (0: one thread per core), silently. TensorFlow then starts with it; pinning the pool afterwards
    # cannot work, and says so once. One fresh process for both (each costs a TensorFlow import).
    run = _python(
        """
        import warnings, tlbook, tensorflow as tf
        before = tf.config.threading.get_intra_op_parallelism_threads()
        with warnings.catch_warnings(record=True) as unpinned:
            warnings.simplefilter("always")
            tlbook.seed_everything(0)
        after = tf.config.threading.get_intra_op_parallelism_threads()
        tf.constant(1.0) + 1.0                      # TensorFlow starts with its default pool
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tlbook.seed_everything(0, threads=1)
            tlbook.seed_everything(1, threads=1)
        print(before, after, len(unpinned), len(caught), tf.config.threading.get_intra_op_parallelism_threads())
        print(caught[0].message)
    """,
        TLBOOK_THREADS=None,
    )
    assert run.returncode == 0, run.stderr
    before, after, unpinned, count, threads = run.stdout.splitlines()[0].split()
    assert (before, after, unpinned) == ("0", "0", "0")  # 0: TensorFlow's default, one thread per core
    assert (count, threads) == ("1", "0")
    assert "Restart the kernel" in run.stdout and "before any TensorFlow operation" in run.stdout


def test_cache_lock_makes_two_processes_compute_an_entry_once(tmp_path):
    # Two processes ask for the same cached study at once; the second must wait and read the
    # first one's result, not compute it again.
    log = tmp_path / "computed.txt"
    # The lock plays out between two processes; TensorFlow plays no part in it. With TensorFlow and
    # Keras blocked (as for tests/test_folders.py's two writers), tlbook imports without them (with a
    # warning), and each process starts in a fraction of a second instead of spending ~9 s of CPU
    # importing TensorFlow; the two then also overlap well within compute()'s 2 s, however loaded the
    # machine. Of Keras the cache key needs only its installed version, which cached_study reads
    # from the package metadata.
    code = f"""
        import os, sys, time, warnings
        sys.modules.update(tensorflow=None, keras=None)
        warnings.filterwarnings("ignore", "tlbook could not import TensorFlow", RuntimeWarning)
        from tlbook import studies
        def compute():
            with open({str(log)!r}, "a") as fh:
                fh.write(str(os.getpid()) + "\\n")
            time.sleep(2)
            return {{"pid": os.getpid()}}
        print(studies.cached_study("race", {{"a": 1}}, compute)["pid"])
    """
    env = {**os.environ, "TLBOOK_CACHE": str(tmp_path / "cache")}
    runs = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    answers = [run.communicate(timeout=120)[0].strip() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert len(log.read_text().splitlines()) == 1 and answers[0] == answers[1]
    entries = [p for p in (tmp_path / "cache" / "race").iterdir() if not p.name.endswith(".sidecar.json")]
    assert [p.name for p in (tmp_path / "cache" / "locks").iterdir()] == [f"race-{p.stem}.lock" for p in entries]


def test_cache_lock_is_a_context_manager_per_entry(tmp_cache):
    with config.cache_lock("entry") as held:
        assert held.is_locked
        assert not config.cache_lock("other").is_locked
    assert (tmp_cache / "locks" / "entry.lock").exists()


def test_every_profile_field_is_read_somewhere():
    """A setting nobody reads misleads whoever changes it (README: the sizes live in config.py)."""
    import dataclasses
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = "".join(p.read_text() for p in (root / "tlbook").rglob("*.py") if p.name != "config.py")
    code += "".join(p.read_text() for p in (root / "book").glob("*.ipynb"))
    from tlbook.config import get_profile

    unread = [
        f.name
        for f in dataclasses.fields(get_profile("quick"))
        if f.name != "name" and not re.search(rf"\.{f.name}\b", code)
    ]
    assert unread == [], unread


def test_code_digest_follows_the_computing_code(tmp_path):
    from tlbook import config

    for name in ("a", "b"):
        (tmp_path / f"{name}.py").write_text(f"STEPS = 100  # {name}\n")
    before = config.code_digest(("a", "b"), root=tmp_path)
    assert before == config.code_digest(("a", "b"), root=tmp_path) and len(before) == 12
    (tmp_path / "b.py").write_text("STEPS = 200  # b\n")
    assert config.code_digest(("a", "b"), root=tmp_path) != before
    assert set(config.COMPUTING_MODULES) >= {
        "data",
        "backbones",
        "models",
        "training",
        "finetuning",
        "probes",
        "studies",
    }
    config.code_digest()  # every computing module of the package has its source file
    with pytest.raises(FileNotFoundError):
        config.code_digest(("nowhere",), root=tmp_path)


def test_code_digest_of_a_subpackage_covers_every_module_in_it(tmp_path):
    from tlbook import config

    (tmp_path / "pkg" / "inner").mkdir(parents=True)
    for name in ("pkg/__init__.py", "pkg/one.py", "pkg/inner/two.py"):
        (tmp_path / name).write_text("STEPS = 100\n")
    before = config.code_digest(("pkg",), root=tmp_path)
    (tmp_path / "pkg" / "inner" / "two.py").write_text("STEPS = 200\n")
    changed = config.code_digest(("pkg",), root=tmp_path)
    assert changed != before
    (tmp_path / "pkg" / "three.py").write_text("STEPS = 100\n")  # a new module counts too
    assert config.code_digest(("pkg",), root=tmp_path) != changed
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .py file"):
        config.code_digest(("empty",), root=tmp_path)


def test_code_digest_ignores_comments_docstrings_and_layout(tmp_path):
    from tlbook import config

    code = 'def steps():\n    return 100\n\n\nclass Run:\n    lr = 1e-3\n'
    (tmp_path / "a.py").write_text(code)
    before = config.code_digest(("a",), root=tmp_path)
    (tmp_path / "a.py").write_text(
        '"""A module docstring."""\n\n# a comment\ndef steps():\n    """How many steps."""\n'
        "    return (100)  # trailing\n\n\nclass Run:\n    '''A class.'''\n    lr = 1e-3\n"
    )
    assert config.code_digest(("a",), root=tmp_path) == before
    (tmp_path / "a.py").write_text('def steps():\n    """Only a docstring now."""\n')
    emptied = config.code_digest(("a",), root=tmp_path)
    assert emptied != before
    (tmp_path / "a.py").write_text("def steps():\n    pass\n")
    assert config.code_digest(("a",), root=tmp_path) == emptied  # a body of only a docstring is `pass`
    (tmp_path / "a.py").write_text(code.replace("return 100", "return 101"))
    assert config.code_digest(("a",), root=tmp_path) != before
    (tmp_path / "a.py").write_text(code.replace("lr = 1e-3", 'lr = "1e-3"'))  # a string that is code
    assert config.code_digest(("a",), root=tmp_path) != before
    nested = "async def outer():\n    def inner():\n        return 1\n\n    return inner\n"
    (tmp_path / "a.py").write_text(nested)
    plain = config.code_digest(("a",), root=tmp_path)
    documented = nested.replace("():\n    def", '():\n    """Outer."""\n    def').replace(
        "inner():\n        return", 'inner():\n        """Inner."""\n        return'
    )
    (tmp_path / "a.py").write_text(documented)
    assert config.code_digest(("a",), root=tmp_path) == plain  # nested and async docstrings go too
    for code_that_looks_like_a_docstring in ('f"{1}"\n', 'X = 1\n"not a docstring"\n'):
        (tmp_path / "a.py").write_text(code_that_looks_like_a_docstring)
        without = code_that_looks_like_a_docstring.replace('f"{1}"', "pass").replace('"not a docstring"', "")
        stripped = config.code_digest(("a",), root=tmp_path)
        (tmp_path / "a.py").write_text(without)
        assert config.code_digest(("a",), root=tmp_path) != stripped  # an f-string or a later string counts
    (tmp_path / "a.py").write_text("def steps(:\n")
    with pytest.raises(SyntaxError):
        config.code_digest(("a",), root=tmp_path)


def test_cached_results_are_keyed_on_the_code(tmp_cache, tiny_profile, monkeypatch):
    import numpy as np

    from tlbook import backbones, config, studies

    calls = []
    compute = lambda: calls.append(1) or {"n": len(calls)}  # noqa: E731
    path = backbones.source_cache_path(tiny_profile)
    small = backbones.random_backbone(tiny_profile)
    images = np.zeros((2, *tiny_profile.input_shape), dtype=np.uint8)
    key = backbones.features_key(small, images)
    studies.cached_study("demo", {"a": 1}, compute)
    monkeypatch.setattr(config, "code_digest", lambda *a, **k: "0" * 12)  # as if training.py had changed
    monkeypatch.setattr(backbones.features, "code_digest", config.code_digest)  # features_key's own
    assert backbones.source_cache_path(tiny_profile) != path  # the backbone is pretrained again
    assert studies.cached_study("demo", {"a": 1}, compute) == {"n": 2}  # the study is computed again
    assert backbones.features_key(small, images) != key  # the features are extracted again
