"""Profiles, the cache directory and seeding: the sizes every chapter depends on live here.

One profile exists:

``quick`` (the default)
    Offline and CPU-only. Real handwriting from scikit-learn's digits (8x8 pixels, shipped inside
    scikit-learn) upsampled to 32x32 RGB, and a small convolutional backbone that ``tlbook``
    pretrains itself on a *source* task (digits 0-4) and caches, so chapters can transfer it to the
    *target* task (digits 5-9) without any download.

The ``full`` profile (ImageNet ResNet50 on TensorFlow's flower photos at 224x224) was retired: the
chapters are written for the quick profile, and most of them did not run under it. ImageNet ResNet50
and the flower photos are options of the photo pipeline instead, for readers with a network:
``models.build_transfer_model(K, backbone="resnet50", weights="imagenet")`` and
``data.load_image_folders(downloads.flowers_folder(), image_size=(224, 224))`` (``python -m tlbook prefetch``
fetches both ahead of time). :func:`get_profile` says so when ``TLBOOK_PROFILE=full``.

The profile is chosen by the environment variable ``TLBOOK_PROFILE`` (``quick``); the
cache directory by ``TLBOOK_CACHE`` (default: the user's cache directory, for example
``~/.cache/tlbook`` on Linux).
"""

from __future__ import annotations

import dataclasses
import os
import random
import tempfile
import warnings
from pathlib import Path

import numpy as np

PROFILE_ENV = "TLBOOK_PROFILE"
CACHE_ENV = "TLBOOK_CACHE"
#: TensorFlow's intra-op threads for :func:`seed_everything` (``make``'s checks set 1; unset: every core).
THREADS_ENV = "TLBOOK_THREADS"
#: Added to every seed :func:`seed_everything` and :func:`seeded` apply (unset: 0). It perturbs every
#: training run as another CPU would, for measuring the spread the notebook check must tolerate
#: (``tools/seed_spread.py``); run it with a cache of its own, since cached results do not record it.
SEED_OFFSET_ENV = "TLBOOK_SEED_OFFSET"
#: Worker processes a study may start, whatever its ``n_jobs`` says (unset: ``n_jobs`` decides).
#: ``1``: every study runs in the calling process (``make check`` sets it, :mod:`tlbook.studies`).
JOBS_ENV = "TLBOOK_JOBS"
DEFAULT_PROFILE = "quick"


@dataclasses.dataclass(frozen=True)
class Profile:
    """Every size and budget a chapter reads.

    Attributes:
        name: ``"quick"`` (the only profile; tests make smaller ones with ``dataclasses.replace``).
        image_size: side of the square images fed to the networks, in pixels.
        dataset: which data the chapters use (``"digits"``: the tasks of :mod:`tlbook.data`).
        source_classes: classes of the source task the quick backbone is pretrained on.
        target_classes: classes of the target task the chapters transfer to (disjoint from
            ``source_classes``).
        test_fraction: share of each target class held out as the test split (0 < f < 1).
        source_test_fraction: the same for the source task.
        digit_size: ``(smallest, largest)`` side in pixels of a drawn digit (quick profile).
        source_rotations: orientations per source digit; each (digit, orientation) is a class.
        source_copies: differently placed copies of each source training scan.
        distractors: dimmed clutter digits drawn behind each digit (quick profile), so that, as in
            photos, the subject shares the frame with other things.
        distractor_intensity: their brightness relative to the labelled digit, in (0, 1).
        backbone: ``"small_cnn"`` (pretrained by tlbook on the source task).
        backbone_weights: ``"source"`` (tlbook's own cached pretraining).
        source_epochs: epochs used to pretrain the quick backbone on the source task.
        source_width: filters of the quick backbone's first convolution (then 2x and 4x).
        source_batch_size: mini-batch size of the source pretraining, in images.
        source_learning_rate: Adam's learning rate for the source pretraining.
        batch_size: mini-batch size of the chapters' training runs, in images.
        seed: default seed for every random choice.
    """

    name: str
    image_size: int
    dataset: str
    source_classes: tuple[int, ...]
    target_classes: tuple[int, ...]
    test_fraction: float
    source_test_fraction: float
    digit_size: tuple[int, int] | None
    source_rotations: int
    source_copies: int
    distractors: int
    distractor_intensity: float
    backbone: str
    backbone_weights: str
    source_epochs: int
    batch_size: int
    source_width: int = 32
    source_batch_size: int = 64
    source_learning_rate: float = 1e-3
    seed: int = 0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(height, width, 3)`` of the images the models take."""
        return (self.image_size, self.image_size, 3)

    @property
    def cache_dir(self) -> Path:
        """The cache directory (see :func:`cache_dir`)."""
        return cache_dir()


#: The profiles by name: ``quick`` (the default; what the stored outputs use).
PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        image_size=32,
        dataset="digits",
        source_classes=(0, 1, 2, 3, 4),
        target_classes=(5, 6, 7, 8, 9),
        test_fraction=0.5,
        source_test_fraction=0.2,
        digit_size=(12, 24),
        source_rotations=4,
        source_copies=3,
        distractors=2,
        distractor_intensity=0.5,
        backbone="small_cnn",
        backbone_weights="source",
        source_epochs=10,
        batch_size=32,
        # 16, 32 and 64 filters: a training step of the scratch network is 3.4x faster than with
        # 32 (0.015 s vs 0.051 s for 32 images, one AVX2 core), the chapters' studies about twice
        # as fast, and every claim the book makes still holds (the slow tests assert them).
        source_width=16,
    ),
}


#: Profiles that no longer exist, by name: what replaced each (:func:`get_profile` quotes it).
RETIRED_PROFILES: dict[str, str] = {
    "full": (
        "ImageNet ResNet50 and TensorFlow's flower photos are now options of the photo pipeline, for readers "
        'with a network: models.build_transfer_model(K, backbone="resnet50", weights="imagenet") and '
        "data.load_image_folders(downloads.flowers_folder(), image_size=(224, 224)); "
        "`python -m tlbook prefetch` fetches both ahead of time"
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the profile called ``name``, or the one ``TLBOOK_PROFILE`` names (default ``quick``).

    Raises:
        ValueError: the name is not a known profile; the message names the value, where it came
            from and the valid choices, and for a retired profile (``full``) what replaced it.
    """
    source = "argument"
    if name is None:
        name = os.environ.get(PROFILE_ENV, "").strip() or DEFAULT_PROFILE
        source = f"environment variable {PROFILE_ENV}"
    key = name.strip().lower()
    if key in RETIRED_PROFILES:
        raise ValueError(
            f"The tlbook profile {name!r} (from the {source}) was retired; the profiles are: "
            f"{', '.join(sorted(PROFILES))} (unset {PROFILE_ENV} or `export {PROFILE_ENV}=quick`). "
            f"{RETIRED_PROFILES[key]}."
        )
    if key not in PROFILES:
        raise ValueError(
            f"Unknown tlbook profile {name!r} (from the {source}). "
            f"Choose one of: {', '.join(sorted(PROFILES))}; "
            f"for example `export {PROFILE_ENV}=quick`."
        )
    return PROFILES[key]


