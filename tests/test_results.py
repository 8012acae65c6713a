"""tlbook.studies.results: a study computed once per setting and cached."""

import pytest

from tlbook import studies


def test_cached_study_computes_once_per_settings_and_keys_on_keras(tmp_cache, monkeypatch):
    import importlib.metadata

    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls), "pair": (1, 2)}

    assert studies.cached_study("demo", {"a": 1}, compute) == {"value": 1, "pair": [1, 2]}  # the stored JSON
    assert studies.cached_study("demo", {"a": 1}, compute)["value"] == 1 and len(calls) == 1
    assert studies.cached_study("demo", {"a": 2}, compute)["value"] == 2
    assert studies.cached_study("demo", {"a": 1}, compute, use_cache=False)["value"] == 3
    entries = sorted(p for p in (tmp_cache / "demo").iterdir() if not p.name.endswith(".sidecar.json"))
    assert len(entries) == 2 and not [p for p in entries if p.name.startswith(".")]
    entries[0].write_text("{half a fi")  # damaged: recomputed, not loaded (tests/test_cache.py has the rest)
    with pytest.warns(RuntimeWarning, match="computing it again"):
        for a in (1, 2):
            studies.cached_study("demo", {"a": a}, compute)
    assert len(calls) == 4
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9" if name == "keras" else real(name))
    assert studies.cached_study("demo", {"a": 1}, compute)["value"] == 5  # another Keras: computed again
