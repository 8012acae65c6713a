"""tlbook: the tested package behind the transfer-learning book.

Modules are named for the idea a learner meets:

- :mod:`tlbook.config` - the profile (``quick``), the cache directory, seeding;
- :mod:`tlbook.data` - the digits source and target tasks, few-shot sampling, image folders;
- :mod:`tlbook.files` - files written whole or not at all, digests, cache entries checked against them;
- :mod:`tlbook.downloads` - ImageNet ResNet50 weights and the flower photos for readers with a network,
  verified and atomic (``python -m tlbook prefetch``);
- :mod:`tlbook.preprocessing` - input preprocessing as Keras layers (registered, so saved models load);
- :mod:`tlbook.backbones` - backbones with their weights: the small CNN, its source pretraining and cache,
  ImageNet weights (ResNet50's downloaded, EfficientNet-Lite0's converted offline), feature extraction;
- :mod:`tlbook.pytorch_weights` - PyTorch weight files read without PyTorch and without general unpickling;
- :mod:`tlbook.models` - the article's architecture corrected (``build_transfer_model``) and what a chapter
  inspects in a model (θ and b of the head, BatchNorm layers, trainable layers);
- :mod:`tlbook.training` - recipes: from scratch, the head on cached features, two-phase fine-tuning
  (each takes a ``tf.distribute`` strategy);
- :mod:`tlbook.workflow` - the article's workflow as a runnable graph and its Mermaid diagram;
- :mod:`tlbook.diagnostics` - reference numbers (ln K, chance) and checks of a training run;
- :mod:`tlbook.probes` - linear probes on frozen features and their 2-D projection;
- :mod:`tlbook.studies` - the many-run studies of chapters 6 and 7, cached, and their tables;
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

__version__ = "0.1.0"
__all__ = ["get_profile", "seed_everything", "cache_dir", "__version__"]