def _default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("tlbook", appauthor=False))


def cache_dir(create: bool = True) -> Path:
    """The directory where tlbook keeps pretrained backbones, weights and datasets.

    ``TLBOOK_CACHE`` overrides the default (the user's cache directory). With ``create=True`` the
    directory is created if needed and checked for writability.

    Raises:
        PermissionError: the directory cannot be created or written; the message names the path
            and says how to choose another one.
    """
    env = os.environ.get(CACHE_ENV, "").strip()
    path = Path(env).expanduser() if env else _default_cache_dir()
    if not create:
        return path
    advice = f"Set {CACHE_ENV} to a directory you can write, for example `export {CACHE_ENV}=$HOME/tlbook-cache`."
    if path.exists() and not path.is_dir():
        raise PermissionError(f"The tlbook cache path {str(path)!r} exists but is not a directory. {advice}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermissionError(
            f"Cannot create the tlbook cache directory {str(path)!r}: {exc.strerror}. {advice}"
        ) from exc
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise PermissionError(
            f"The tlbook cache directory {str(path)!r} is not writable: {exc.strerror}. {advice}"
        ) from exc
    return path


#: The modules whose code decides what a cached result holds (the source backbone, the studies).
COMPUTING_MODULES = (
    "config",
    "data",
    "backbones",
    "models",
    "preprocessing",
    "training",
    "finetuning",
    "probes",
    "diagnostics",  # accuracy_standard_error chooses the tuned scratch baseline (studies.tune_scratch)
    "studies",
)
#: (module name, SHA-256 of its bytes) -> digest of its parse tree, so each file is parsed once.
_TREE_DIGESTS: dict[tuple[str, str], str] = {}


def _module_files(folder: Path, modules: tuple[str, ...]) -> list[tuple[str, Path]]:
    """``(name, path)`` of every source file that ``modules`` stand for (see :func:`code_digest`)."""
    files = []
    for name in modules:
        package = folder / name
        if package.is_dir():
            found = sorted(package.rglob("*.py"))
            if not found:
                raise FileNotFoundError(f"the package folder {str(package)!r} holds no .py file")
            files += [(path.relative_to(folder).with_suffix("").as_posix(), path) for path in found]
        else:
            files.append((name, folder / f"{name}.py"))
    return files


