"""Source pretraining: the small CNN trained on the source task once, then kept in the cache.

The quick profile's pretrained backbone is trained by tlbook on the source task (digits 0-4) and
kept in the cache directory. The cache entry is keyed by every setting that changes the weights,
written atomically (temporary file, then rename) and verified by its SHA-256 before it is used,
so a half-written or damaged file is never loaded (:mod:`tlbook.cache`).
"""

from __future__ import annotations

import json
from pathlib import Path

from tlbook.backbones.small_cnn import build_classifier, build_small_cnn
from tlbook.cache import Entry, cached, entry, verified
from tlbook.config import Profile, get_profile, seeded
from tlbook.progress import keras_callback, progress_bar


def source_settings(profile: Profile) -> dict:
    """The settings that decide the source-pretrained weights for ``profile``: the architecture and
    its width, the source task, the training and the Keras version (the settings of
    :func:`source_entry`; :func:`~tlbook.backbones.controls.random_backbone` takes its width)."""
    import keras

    return {
        "architecture": "small_cnn",
        "width": profile.source_width,
        "image_size": profile.image_size,
        "source_classes": list(profile.source_classes),
        "source_test_fraction": profile.source_test_fraction,
        "digit_size": list(profile.digit_size),
        "rotations": profile.source_rotations,
        "copies": profile.source_copies,
        "distractors": profile.distractors,
        "distractor_intensity": profile.distractor_intensity,
        "epochs": profile.source_epochs,
        "batch_size": profile.source_batch_size,
        "learning_rate": profile.source_learning_rate,
        "seed": profile.seed,
        "keras": keras.__version__,
    }  # the cache adds the code that builds and trains it and TLBOOK_SEED_OFFSET (tlbook.cache.entry)


def source_entry(profile: Profile | None = None) -> Entry:
    """The cache entry (:class:`tlbook.cache.Entry`) of the source-pretrained classifier for
    ``profile``, whether or not it exists yet: a folder ``<cache>/source/<key>`` named by a hash of
    every setting that changes the weights and of the code that trains them."""
    return entry("source", source_settings(profile or get_profile()))


def source_cache_path(profile: Profile | None = None) -> Path:
    """Where the source-pretrained classifier for ``profile`` lives (whether or not it exists yet):
    the folder of :func:`source_entry`, holding ``model.keras`` and ``metrics.json``."""
    return source_entry(profile).path


def cached_source_metrics(profile: Profile | None = None) -> dict | None:
    """The source classifier's metrics (``source_test_accuracy``, ``source_train_accuracy``) if its
    cache entry is there and intact (:func:`tlbook.cache.verified`), else ``None``. Never trains."""
    item = source_entry(profile)
    if verified(item) is None:
        return None
    try:
        return json.loads((item.path / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def pretrain_source_classifier(profile: Profile | None = None):
    """Train backbone + softmax head on the source task from scratch (no cache involved).

    Seeded with ``profile.seed`` (:func:`tlbook.config.seeded`), so the result is reproducible and
    the caller's random state is left as it was.

    Returns:
        ``(model, metrics)``: the trained classifier (its backbone is ``model.get_layer("backbone")``)
        and a dict with ``source_test_accuracy`` and ``source_train_accuracy``.
    """
    import keras

    from tlbook.data import source_task

    profile = profile or get_profile()
    if profile.backbone != "small_cnn":
        raise ValueError(
            f"profile {profile.name!r} uses the {profile.backbone!r} backbone; source pretraining is the quick "
            "profile's"
        )
    with seeded(profile.seed):  # this training only; the caller's random state is left as it was
        task = source_task(profile)
        settings = source_settings(profile)
        model = build_classifier(
            build_small_cnn(profile.input_shape, width=settings["width"], seed=profile.seed),
            task.num_classes,
            seed=profile.seed,
            name="source_classifier",
            # Not a new head on pretrained features but a network trained from scratch, once, like
            # models.scratch_model: with a zero head its 10 epochs reached 0.67 source test accuracy
            # instead of 0.84 (measured, one run), and every chapter would start from a weaker backbone.
            head_initializer="glorot_uniform",
        )
        model.compile(
            optimizer=keras.optimizers.Adam(settings["learning_rate"]),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        with progress_bar(
            settings["epochs"], desc="pretraining the source backbone (once, then cached)", unit="epoch"
        ) as bar:
            model.fit(
                task.train.x.astype("float32"),
                task.train.y,
                epochs=settings["epochs"],
                batch_size=settings["batch_size"],
                shuffle=True,
                verbose=0,
                callbacks=[keras_callback(bar)],
            )
        _, train_acc = model.evaluate(task.train.x.astype("float32"), task.train.y, verbose=0)
        _, test_acc = model.evaluate(task.test.x.astype("float32"), task.test.y, verbose=0)
    return model, {"source_train_accuracy": float(train_acc), "source_test_accuracy": float(test_acc)}


def source_classifier(profile: Profile | None = None, retrain: bool = False):
    """The source-pretrained classifier, from the cache or trained once and cached.

    The first call trains it (:func:`pretrain_source_classifier`, about 15 s on a 2-core laptop)
    and stores it as a cache entry (:func:`tlbook.cache.cached`, folder :func:`source_cache_path`):
    ``model.keras`` and ``metrics.json``, with the entry's settings and digest in its side-car.
    Later calls load it; an entry that is damaged, half-copied or another profile's is never
    loaded, it is trained again and replaced, with a warning. ``retrain=True`` trains again anyway.

    Returns:
        ``(model, metadata)``; ``metadata`` holds the settings and ``source_test_accuracy``.

    Raises:
        PermissionError: the cache directory is not writable (see :func:`tlbook.config.cache_dir`).
    """
    profile = profile or get_profile()
    settings = source_settings(profile)
    model, metrics = cached(
        "source",
        settings,
        lambda: pretrain_source_classifier(profile),
        write=_write_source,
        read=_read_source,
        use_cache=not retrain,
    )
    return model, {"settings": settings, **metrics}


def _write_source(trained, folder: Path) -> None:
    model, metrics = trained
    model.save(folder / "model.keras")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True), encoding="utf-8")


def _read_source(folder: Path):
    import keras

    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    return keras.saving.load_model(folder / "model.keras"), metrics


def pretrained_backbone(profile: Profile | None = None):
    """The backbone (image → features) pretrained on the source task, ready to transfer.

    Returns a ``keras.Model`` with output ``(n, d)``. It is the ``backbone`` layer of
    :func:`source_classifier`, so it shares its weights; freeze it with ``trainable = False``
    before building a head on it if the weights must stay fixed.
    """
    model, _ = source_classifier(profile)
    return model.get_layer("backbone")
