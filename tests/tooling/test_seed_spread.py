"""tools/seed_spread.py: the rule that turns a measured spread into a cell's tolerance, on reports and a
notebook made here (the measurement itself runs the chapters: minutes, a maintainer's job)."""

import json

import nbformat
import pytest
import seed_spread
from nbval_tolerance import read_tolerance


def test_the_tolerance_is_one_and_a_half_spreads_rounded_up_to_the_printed_digit():
    assert seed_spread.proposed(0.04, 0.01) == pytest.approx(0.06)
    assert seed_spread.proposed(0.041, 0.01) == pytest.approx(0.07)  # up, never down
    assert seed_spread.proposed(0.0, 0.01) == pytest.approx(0.01)  # rounding alone moves one unit
    assert seed_spread.proposed(3.0, 1.0) == pytest.approx(5.0)  # whole points
    assert seed_spread.proposed(0.5, 0.0) == pytest.approx(0.75)  # rtol: no digit to round to


def _cell(text, spec=None):
    cell = nbformat.v4.new_code_cell("print(...)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    if spec is not None:
        cell.metadata["nbval-tolerance"] = spec
    return cell


def test_the_printed_unit_is_the_finest_decimal_place():
    assert seed_spread.printed_unit(_cell("accuracy 0.75, loss 1.2345\n"), False) == pytest.approx(1e-4)
    assert seed_spread.printed_unit(_cell("gain 26 points\n"), True) == 1.0
    assert seed_spread.printed_unit(_cell("ratio 8e+02\n"), False) == 0.0  # no decimal place to round to
    glued = _cell("accuracy 0.92\n")  # and the full value glued for the prose, which the page rounds
    glued.outputs.append(
        nbformat.v4.new_output("display_data", data={"application/papermill.record/text/plain": "0.9242424242"})
    )
    assert seed_spread.printed_unit(glued, False) == pytest.approx(0.01)


def _report(folder, name, records):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _record(cell, max_abs, text_equal=True, integers_equal=True):
    return {
        "notebook": "chapter.ipynb",
        "cell": cell,
        "tolerance": None,
        "text_equal": text_equal,
        "numbers": 2,
        "max_abs": max_abs,
        "max_rel": 0.0 if max_abs is None else max_abs,
        "integers_equal": integers_equal,
    }


def test_write_sets_each_cell_from_its_own_kind_of_spread_and_lists_changed_text(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell("accuracy 0.75\n", {"atol": 0.01, "reason": "One training run."}),
        _cell("loss before training 1.6094\n", {"atol": 0.01, "spread": "kernels", "reason": "No training."}),
        _cell("best: fine-tuning\n"),
    ]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    reports = tmp_path / "reports"
    _report(reports, "offset-1", [_record(0, 0.03), _record(1, 0.5), _record(2, None, text_equal=False)])
    _report(reports / "later", "offset-2", [_record(0, 0.05), _record(1, 0.2), _record(2, 0.0)])
    _report(reports, "kernels-avx2", [_record(0, 0.0), _record(1, 0.0004), _record(2, 0.0)])
    _report(reports, "kernels-sse41", [_record(0, 0.1), _record(1, 0.0), _record(2, 0.0)])

    lines = seed_spread.summarise(reports, [path], write=True)

    cells = nbformat.read(path, as_version=4).cells
    trained, untrained = (read_tolerance(c.metadata) for c in cells[:2])
    assert trained["atol"] == pytest.approx(0.15)  # 1.5 x 0.1: the kernels moved it more than the seeds
    assert trained["reason"].startswith("One training run. Measured spread:")
    assert "1..2" in trained["reason"] and "sse41" in trained["reason"]
    assert untrained["atol"] == pytest.approx(0.0006)  # from the kernels, not from the seeds' 0.5
    assert "under avx2, sse41" in untrained["reason"] and untrained["spread"] == "kernels"
    assert any("chapter.ipynb cell 2: text changed under ['offset-1']" in line for line in lines)
    # measuring again replaces the measurement and keeps what the numbers are
    seed_spread.summarise(reports, [path], write=True)
    again = read_tolerance(nbformat.read(path, as_version=4).cells[0].metadata)["reason"]
    assert again.count("Measured spread:") == 1 and again.startswith("One training run.")


def test_acceptance_table_gives_each_conditions_deviation_beside_the_tolerance_and_its_spread(tmp_path):
    reason = "One training run. Measured spread: ... the largest deviation from the stored output was 0.04; ..."
    nb = nbformat.v4.new_notebook()
    nb.cells = [_cell("accuracy 0.75\n", {"atol": 0.06, "reason": reason}), _cell("best: fine-tuning\n")]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    reports = tmp_path / "reports"
    _report(reports, "acceptance-default", [_record(0, 0.0), _record(1, 0.0)])
    _report(reports, "acceptance-avx2", [_record(0, 0.03), _record(1, None, text_equal=False)])
    _report(reports, "acceptance-one-core", [_record(0, 0.07), _record(1, 0.0)])

    lines = seed_spread.acceptance_table(reports, [path])

    assert lines[0].split(" | ")[3:5] == ["default", "avx2"]
    row = lines[2].split(" | ")
    assert row[1:5] == ["atol 0.06", "0.04", "0", "0.03"]
    assert row[5:] == ["-", "0.07!", "- |"]  # avx2-eigen, two-threads not measured; one core beyond
    with pytest.raises(SystemExit):
        seed_spread.main(["--perturbation", "acceptance", "--write", "--from-reports", "--out", str(reports)])
    assert "chapter.ipynb cell 1: text changed under avx2" in lines


def test_conditions_runs_only_the_chosen_acceptance_conditions(tmp_path, monkeypatch, capsys):
    ran = []

    def fake_check(name, extra_env, books, report, jobs, prefix=()):
        ran.append((name, extra_env, prefix))
        return 0

    monkeypatch.setattr(seed_spread, "run_check", fake_check)
    nb = nbformat.v4.new_notebook()
    nb.cells = [_cell("accuracy 0.75\n", {"atol": 0.06, "reason": "One run."})]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "reports"
    args = ["--perturbation", "acceptance", "--out", str(out), str(path)]
    assert seed_spread.main([*args, "--conditions", "one-core", "--conditions", "avx2"]) == 0
    head = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| cell |"))
    assert "| default (earlier) | avx2 |" in head and "| one-core |" in head
    assert ran == [
        ("acceptance-one-core", {}, ("taskset", "-c", "0")),
        ("acceptance-avx2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, ()),
    ] or ran == [("acceptance-avx2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, ())]  # no taskset: skipped
    with pytest.raises(SystemExit):
        seed_spread.main(["--perturbation", "seeds", "--conditions", "avx2", "--out", str(out), str(path)])
    with pytest.raises(SystemExit):
        seed_spread.main([*args, "--conditions", "a-laptop"])


def test_the_tools_give_a_cell_the_makefiles_timeout(tmp_path, monkeypatch):
    assert seed_spread.CELL_TIMEOUT == seed_spread.makefile_cell_timeout() >= 600
    monkeypatch.setattr(seed_spread, "ROOT", tmp_path)
    (tmp_path / "Makefile").write_text("NBVAL := --nbval\n")
    with pytest.raises(RuntimeError, match="CELL_TIMEOUT"):
        seed_spread.makefile_cell_timeout()