def code_digest(modules: tuple[str, ...] = COMPUTING_MODULES, root: str | os.PathLike | None = None) -> str:
    """A short SHA-256 (12 hex digits) of the code of tlbook's computing modules.

    Cache keys include it, so a change to the code that trains or measures (a step count, a
    seed's use, a fix) recomputes cached results instead of serving ones the old code made.
    What counts is the code as Python parses it: comments, docstrings (a string that is the first
    statement of a module, class or function) and layout do not, so editing a docstring does not
    retrain the source backbone or recompute the studies; code that read a docstring at run time
    would not be covered. A change of Python version may change the digest (the parse tree it
    prints), and recompute once.

    Args:
        modules: module names inside the package (``"training"`` for ``tlbook/training.py``); a
            sub-package's name (``"data"`` for ``tlbook/data/``) stands for every ``.py`` file
            in its folder and below, in sorted order.
        root: the package folder (default: the installed ``tlbook``).

    Raises:
        FileNotFoundError: a module has no source file there.
        SyntaxError: a module's source does not parse.
    """
    import ast
    import hashlib

    folder = Path(root) if root is not None else Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name, path in _module_files(folder, modules):
        source = path.read_bytes()
        known = (name, hashlib.sha256(source).hexdigest())
        if known not in _TREE_DIGESTS:
            tree = ast.parse(source, filename=str(path))
            for node in ast.walk(tree):
                body = getattr(node, "body", None)
                if (
                    isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                    and body
                    and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)
                ):
                    node.body = body[1:] or [ast.Pass()]
            _TREE_DIGESTS[known] = hashlib.sha256(ast.dump(tree).encode()).hexdigest()
        digest.update(name.encode() + b"\0" + _TREE_DIGESTS[known].encode() + b"\0")
    return digest.hexdigest()[:12]


def cache_lock(name: str):
    """A lock shared by every process that uses this cache, for one entry: ``with cache_lock(name):``.

    Held while an entry is computed and written, so that two processes (two notebooks, two test
    workers) that need the same entry compute it once: the second waits, then reads it. The lock
    files live in ``<cache>/locks``; they are empty and harmless to delete when nothing runs.

    Returns:
        a ``filelock.FileLock`` (a context manager), not yet acquired.
    """
    from filelock import FileLock

    folder = cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / f"{name}.lock"))


def _positive_int_from_env(name: str, *, minimum: int) -> int | None:
    """The integer an environment variable holds (None when unset or empty), checked."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ValueError(
            f"The environment variable {name}={raw!r} must be an integer >= {minimum}; unset it for the default."
        )
    return value


def seed_offset() -> int:
    """The offset ``TLBOOK_SEED_OFFSET`` adds to every seed (0 when unset).

    Raises:
        ValueError: the variable holds something other than a non-negative integer.
    """
    return _positive_int_from_env(SEED_OFFSET_ENV, minimum=0) or 0


def study_jobs() -> int | None:
    """The most worker processes a study may start: ``TLBOOK_JOBS``, or None (``n_jobs`` decides).

    Raises:
        ValueError: the variable holds something other than a positive integer.
    """
    return _positive_int_from_env(JOBS_ENV, minimum=1)


def default_threads() -> int | None:
    """The thread count :func:`seed_everything` pins by default: ``TLBOOK_THREADS``, or None (every core).

    Raises:
        ValueError: the variable holds something other than a positive integer.
    """
    return _positive_int_from_env(THREADS_ENV, minimum=1)


def seed_everything(seed: int = 0, *, threads: int | None | str = "env") -> None:
    """Make Python, NumPy and TensorFlow repeatable from here on.

    Seeds ``random``, NumPy's global generator and TensorFlow (through
    ``keras.utils.set_random_seed``) and turns on TensorFlow's op determinism, so two runs of the
    same code on the same machine give bit-identical results. ``TLBOOK_SEED_OFFSET``, when set, is
    added to ``seed`` (see :func:`seed_offset`).

    ``threads`` sizes TensorFlow's intra-op thread pool. A CPU kernel splits its sums across that
    pool, and the split, hence the rounding, depends on how many threads there are. The default,
    ``"env"``, takes ``TLBOOK_THREADS`` when it is set (``make test`` and ``make execute`` set 1, so
    the stored outputs and their check add in one order on every machine) and otherwise leaves
    the pool at TensorFlow's default, one thread per core, so a learner's laptop uses all of its
    cores (Chapter 9's head trained in 13.0 s on two threads against 17.7 s on one, on 2 cores,
    with the same accuracy). Either way the numbers stay within the notebook check's tolerances,
    which cover a change of seed (README). An integer pins that many threads; ``None`` leaves the
    pool alone.

    The pool can only be sized before TensorFlow runs its first operation, so call this first in a
    notebook or script. Called later with a different ``threads``, it seeds as usual and warns once
    that the pool stays as it is.

    Raises:
        ValueError: ``seed`` is not a non-negative integer, ``threads`` not a positive integer,
            None or ``"env"``, or ``TLBOOK_THREADS``/``TLBOOK_SEED_OFFSET`` hold something else
            than an integer (the message names the variable).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(threads, str) and threads == "env":
        threads = default_threads()
    elif threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1
    ):
        raise ValueError(f"threads must be a positive integer, None or 'env', got {threads!r}")
    seed = int(seed) + seed_offset()
    import tensorflow as tf

    if threads is not None:
        _pin_intra_op_threads(tf, int(threads))
    random.seed(seed)
    np.random.seed(seed)
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _random_state():
    """Everything :func:`seed_everything` changes, apart from the thread pool: Python's and NumPy's
    generators, TensorFlow's global seed and the stream of op seeds drawn from it, Keras's global
    seed and seed generator, and op determinism. TensorFlow and Keras keep these in attributes of
    their own modules, with no public getter; tests/test_config.py checks the round trip on the
    pinned versions."""
    from keras.src.backend.common import global_state
    from tensorflow.python.eager import context
    from tensorflow.python.framework import config as tf_config

    ctx = context.context()
    generator = global_state.get_global_attribute("global_seed_generator")
    return {
        "random": random.getstate(),
        "numpy": np.random.get_state(),
        "tf_seed": ctx._seed,
        "tf_rng": ctx._rng.getstate() if getattr(ctx, "_rng", None) is not None else None,  # absent until seeded
        "keras_seed_raw": global_state.get_global_attribute("global_random_seed"),
        "keras_generator": generator,
        "keras_generator_state": None if generator is None else generator.state.numpy(),
        "determinism": tf_config.is_op_determinism_enabled(),
    }


