"""tlbook: the tested package behind the transfer-learning book.

Modules are named for the idea a learner meets:

- :mod:`tlbook.config` - the profile (``quick``), the cache directory, seeding;
- :mod:`tlbook.data` - the data the chapters use, one idea per submodule: :mod:`tlbook.data.digits`
  (the digits source and target tasks), :mod:`tlbook.data.sampling` (few-shot sampling),
  :mod:`tlbook.data.folders` (image folders), :mod:`tlbook.data.debian` (reading a Debian package),
  :mod:`tlbook.data.photos` (real photos: Tux Paint's stamps), :mod:`tlbook.data.photo` (one photo
  as a model takes it), :mod:`tlbook.data.photo_folder` (your own photo folder, checked and read);
- :mod:`tlbook.files` - files written whole or not at all, and files checked against their digest;
- :mod:`tlbook.cache` - the one cache: what tlbook computes once and keeps, keyed on its settings and
  code, checked on every read;
- :mod:`tlbook.downloads` - ImageNet ResNet50 weights and the flower photos for readers with a network,
  verified and atomic (``python -m tlbook prefetch``);
- :mod:`tlbook.preprocessing` - input preprocessing as Keras layers (registered, so saved models load);
- :mod:`tlbook.backbones` - backbones with their weights, one idea per submodule:
  :mod:`tlbook.backbones.small_cnn` (the small CNN, and a classifier on any backbone),
  :mod:`tlbook.backbones.source` (the small CNN pretrained on the source task, cached),
  :mod:`tlbook.backbones.controls` (the no-transfer controls: random weights, the raw pixels),
  :mod:`tlbook.backbones.features` (φ(x) of every image, computed once and cached),
  :mod:`tlbook.backbones.resnet50` (ResNet50's ImageNet weights, downloaded once),
  :mod:`tlbook.backbones.lite0` (EfficientNet-Lite0's ImageNet weights, converted offline);
- :mod:`tlbook.pytorch_weights` - PyTorch weight files read without PyTorch and without general unpickling;
- :mod:`tlbook.models` - every classifier the book trains, one idea per submodule:
  :mod:`tlbook.models.heads` (the head θ, b on φ(x), alone or in a model, and read back),
  :mod:`tlbook.models.transfer` (the article's architecture corrected, ``build_transfer_model``, and the
  pretrained and scratch arms of every comparison), :mod:`tlbook.models.inspection` (what a chapter
  inspects: layers, which of them train, BatchNorm layers, the φ/θ split drawn from the model),
  :mod:`tlbook.models.imagenet` (what the ImageNet classifier itself sees);
- :mod:`tlbook.training` - recipes: steps over a repeating dataset, the head on cached features,
  two-phase fine-tuning (each takes a ``tf.distribute`` strategy);
- :mod:`tlbook.finetuning` - how much of a pretrained network to adapt: a learning rate per layer,
  gradual unfreezing, AdaBN;
- :mod:`tlbook.workflow` - the article's workflow as a runnable graph and its Mermaid diagram;
- :mod:`tlbook.diagnostics` - reading a training run, one idea per submodule:
  :mod:`tlbook.diagnostics.chance` (what a model that learned nothing scores: ln K, chance, class shares),
  :mod:`tlbook.diagnostics.logs` (a printed Keras log read back into numbers),
  :mod:`tlbook.diagnostics.diagnosis` (the rules that say what is wrong with a run),
  :mod:`tlbook.diagnostics.checks` (the checks of a model and its data, and the checklist),
  :mod:`tlbook.diagnostics.text` (printed advice wrapped to the page);
- :mod:`tlbook.probes` - linear probes on frozen features and their 2-D projection;
- :mod:`tlbook.studies` - the many-run studies of chapters 6 and 7, one per submodule:
  :mod:`tlbook.studies.tuning` (every arm's learning rate tuned on a validation split),
  :mod:`tlbook.studies.arms` (the arms Chapter 7 compares, each trained by one function),
  :mod:`tlbook.studies.label_budget` (Chapter 7's label budgets),
  :mod:`tlbook.studies.budget_tables` (its tables and paired intervals),
  :mod:`tlbook.studies.pitfalls` (Chapter 6's fine-tuning mistakes), :mod:`tlbook.studies.results`
  (each study cached), :mod:`tlbook.studies.pool` (runs here or in worker processes),
  :mod:`tlbook.studies.runs` (what every run shares);
- :mod:`tlbook.stats` - comparing models: one accuracy (Wilson), two models on the same images (paired,
  McNemar), a gain across seeds (paired t);
- :mod:`tlbook.experiments` - measurements of single training runs (chapters 4 to 6);
- :mod:`tlbook.plots` - every figure of the book;
- :mod:`tlbook.widgets` - interactive explorers for live notebooks;
- :mod:`tlbook.progress` - progress bars for long computations (off in tests and stored outputs);
- :mod:`tlbook.doctor` - ``python -m tlbook doctor``, is this machine ready for the book?

Importing tlbook imports TensorFlow quietly (see :func:`tlbook._quiet.import_tensorflow`), so the
start-up chatter of TensorFlow's C++ runtime does not land in notebook outputs. Where TensorFlow
cannot be imported, tlbook still imports (with a warning), so ``python -m tlbook doctor`` can say
what is wrong; everything that trains then fails with TensorFlow's own ImportError.
"""

import warnings

from tlbook._quiet import import_tensorflow as _import_tensorflow

try:
    _import_tensorflow()
    from tlbook import preprocessing  # noqa: F401  (registers tlbook's layers, so saved models load)
except ImportError as _error:
    warnings.warn(
        f"tlbook could not import TensorFlow or Keras ({_error}); run `python -m tlbook doctor`",
        RuntimeWarning,
        stacklevel=2,
    )

from tlbook.config import cache_dir, get_profile, seed_everything  # noqa: E402

__version__ = "0.3.0"
__all__ = ["get_profile", "seed_everything", "cache_dir", "__version__"]
