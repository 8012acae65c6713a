"""A study's results, computed once per setting and kept in the cache (:mod:`tlbook.cache`)."""

from __future__ import annotations


def cached_study(name: str, settings: dict, compute, *, use_cache: bool = True) -> dict:
    """Run ``compute()`` once per ``settings`` and keep its (JSON) result in the tlbook cache.

    An entry of :func:`tlbook.cache.cached` of kind ``name`` (``<cache>/<name>/``): keyed on
    ``settings``, the installed Keras version, tlbook's version, the code that computes
    (:func:`tlbook.config.code_digest`) and ``TLBOOK_SEED_OFFSET``, so a change to any of them
    recomputes; checked against its digest and settings on every read, written atomically, computed
    once when several processes ask at the same time. Every call returns the stored JSON (tuples come
    back as lists); each study turns it into its result dataclass (``from_json``, such as
    :meth:`tlbook.studies.label_budget.LabelBudgetStudy.from_json`).

    Args:
        name: the study's name, a plain folder name (``"label-budget"``).
        settings: JSON-serialisable values that decide the result.
        compute: makes the result (a JSON-serialisable value: a result dataclass's ``to_json()``),
            called only when needed.
        use_cache: ``False`` computes and stores again.
    """
    import importlib.metadata

    from tlbook.cache import cached, read_json, write_json

    keyed = {**settings, "keras": importlib.metadata.version("keras")}  # the installed one; no need to import it
    return cached(name, keyed, compute, write=write_json, read=read_json, suffix=".json", use_cache=use_cache)
