#!/usr/bin/env python
"""Measure how far a change of seed moves each toleranced number of the book, and set the
tolerances from it.

    .venv/bin/python tools/seed_spread.py                    # 5 offsets, every chapter; a table
    .venv/bin/python tools/seed_spread.py --write            # ... and the cells' tolerances
    .venv/bin/python tools/seed_spread.py --offsets 1 2 3 4 5 book/ch07_*.ipynb   # both pages of Chapter 7
    .venv/bin/python tools/seed_spread.py --from-reports --out spread/   # aggregate earlier runs only

Why seeds: the numbers the notebook check compares within a tolerance come from training, and a
few hundred steps of training amplify a difference in the last bit of one sum (another CPU's
kernels, another thread count) into a different run, the way a change of seed does, not more.
So a tolerance that covers what a change of seed does covers every machine, by construction, and
not only the few machines that happened to be at hand.

How: for each offset N the chapters run under the notebook check with ``TLBOOK_SEED_OFFSET=N``
(added to every seed tlbook applies: initial weights, shuffling, the studies' runs; the data
splits stay as they are), each offset with its own empty cache (the source backbone and the
studies are recomputed under it; the downloads already in make's cache, ``.cache/tlbook``, or
in ``TLBOOK_CACHE`` are linked), and
``--nbval-tolerance-report`` records each cell's largest deviation from the stored outputs. The
spread of a cell is the largest of these deviations over the offsets.

The rule the README states: a cell's tolerance is the spread times MARGIN (1.5), rounded up to
the last digit the cell prints, and at least one unit of that digit (rounding alone can move a
printed number by one unit). A cell printed in whole points (``"integers": true``) counts whole
numbers like decimals. A cell that declares ``rtol`` (a count that scales with its size) gets
its relative spread times MARGIN instead. ``--write`` stores the tolerance and the measured
spread in each cell's ``nbval-tolerance`` metadata; the first sentence of the reason (what the
numbers are) is kept.

A few numbers do not come from training but still depend on the seed, through the data a seed
draws or the initial weights (the first batch of a shuffled dataset, the loss of an untrained
network): a change of seed changes them wholesale, a change of CPU only in their last bits. Such a
cell says ``"spread": "kernels"`` in its metadata, and its spread is measured under the CPU
conditions themselves instead (``--perturbation kernels``: oneDNN limited to AVX2, SSE4.1 and
AVX-512 kernels, Eigen's kernels, two threads; each from an empty cache).

    .venv/bin/python tools/seed_spread.py --perturbation kernels book/ch04_article_code.ipynb

``--perturbation acceptance`` runs ``make notebooks``'s check under the conditions another
machine brings (ACCEPTANCE: this CPU's own kernels, oneDNN limited to AVX2, that with Eigen's
kernels, one core through ``taskset -c 0``, two threads), each from an empty cache, and prints per
toleranced cell its largest deviation under each beside its tolerance and the spread that set it.

Cells whose text changed under an offset (a word or an integer the check compares exactly) are
listed: a change of CPU can flip them too, so the chapter must print something steadier there.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tolerance plugin's number reader

from nbval_tolerance import METADATA_KEY, NUMBER  # noqa: E402

MARGIN = 1.5


def makefile_cell_timeout() -> int:
    """The Makefile's ``CELL_TIMEOUT`` (seconds): the tools give a cell as long as ``make`` does."""
    match = re.search(r"^CELL_TIMEOUT\s*:=\s*(\d+)\s*$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError("the Makefile has no line 'CELL_TIMEOUT := <seconds>'")
    return int(match.group(1))


CELL_TIMEOUT = makefile_cell_timeout()
MEASURED = "Measured spread:"


def notebooks(paths: list[str]) -> list[Path]:
    if paths:
        return [Path(p).resolve() for p in paths]
    return sorted((ROOT / "book").glob("ch*.ipynb"))


#: The CPU conditions of ``--perturbation kernels``: what other machines compute with.
CONDITIONS = {
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "sse41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
    "avx512": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "eigen": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "two-threads": {"TLBOOK_THREADS": "2"},
}

#: The conditions of ``--perturbation acceptance``: ``make notebooks`` as another machine would run
#: it (issue "Any x86-64 machine"), each from an empty cache; a condition may name a command prefix.
ACCEPTANCE = {
    "default": ({}, ()),
    "avx2": ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, ()),
    "avx2-eigen": ({"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "0"}, ()),
    "one-core": ({}, ("taskset", "-c", "0")),
    "two-threads": ({"TLBOOK_THREADS": "2"}, ()),
}


def run_check(
    name: str, extra_env: dict[str, str], books: list[Path], report: Path, jobs: int, prefix: tuple[str, ...] = ()
) -> int:
    """Run the notebook check of ``books`` under ``extra_env``, in a new empty cache; append each
    cell's deviation to ``report``. Returns pytest's exit code (1 is expected: cells outside
    today's tolerances are what this measures)."""
    # the downloads of make's cache (or TLBOOK_CACHE's): the photos' .deb, fetched ahead
    downloads = Path(os.environ.get("TLBOOK_CACHE") or ROOT / ".cache" / "tlbook") / "downloads"
    with tempfile.TemporaryDirectory(prefix=f"tlbook-{name}-") as tmp:
        if downloads.is_dir():
            (Path(tmp) / "downloads").mkdir()
            for item in downloads.iterdir():
                if item.is_file() and not item.name.startswith("."):
                    (Path(tmp) / "downloads" / item.name).symlink_to(item.resolve())
        env = {
            **os.environ,
            "TLBOOK_CACHE": tmp,
            "TLBOOK_PROFILE": "quick",
            "TLBOOK_PROGRESS": "0",
            "TLBOOK_THREADS": "1",
            "TF_ENABLE_ONEDNN_OPTS": "1",
            "PYTHONHASHSEED": "0",
            **extra_env,
        }
        env.pop("TLBOOK_PHOTOS_DIR", None)  # the stored outputs are of the book's photos
        if "ONEDNN_MAX_CPU_ISA" not in extra_env:
            env.pop("ONEDNN_MAX_CPU_ISA", None)  # oneDNN's own choice for this CPU, unless the run sets it
        command = [
            *prefix, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-n", str(jobs), "--dist", "loadscope",
            "--nbval", "--nbval-current-env", "--nbval-sanitize-with", "nbval-sanitize.cfg",
            f"--nbval-cell-timeout={CELL_TIMEOUT}", f"--nbval-tolerance-report={report}", *map(str, books),
        ]  # fmt: skip
        return subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL).returncode


def read_reports(folder: Path, pattern: str) -> dict[tuple[str, int], dict]:
    """Per (notebook, nbval cell): the largest deviation over the reports in ``folder`` (and its
    subfolders, for runs of some chapters only) whose names match ``pattern``."""
    cells: dict[tuple[str, int], dict] = {}
    for report in sorted(folder.rglob(pattern)):
        run = report.stem
        for line in report.read_text().splitlines():
            record = json.loads(line)
            cell = cells.setdefault(
                (record["notebook"], record["cell"]),
                {"runs": [], "abs": 0.0, "rel": 0.0, "text_changed": []},
            )
            cell["runs"].append(run)
            if not record["text_equal"] or record["max_abs"] is None:
                cell["text_changed"].append(run)
                continue
            cell["abs"] = max(cell["abs"], record["max_abs"])
            cell["rel"] = max(cell["rel"], record["max_rel"])
            if not record["integers_equal"] and not (record["tolerance"] or {}).get("integers"):
                cell["text_changed"].append(run)
    return cells


def code_cells(path: Path):
    """nbval's numbering: the notebook's code cells, from 0."""
    nb = nbformat.read(path, as_version=4)
    return nb, [cell for cell in nb.cells if cell.cell_type == "code"]


def printed_unit(cell, integers: bool) -> float:
    """One unit of the finest decimal place among the numbers the cell's stored outputs print."""
    places = 0
    for out in cell.get("outputs", []):
        shown = {k: v for k, v in out.get("data", {}).items() if "papermill.record" not in k}  # not glue's full value
        texts = [out.get("text", "")] + [v for v in shown.values() if isinstance(v, str)]
        for text in texts:
            for token in NUMBER.findall(text):
                if "e" in token.lower():
                    continue
                if "." in token:
                    places = max(places, len(token.split(".")[1]))
    if places == 0 and not integers:
        return 0.0
    return 10.0**-places


def proposed(spread: float, unit: float) -> float:
    """MARGIN x spread, rounded up to ``unit``, and at least one ``unit``."""
    if unit == 0:
        return MARGIN * spread
    return max(unit, math.ceil(round(MARGIN * spread / unit, 9)) * unit)


def acceptance_table(folder: Path, books: list[Path], ran: list[str] | None = None) -> list[str]:
    """Per toleranced cell: its tolerance, the spread its reason gives, and the largest deviation
    under each acceptance condition (``text`` where its words or exact integers changed, a ``!``
    after a deviation beyond the tolerance); then every cell whose text changed. With ``ran``, the
    columns of the other conditions say ``(earlier)``: their reports are from an earlier run."""
    names = list(ACCEPTANCE)
    measured = {name: read_reports(folder, f"acceptance-{name}.jsonl") for name in names}
    titles = [name if ran is None or name in ran else f"{name} (earlier)" for name in names]
    head = f"| cell | tolerance | measured spread | {' | '.join(titles)} |"
    lines = [head, "|---|---:|---:|" + "---:|" * len(names)]
    changed = []
    for path in books:
        _, code = code_cells(path)
        for index, cell in enumerate(code):
            spec = cell.metadata.get(METADATA_KEY)
            for name in names:
                seen = measured[name].get((path.name, index))
                if seen and seen["text_changed"]:
                    changed.append(f"{path.name} cell {index}: text changed under {name}")
            if spec is None:
                continue
            relative = spec.get("rtol", 0) > 0
            kind = "rtol" if relative else "atol"
            reason = spec.get("reason", "")
            spread = reason.split("was ")[-1].split(";")[0] if MEASURED in reason else "?"
            row = []
            for name in names:
                seen = measured[name].get((path.name, index))
                if seen is None:
                    row.append("-")
                else:
                    deviation = seen["rel" if relative else "abs"]
                    beyond = "!" if deviation > spec.get(kind, 0) + 1e-12 else ""
                    row.append("text" if seen["text_changed"] else f"{deviation:.3g}{beyond}")
            lines.append(f"| {path.stem} {index} | {kind} {spec.get(kind, 0):g} | {spread} | {' | '.join(row)} |")
    return lines + ["", *changed]


def summarise(folder: Path, books: list[Path], write: bool) -> list[str]:
    measured_by = {"seeds": read_reports(folder, "offset-*.jsonl"), "kernels": read_reports(folder, "kernels-*.jsonl")}
    lines, changed_text = [], []
    lines.append(f"{'cell':<44} {'spread of':>9} {'declared':>14} {'spread':>9} {'proposed':>14}  runs")
    for path in books:
        nb, code = code_cells(path)
        touched = False
        for index, cell in enumerate(code):
            spec = cell.metadata.get(METADATA_KEY)
            kind_of_spread = (spec or {}).get("spread", "seeds")
            for kind, cells in measured_by.items():
                seen = cells.get((path.name, index))
                if seen and seen["text_changed"] and (spec is None or kind == kind_of_spread):
                    changed_text.append(f"{path.name} cell {index}: text changed under {seen['text_changed']}")
            measured = measured_by[kind_of_spread].get((path.name, index))
            if spec is None or measured is None:
                continue
            relative = spec.get("rtol", 0) > 0
            spread = measured["rel"] if relative else measured["abs"]
            # where the CPU conditions were measured too, the tolerance covers them as well: a short
            # run that a seed hardly moves can still move with the kernels
            kernels = measured_by["kernels"].get((path.name, index))
            kernel_spread = 0.0 if kernels is None else (kernels["rel"] if relative else kernels["abs"])
            if kind_of_spread == "seeds" and kernel_spread > spread:
                spread = kernel_spread
                measured = {**measured, "runs": measured["runs"] + kernels["runs"]}
            unit = 0.0 if relative else printed_unit(cell, spec.get("integers", False))
            kind = "rtol" if relative else "atol"
            new = round(proposed(spread, unit), 9)
            lines.append(
                f"{path.name[:30] + ' cell ' + str(index):<44} {kind_of_spread:>9} "
                f"{kind + ' ' + format(spec.get(kind, 0), 'g'):>14} {spread:>9.3g} "
                f"{kind + ' ' + format(new, 'g'):>14}  {len(measured['runs'])}"
            )
            if write:
                what = spec.get("reason", "").split(MEASURED)[0].strip()
                runs = sorted(set(measured["runs"]))
                offsets = [int(r.split("-")[1]) for r in runs if r.startswith("offset-")]
                conditions = [r.split("-", 1)[1] for r in runs if r.startswith("kernels-")]
                how = " and ".join(
                    part
                    for part in (
                        offsets and f"with every seed shifted by {min(offsets)}..{max(offsets)} (TLBOOK_SEED_OFFSET)",
                        conditions and f"under {', '.join(conditions)}",
                    )
                    if part
                )
                how += f" ({len(runs)} runs"
                spec[kind] = new
                spec["reason"] = (
                    f"{what} {MEASURED} {how} from an empty cache, tools/seed_spread.py, "
                    f"{datetime.date.today()}, {platform.machine()} {os.cpu_count()} cores), the largest "
                    f"{'relative ' if relative else ''}deviation from the stored output was {spread:.3g}; "
                    f"the tolerance is {MARGIN} times that, rounded up to the last printed digit."
                ).strip()
                touched = True
        if touched:
            nbformat.write(nb, path)
    return lines + ["", *changed_text]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="chapter notebooks (default: all)")
    parser.add_argument("--offsets", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument(
        "--perturbation",
        choices=["seeds", "kernels", "acceptance"],
        default="seeds",
        help="seeds: TLBOOK_SEED_OFFSET=N for each offset; kernels: the CPU conditions of CONDITIONS; "
        "acceptance: the conditions of ACCEPTANCE, a table of deviations against tolerances (no --write)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="notebooks checked at once (pytest-xdist)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "seed-spread", help="folder for the reports")
    parser.add_argument("--from-reports", action="store_true", help="only aggregate the reports in --out")
    parser.add_argument(
        "--conditions",
        action="append",
        choices=list(ACCEPTANCE),
        help="with --perturbation acceptance: run only this condition (repeat for more); the table reads every "
        "report in --out and marks the conditions not run this time",
    )
    parser.add_argument("--write", action="store_true", help="store the proposed tolerances in the notebooks")
    args = parser.parse_args(argv)
    if args.perturbation == "acceptance" and args.write:
        parser.error("--write sets tolerances from seeds or kernels; the acceptance conditions only check them")
    if args.conditions and args.perturbation != "acceptance":
        parser.error("--conditions chooses among the acceptance conditions (--perturbation acceptance)")
    books = notebooks(args.notebooks)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.from_reports:
        if args.perturbation == "seeds":
            runs = {f"offset-{n}": ({"TLBOOK_SEED_OFFSET": str(n)}, []) for n in args.offsets}
        elif args.perturbation == "kernels":
            runs = {f"kernels-{name}": (env, []) for name, env in CONDITIONS.items()}
        else:
            chosen = args.conditions or list(ACCEPTANCE)
            runs = {f"acceptance-{name}": ACCEPTANCE[name] for name in chosen}
        failed = []
        for name, (env, prefix) in runs.items():
            if prefix and shutil.which(prefix[0]) is None:
                print(f"{name}: skipped, {prefix[0]} is not installed", flush=True)
                continue
            report = args.out / f"{name}.jsonl"
            report.unlink(missing_ok=True)
            code = run_check(name, env, books, report, args.jobs, prefix)
            print(f"{name}: notebook check exit code {code}", flush=True)
            failed += [name] if code else []
        if args.perturbation == "acceptance":
            print("\n".join(acceptance_table(args.out, books, args.conditions)))
            return 1 if failed else 0
    elif args.perturbation == "acceptance":
        print("\n".join(acceptance_table(args.out, books)))
        return 0
    print("\n".join(summarise(args.out, books, args.write)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
