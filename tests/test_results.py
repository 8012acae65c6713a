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


def test_a_study_dataclass_goes_through_the_cache_as_json_and_comes_back_equal(tmp_cache):
    """What each study does at its boundary: its compute stores ``to_json()``, it returns ``from_json``
    of what the cache gives back (the stored JSON: lists, not tuples)."""
    tuning = studies.ScratchTuning(
        grid=(studies.TuningPoint(1e-3, 50, 0.5), studies.TuningPoint(1e-3, 100, 0.6)),
        validation_images=40,
        learning_rate=1e-3,
        steps=100,
    )
    run = studies.BudgetRun("scratch", 2, 0, 0.6, 1.5, ((0.7, 0.5), (1.5, 0.6)))
    study = studies.LabelBudgetStudy(rates=studies.ArmRates(scratch=tuning, arms=()), runs=(run,))
    stored = studies.cached_study("demo", {"a": 1}, study.to_json)
    assert isinstance(stored, dict) and stored["runs"][0]["curve"] == [[0.7, 0.5], [1.5, 0.6]]
    assert studies.LabelBudgetStudy.from_json(stored) == study
    assert studies.LabelBudgetStudy.from_json(studies.cached_study("demo", {"a": 1}, dict)) == study  # read back
    pitfalls = studies.PitfallStudy(runs=(studies.PitfallRun("right way", 0, 0.8, None),))
    assert studies.PitfallStudy.from_json(studies.cached_study("pitfalls-demo", {}, pitfalls.to_json)) == pitfalls
