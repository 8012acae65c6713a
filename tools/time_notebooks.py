#!/usr/bin/env python
"""Time every chapter notebook on this machine and write the table the workshop page shows.

    .venv/bin/python tools/time_notebooks.py            # writes book/generated/timings.md
    .venv/bin/python tools/time_notebooks.py --check    # measures again, compares with the table
    .venv/bin/python tools/time_notebooks.py --stamp    # the table's times into each chapter's opening
    .venv/bin/python tools/time_notebooks.py --only ch07_does_it_pay_off   # one chapter's row again

Writing the table also writes each chapter's "**Run time:**" line (its first Markdown cell) from
the measured times, so the time a chapter states is the time that was measured, and the same line
in that cell's Chinese translation (book/translations/zh/), which stays current.

Each notebook runs twice, in book order, in a fresh kernel, with the quick profile and its own
empty cache directory: the first pass is what a participant sees on a fresh laptop (Chapter 1
pretrains the backbone, Chapters 6 and 7 compute their studies), the second pass what they see
once the cache is warm. The empty cache gets the downloads already in this machine's tlbook cache
(the photos' .deb, which a workshop fetches ahead with `python -m tlbook prefetch`), linked, so a
first run measures computing, not the network. The executed notebooks are not saved; only the
run-time lines change.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from book_toc import parent_pages, toc_files  # tools/ is on sys.path
from nbclient import NotebookClient
from seed_spread import CELL_TIMEOUT  # the Makefile's, read once for both tools (tools/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "book" / "generated" / "timings.md"


def chapters() -> list[Path]:
    """The notebooks listed in _toc.yml (chapters and their sections), in book order."""
    return [ROOT / f"{f}.ipynb" for f in toc_files(ROOT) if (ROOT / f"{f}.ipynb").is_file()]


def run(path: Path, cache: Path) -> float:
    """Seconds to execute one notebook in a fresh kernel (the file is not changed)."""
    nb = nbformat.read(path, as_version=4)
    os.environ.update({"TLBOOK_CACHE": str(cache), "TLBOOK_PROFILE": "quick", "PYTHONHASHSEED": "0"})
    os.environ.pop("TLBOOK_PHOTOS_DIR", None)  # the book's photos, as the timings table states
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return time.perf_counter() - start


def measure(only: list[str] | None = None) -> dict[str, tuple[float, float]]:
    """Both passes of every chapter, in book order, in one fresh cache; with ``only``, of those
    chapters, in a fresh cache that already holds the source backbone (as it would in book order,
    where Chapter 1 pretrains it), so a chapter's row can be measured again alone. A section page
    (Chapter 7's second) is measured after its chapter's first page, whose study it reads."""
    from tlbook.config import cache_dir

    downloads = cache_dir() / "downloads"
    if only is not None:  # a chapter's second page reads what its first computed: both, in book order
        parents = parent_pages(ROOT)
        only = list(dict.fromkeys([*(parents[name] for name in only if name in parents), *only]))
    paths = [p for p in chapters() if only is None or p.stem in only]
    if only is not None and len(paths) != len(only):
        raise SystemExit(f"unknown chapters: {sorted(set(only) - {p.stem for p in paths})}")
    with tempfile.TemporaryDirectory(prefix="tlbook-timing-") as tmp:
        if downloads.is_dir():
            (Path(tmp) / "downloads").mkdir()
            for item in downloads.iterdir():
                if item.is_file() and not item.name.startswith("."):
                    (Path(tmp) / "downloads" / item.name).symlink_to(item.resolve())
        if only is not None:
            env = {**os.environ, "TLBOOK_CACHE": tmp, "TLBOOK_PROFILE": "quick", "PYTHONHASHSEED": "0"}
            code = "from tlbook.backbones import pretrained_backbone; pretrained_backbone()"
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
        first = {p.stem: run(p, Path(tmp)) for p in paths}
        second = {p.stem: run(p, Path(tmp)) for p in paths}
    return {name: (first[name], second[name]) for name in first}


def write(times: dict[str, tuple[float, float]]) -> str:
    """Write the table from ``times``; rows of chapters not in ``times`` are kept from the stored
    table (``--only``)."""
    if TABLE.is_file() and set(times) != {p.stem for p in chapters()}:
        times = {name: times.get(name, old) for name, old in read().items()} | times
    order = [p.stem for p in chapters()]  # book order, a new page among the stored rows included
    times = dict(sorted(times.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))
    cores = os.cpu_count()
    lines = [
        f"<!-- generated by tools/time_notebooks.py on {datetime.date.today()}; do not edit by hand -->",
        "",
        f"Measured on {platform.system()} {platform.machine()}, {cores} CPU cores, no GPU, quick profile.",
        "",
        "| chapter notebook | first run, empty cache (s) | second run, warm cache (s) |",
        "|---|---:|---:|",
    ]
    lines += [f"| `{name}` | {a:.0f} | {b:.0f} |" for name, (a, b) in times.items()]
    total_a, total_b = (sum(t[i] for t in times.values()) for i in (0, 1))
    lines.append(f"| **all chapters** | **{total_a:.0f}** | **{total_b:.0f}** |")
    text = "\n".join(lines) + "\n"
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text(text)
    return text


#: The line each chapter's opening cell carries, written from the table by :func:`stamp`.
RUN_TIME = re.compile(r"^\*\*Run time:\*\*.*$", re.M)


def run_time_line(first: float, warm: float) -> str:
    """The run-time line of one chapter, from its two measured times (seconds)."""
    return (
        f"**Run time:** {warm:.0f} s with a warm cache, {first:.0f} s from an empty one (measured on "
        "the machine of the workshop timing table, {doc}`workshop`)."
    )


#: The same line in the Chinese edition (book/translations/zh/), written with the English one.
RUN_TIME_ZH = re.compile(r"^\*\*运行时间：\*\*.*$", re.M)


def run_time_line_zh(first: float, warm: float) -> str:
    """:func:`run_time_line` in Chinese, as the translation of a chapter's opening carries it."""
    return (
        f"**运行时间：** 缓存已预热时 {warm:.0f} s，缓存为空时 {first:.0f} s"
        "（在工作坊计时表所用的机器上测得，见 {doc}`workshop`）。"
    )


def stamp_translation(path: Path, key: str, before: str, after: str, times: tuple[float, float]) -> bool:
    """Write the run-time line into the Chinese translation of a chapter's opening cell ``key``,
    whose English went from ``before`` to ``after``, and mark it current. A translation that was
    already stale (or has no run-time line) is left for a translator to revise whole. Returns
    whether it was written."""
    import translations  # tools/ is on sys.path

    entries = translations.read_translations(path, "zh", ROOT)
    entry = entries.get(key)
    if entry is None or entry.get("sha") != translations.sha(before) or not RUN_TIME_ZH.search(entry.get("zh", "")):
        return False
    line = run_time_line_zh(*times)
    entry["zh"] = RUN_TIME_ZH.sub(lambda _: line, entry["zh"], count=1)
    entry.update(sha=translations.sha(after), en=after)
    translations.write_translations(path, "zh", entries, ROOT)
    return True


def stamp(times: dict[str, tuple[float, float]]) -> list[str]:
    """Write each chapter's run-time line into its opening cell, and into that cell's Chinese
    translation where it was current (:func:`stamp_translation`); returns the notebooks changed.

    Raises:
        ValueError: a chapter's opening cell has no ``**Run time:**`` line to replace.
    """
    changed = []
    for path in chapters():
        if path.stem not in times:
            continue
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "markdown")
        if not RUN_TIME.search(cell.source):
            raise ValueError(f"{path.name}: its first Markdown cell has no '**Run time:**' line")
        line = run_time_line(*times[path.stem])
        new = RUN_TIME.sub(lambda _, line=line: line, cell.source, count=1)  # a function: no escapes
        if new != cell.source:
            before, cell.source = cell.source, new
            nbformat.write(nb, path)
            stamp_translation(path, cell.id, before, new, times[path.stem])
            changed.append(path.name)
    return changed


