"""tlbook: the tested package behind the transfer-learning book.

Modules are named for the idea a learner meets:

- :mod:`tlbook.config` - profiles (``quick``/``full``), the cache directory, seeding;
- :mod:`tlbook.data` - the digits source and target tasks, few-shot sampling, image folders;
- :mod:`tlbook.downloads` - the full profile's downloads, verified and atomic (``python -m tlbook prefetch``);
- :mod:`tlbook.preprocessing` - input preprocessing as Keras layers (registered, so saved models load);
- :mod:`tlbook.models` - backbones, the source-pretrained backbone and its cache, feature extraction,
  the article's architecture corrected (``build_transfer_model``);
- :mod:`tlbook.training` - recipes: from scratch, the head on cached features, two-phase fine-tuning
  (each takes a ``tf.distribute`` strategy);
- :mod:`tlbook.workflow` - the article's workflow as a runnable graph and its Mermaid diagram;
- :mod:`tlbook.diagnostics` - reference numbers (ln K, chance) and checks of a training run;
- :mod:`tlbook.experiments` - linear probes and other measurements the chapters report;
- :mod:`tlbook.plots` - every figure of the book;
- :mod:`tlbook.widgets` - interactive explorers for live notebooks;
- :mod:`tlbook.doctor` - ``python -m tlbook doctor``, is this machine ready for the book?

Importing tlbook imports TensorFlow quietly (see :func:`tlbook._quiet.import_tensorflow`), so the
start-up chatter of TensorFlow's C++ runtime does not land in notebook outputs.
"""
from tlbook._quiet import import_tensorflow as _import_tensorflow

_import_tensorflow()

from tlbook.config import cache_dir, get_profile, seed_everything  # noqa: E402
from tlbook import preprocessing  # noqa: E402,F401  (registers tlbook's layers, so saved models load)

__version__ = "0.1.0"
__all__ = ["get_profile", "seed_everything", "cache_dir", "__version__"]
