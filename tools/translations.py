#!/usr/bin/env python3
"""The Chinese edition's translations, kept as data keyed to the English text they translate.

Every page of the book (``_toc.yml``) has a file ``book/translations/<lang>/<page>.json``. A unit
is a Markdown cell of a chapter notebook (keyed by its cell id), the alt text of a code cell's
figure (``<cell id>/alt``, MyST-NB's ``mystnb.image.alt`` metadata) or a block of a Markdown page
(keyed by the hash of its English text: blocks are separated by blank lines outside code fences).
Each entry holds ``sha`` (the first 16 hex digits of the SHA-256 of the English text it
translates), ``en`` (that text, for the translator's reference) and ``zh`` (the translation).

Commands:

- ``extract``: add an entry with an empty translation for every unit that has none, and drop the
  entries of units that no longer exist (a translator then fills in ``zh``);
- ``check``: list every unit without a current translation (missing, empty, or translating an
  English text that has changed since: its ``sha`` differs), and every translation that lost a
  glue role, cross-reference, math or code span of its English text; exit 1 if any;
- ``accept PAGE KEY``: mark a unit's translation as current after it was revised to the new
  English text;
- ``build --out DIR``: write the translated book's sources: each notebook copied with its Markdown
  cells and figure descriptions swapped (code and stored outputs byte for byte the English ones,
  so every number is the English edition's), each Markdown page with its blocks swapped, and the configuration of the
  translated edition.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import yaml
from book_toc import toc_files  # tools/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = {"zh": "zh_CN"}
#: What must survive translation unchanged: MyST roles with their targets ({glue:text}`x`,
#: {doc}`...`, {term}`...`), inline code, inline and display math, link targets.
PROTECTED = (
    re.compile(r"\{[\w:-]+\}`[^`]*`"),
    re.compile(r"(?<![`A-Za-z0-9_}])`[^`\n]+`(?!`)"),  # after any Chinese character too
    re.compile(r"\$\$.+?\$\$|(?<![\\$])\$[^$\n]+\$", re.S),
    re.compile(r"\]\(([^)\s]+)\)"),
)


#: Fenced blocks that hold no prose: a unit that is one of them is its own translation.
VERBATIM_FENCES = ("bash", "console", "python", "text", "yaml", "{eval-rst}", "{include}")


def verbatim(text: str) -> bool:
    """True for a unit with no prose: a single fenced block of code or of a directive without
    prose, or a line whose only words are code (a heading such as ``## `tlbook.config` ``)."""
    bare = text
    for pattern in PROTECTED:
        bare = pattern.sub("", bare)
    if not re.search(r"[A-Za-z]", bare):
        return True
    match = re.fullmatch(r"\s*(`{3,}|~{3,})([^\n]*)\n.*\n\s*\1\s*", text, re.S)
    return bool(match) and match.group(2).strip() in VERBATIM_FENCES and text.count(match.group(1)) == 2


def sha(text: str) -> str:
    """The key of an English text: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def pages(root: Path = ROOT) -> list[Path]:
    """The book's pages in ``_toc.yml`` order (notebooks and Markdown files)."""
    out = []
    for name in toc_files(root):
        for suffix in (".ipynb", ".md"):
            if (root / f"{name}{suffix}").is_file():
                out.append(root / f"{name}{suffix}")
    return out


def markdown_blocks(text: str) -> list[str]:
    """A Markdown page cut into blocks at blank lines, never inside a code fence (``` or ~~~)."""
    blocks, current, fence = [], [], None
    for line in text.split("\n"):
        stripped = line.lstrip()
        marker = re.match(r"(`{3,}|~{3,})", stripped)
        if fence is None and marker:
            fence = marker.group(1)
        elif fence is not None and stripped.startswith(fence) and stripped.strip() == fence[0] * len(stripped.strip()):
            fence = None
        if not line.strip() and fence is None:
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def alt_text(cell: dict) -> str | None:
    """A code cell's figure description (MyST-NB's ``mystnb.image.alt`` cell metadata), if any."""
    return cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt")


def units(page: Path) -> dict[str, str]:
    """The page's translatable units, ``{key: English text}``, in page order: a notebook's Markdown
    cells (by id) and its figures' alt texts (``<id>/alt``); a Markdown page's blocks (by hash)."""
    if page.suffix == ".ipynb":
        notebook = json.loads(page.read_text(encoding="utf-8"))
        out = {}
        for cell in notebook["cells"]:
            if cell["cell_type"] == "markdown":
                out[cell["id"]] = "".join(cell["source"])
            elif alt_text(cell):
                out[f"{cell['id']}/alt"] = alt_text(cell)
        return out
    return {sha(block): block for block in markdown_blocks(page.read_text(encoding="utf-8"))}


def translation_file(page: Path, lang: str, root: Path = ROOT) -> Path:
    return root / "book" / "translations" / lang / f"{page.stem}.json"


def read_translations(page: Path, lang: str, root: Path = ROOT) -> dict[str, dict]:
    path = translation_file(page, lang, root)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_translations(page: Path, lang: str, entries: dict, root: Path = ROOT) -> None:
    path = translation_file(page, lang, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def protected(text: str) -> Counter:
    """The spans of ``text`` that a translation must keep as they are, counted."""
    found = Counter()
    for pattern in PROTECTED:  # each kind taken out before the next is looked for: a role's
        found.update(map(_target_only, (m.group(0) for m in pattern.finditer(text))))  # backticks are
        text = pattern.sub(" ", text)  # not a code span's
    return found


def _target_only(span: str) -> str:
    """A cross-reference counts by its target: ``{doc}`Chapter 4 <ch04_article_code>``` and
    ``{doc}`第 4 章 <ch04_article_code>``` are the same link, its title translated."""
    match = re.fullmatch(r"\{(doc|ref|numref)\}`(?:[^`<]*<)?([^`>]+)>?`", span)
    return f"{{{match.group(1)}}}`<{match.group(2).strip()}>`" if match else span


def problems(lang: str = "zh", root: Path = ROOT) -> list[str]:
    """Every unit of every page without a current, intact translation, one line each."""
    out = []
    for page in pages(root):
        entries = read_translations(page, lang, root)
        name = page.relative_to(root).as_posix()
        for key, english in units(page).items():
            entry = entries.get(key)
            first = english.strip().split("\n")[0][:60]
            if entry is None or not entry.get("zh", "").strip():
                out.append(f"{name} [{key}] untranslated: {first!r}")
            elif entry.get("sha") != sha(english):
                out.append(f"{name} [{key}] stale: its English text changed since it was translated: {first!r}")
            else:
                lost = protected(english) - protected(entry["zh"])
                if lost:
                    out.append(f"{name} [{key}] lost from the English text: {', '.join(sorted(lost))}")
    return out


def extract(lang: str = "zh", root: Path = ROOT) -> int:
    """Add empty entries for units without one, drop entries of units that are gone; returns how
    many units still need a translation."""
    for page in pages(root):
        old = read_translations(page, lang, root)
        current = units(page)
        carried = _carried_over(list(old), list(current))
        new = {}
        for key, english in current.items():
            empty = {"sha": sha(english), "en": english, "zh": english if verbatim(english) else ""}
            new[key] = old.get(key) or old.get(carried.get(key)) or empty
        write_translations(page, lang, new, root)
    return len(problems(lang, root))


def _carried_over(old_keys: list[str], new_keys: list[str]) -> dict[str, str]:
    """For a Markdown page, whose blocks are keyed by their text: an edited block gets a new key.
    Where the page's sequence of blocks shows one replaced by another in place, the old entry is
    carried over to the new key, so its translation stays as a draft, marked stale (its ``sha``
    is the old text's) until it is revised and accepted."""
    import difflib

    pairs = {}
    matcher = difflib.SequenceMatcher(a=old_keys, b=new_keys, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "replace":
            pairs.update(zip(new_keys[j1:j2], old_keys[i1:i2], strict=False))
    return pairs


def accept(page_name: str, key: str, lang: str = "zh", root: Path = ROOT) -> None:
    """Mark one unit's translation as translating the English text as it is now."""
    page = next((p for p in pages(root) if page_name in (p.name, p.stem, p.relative_to(root).as_posix())), None)
    if page is None:
        raise SystemExit(f"no page {page_name!r} in _toc.yml")
    english = units(page).get(key)
    entries = read_translations(page, lang, root)
    if english is None or key not in entries:
        raise SystemExit(f"{page.name} has no unit {key!r} with a translation")
    entries[key].update(sha=sha(english), en=english)
    write_translations(page, lang, entries, root)


def translated_page(page: Path, lang: str, root: Path = ROOT) -> str:
    """The page's text with every unit replaced by its translation (an untranslated or stale unit
    stays English)."""
    entries = read_translations(page, lang, root)

    def swap(key: str, english: str) -> str:
        entry = entries.get(key)
        return entry["zh"] if entry and entry.get("zh") and entry.get("sha") == sha(english) else english

    if page.suffix == ".ipynb":
        notebook = json.loads(page.read_text(encoding="utf-8"))
        for cell in notebook["cells"]:
            if cell["cell_type"] == "markdown":
                text = swap(cell["id"], "".join(cell["source"]))
                lines = text.split("\n")
                cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
            elif alt_text(cell):
                cell["metadata"]["mystnb"]["image"]["alt"] = swap(f"{cell['id']}/alt", alt_text(cell))
        return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    return "\n\n".join(swap(sha(block), block) for block in markdown_blocks(page.read_text(encoding="utf-8"))) + "\n"


EDITION = yaml.safe_load(
    """
zh:
  title: "迁移学习，实测"
  captions:
    "Part I - Foundations": "第一部分 基础"
    "Part II - The article's code and its result": "第二部分 原文的代码与结果"
    "Part III - Beyond the article": "第三部分 原文之外"
    "Part IV - Your own data": "第四部分 你自己的数据"
    "Reference": "参考"
    "For instructors": "教师用"
  footer: |
    <p>代码：MIT。正文与图：CC BY 4.0，图中的照片除外：Tux Paint 的图章照片，GPL-2 或更高版本（Tux Paint
    项目及其贡献者）。EfficientNet-Lite0 权重：Apache-2.0。</p>
"""
)


def build(out: Path, lang: str = "zh", root: Path = ROOT) -> Path:
    """Write the translated edition's sources into ``out`` (emptied first); returns ``out``."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for page in pages(root):
        target = out / page.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(translated_page(page, lang, root), encoding="utf-8")
    for folder in ("book/generated", "book/code", "_ext"):
        if (root / folder).is_dir():
            shutil.copytree(root / folder, out / folder, ignore=shutil.ignore_patterns("__pycache__"))
    edition = EDITION[lang]
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    for part in toc.get("parts", []):
        if "caption" in part:
            part["caption"] = edition["captions"].get(part["caption"], part["caption"])
    (out / "_toc.yml").write_text(yaml.safe_dump(toc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    config = copy.deepcopy(config)
    config["title"] = edition["title"]
    config.setdefault("html", {})["extra_footer"] = edition["footer"]
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["language"] = LANGUAGES[lang]
    sphinx["tlbook_edition"] = lang
    vendored = root / ".cache" / "vendor-static"  # the local Mermaid, MathJax and widget copies
    if vendored.is_dir():
        (out / ".cache").mkdir()
        (out / ".cache" / "vendor-static").symlink_to(vendored, target_is_directory=True)
    (out / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", default="zh", choices=sorted(LANGUAGES))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("extract", help="add empty entries for new units, drop those of removed units")
    sub.add_parser("check", help="list units without a current, intact translation; exit 1 if any")
    acc = sub.add_parser("accept", help="mark a revised translation as current")
    acc.add_argument("page")
    acc.add_argument("key")
    bld = sub.add_parser("build", help="write the translated edition's sources")
    bld.add_argument("--out", type=Path, default=ROOT / "_build" / "zh-src")
    args = parser.parse_args(argv)
    if args.command == "extract":
        left = extract(args.lang)
        print(f"{left} units need a translation (tools/translations.py check lists them)")
    elif args.command == "check":
        found = problems(args.lang)
        print("\n".join(found) or "every unit has a current translation")
        return 1 if found else 0
    elif args.command == "accept":
        accept(args.page, args.key, args.lang)
    elif args.command == "build":
        print(build(args.out, args.lang))
    return 0


if __name__ == "__main__":
    sys.exit(main())