def _set_random_state(state: dict) -> None:
    from keras.src.backend.common import global_state
    from tensorflow.python.eager import context
    from tensorflow.python.framework import config as tf_config

    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
    ctx = context.context()
    ctx._seed = state["tf_seed"]
    if state["tf_rng"] is None:
        ctx._rng = None
    else:
        ctx._rng = random.Random()
        ctx._rng.setstate(state["tf_rng"])
    global_state.set_global_attribute("global_random_seed", state["keras_seed_raw"])
    generator = state["keras_generator"]
    global_state.set_global_attribute("global_seed_generator", generator)
    if generator is not None:
        generator.state.assign(state["keras_generator_state"])
    if state["determinism"]:
        tf_config.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()  # TensorFlow exports only the enabling half


class RandomStream:
    """A seeded random stream that runs only inside ``with`` blocks; see :func:`seeded`."""

    def __init__(self, seed: int = 0):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self._state = None  # where the stream stopped; None: not started
        self._outer = []  # the callers' states, one per open block

    def __enter__(self):
        self._outer.append(_random_state())
        if self._state is None:
            seed_everything(self.seed, threads=None)
        else:
            _set_random_state(self._state)
        return self

    def __exit__(self, *exc_info):
        self._state = _random_state()
        _set_random_state(self._outer.pop())
        return False


def seeded(seed: int = 0) -> RandomStream:
    """Seed as :func:`seed_everything` does, inside ``with`` blocks only.

    ``with seeded(seed): ...`` runs the block with Python's, NumPy's, Keras's and TensorFlow's
    generators started from ``seed`` and op determinism on, exactly as after
    ``seed_everything(seed, threads=None)``, so the block computes the same bits as after that call.
    On leaving the block (also through an exception) all of them, op determinism included, are put
    back as they were: a tlbook function that seeds its own work leaves its caller's random state
    alone. The thread pool is never touched (only an explicit :func:`seed_everything` pins it).

    The returned stream can be entered again: each later block continues the stream where the
    previous one stopped, as if the blocks had run one after the other with nothing in between
    (the workflow's steps use this, :func:`tlbook.workflow.transfer_steps`).

    One limit: TensorFlow clears its cache of random-op kernels when seeded, so an op whose seed the
    caller gave explicitly (``tf.random.uniform(..., seed=5)``) starts its sequence again after a
    block. Ops without an explicit seed, and every generator above, continue where they were.

    Raises:
        ValueError: ``seed`` is not a non-negative integer.
    """
    return RandomStream(seed)


_warned_threads = False


def _pin_intra_op_threads(tf, threads: int) -> None:
    global _warned_threads
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow has already started with another pool size
        if not _warned_threads:
            _warned_threads = True
            current = tf.config.threading.get_intra_op_parallelism_threads() or "one per core"
            warnings.warn(
                f"seed_everything could not pin TensorFlow to {threads} intra-op thread(s): TensorFlow "
                f"already runs ({current} thread(s)). Results stay repeatable on this machine but may "
                "differ in the last digits from the book's. Restart the kernel and call "
                "tlbook.seed_everything() before any TensorFlow operation.",
                RuntimeWarning,
                stacklevel=3,
            )