def read() -> dict[str, tuple[float, float]]:
    rows = re.findall(r"^\| `([^`]+)` \| (\d+) \| (\d+) \|$", TABLE.read_text(), re.M)
    return {name: (float(a), float(b)) for name, a, b in rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="measure and compare with the stored table instead of writing it"
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.35, help="relative difference counted as noise (default 0.35)"
    )
    parser.add_argument(
        "--stamp", action="store_true", help="only write the table's times into the chapters' run-time lines"
    )
    parser.add_argument("--only", nargs="+", metavar="CHAPTER", help="measure only these chapters (notebook stems)")
    args = parser.parse_args(argv)
    if args.stamp:
        print("run-time lines written:", ", ".join(stamp(read())) or "none changed")
        return 0
    times = measure(args.only)
    if not args.check:
        print(write(times))
        print("run-time lines written:", ", ".join(stamp(times)) or "none changed")
        return 0
    stored, bad = read(), []
    for name, (a, b) in times.items():
        old = stored.get(name)
        for label, new, ref in (("first", a, old and old[0]), ("second", b, old and old[1])):
            ok = ref is not None and abs(new - ref) <= max(args.tolerance * ref, 5.0)
            print(f"{'ok ' if ok else 'OFF'} {name} {label}: table {ref}, now {new:.0f} s")
            bad += [] if ok else [name]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
