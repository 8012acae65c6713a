"""The built book in a real browser (Chromium, driven by Playwright), with the outside network cut.

Runs after the book build in `make test` (marker `browser`). Without Chromium the test is skipped
with a loud reason, except under CI (CI=true), where a missing Chromium is a failure.
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import site_check

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"


@pytest.fixture(scope="module")
def chromium():
    path = site_check.find_chromium()
    if path is None:
        message = (
            "CHROMIUM IS NOT INSTALLED: the built site was NOT checked in a browser "
            "(Debian/Ubuntu: apt-get install chromium; or set TLBOOK_CHROMIUM)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    if not (HTML / "index.html").is_file():
        pytest.fail(f"no built site in {HTML}: run the book build first (make test does)")
    return path


#: The Chinese pages opened in the browser: the introduction, the chapter with the Mermaid diagram,
#: the one with formulas and a saved widget, the one with the most figures, and the glossary. The
#: Chinese edition's pages are the English ones with other text (the same code, outputs, figures
#: and scripts), so these cover what can render differently (the font above all) in half a minute
#: less than all of them, which CI's time budget needs.
CHINESE_PAGES = [
    "zh/book/intro.html",
    "zh/book/ch02_workflow.html",
    "zh/book/ch03_math.html",
    "zh/book/ch04_article_code.html",
    "zh/book/glossary.html",
]


def test_every_page_renders_with_the_network_cut(chromium):
    english = [page for page in site_check.site_pages(HTML) if not page.startswith("zh/")]
    results = site_check.check_site(HTML, chromium, screenshots=SCREENSHOTS, pages=english + CHINESE_PAGES)
    assert len(english) >= 10, sorted(english)
    bad = {page: problems for page, problems in results.items() if problems}
    assert not bad, "\n".join(f"{page}:\n  " + "\n  ".join(problems) for page, problems in bad.items())
    assert len(list(SCREENSHOTS.glob("*.png"))) >= len(results)


def test_the_check_fails_when_the_mermaid_script_is_missing(chromium, tmp_path):
    site = tmp_path / "html"
    shutil.copytree(HTML, site, ignore=shutil.ignore_patterns("mathjax", "html-manager"))
    shutil.rmtree(site / "_static" / "vendor" / "mermaid")
    problems = site_check.check_site(site, chromium, pages=["book/ch02_workflow.html"], timeout_ms=3000)[
        "book/ch02_workflow.html"
    ]
    assert any("Mermaid diagrams did not become an SVG" in p for p in problems), problems
    assert any(p.startswith("HTTP 404") and "mermaid.esm.min.mjs" in p for p in problems), problems


def test_chapter_pages_have_launch_download_and_repository_buttons(chromium):
    import repository_url

    repo = repository_url.configured_url(ROOT).removeprefix("https://github.com/")  # OWNER/REPO, from _config.yml
    page = (HTML / "book" / "ch03_math.html").read_text()
    assert f"colab.research.google.com/github/{repo}/blob/main/book/ch03_math.ipynb" in page
    assert f"mybinder.org/v2/gh/{repo}/main?urlpath=tree/book/ch03_math.ipynb" in page
    assert "dropdown-download-buttons" in page and "btn-download-source-button" in page
    assert "btn-source-repository-button" in page and f"github.com/{repo}" in page


def test_both_editions_link_each_page_to_the_same_page_in_the_other(chromium):
    pages = [p.relative_to(HTML).as_posix() for p in (HTML / "book").glob("*.html")]
    assert len(pages) >= 13
    for page in pages:
        for here, there, lang in ((page, f"zh/{page}", "en"), (f"zh/{page}", page, "zh-CN")):
            text = (HTML / here).read_text(encoding="utf-8")
            assert f'<html lang="{lang}"' in text, here
            href = re.search(r'<a class="tlbook-edition" href="([^"]+)"', text).group(1)
            assert ((HTML / here).parent / href).resolve() == (HTML / there).resolve(), (here, href)


def test_the_chinese_search_index_holds_chinese_words(chromium):
    index = (HTML / "zh" / "searchindex.js").read_text(encoding="utf-8")
    terms = json.loads(index[index.index("(") + 1 : index.rindex(")")])["terms"]
    assert {"迁移", "微调", "特征"} <= set(terms), sorted(t for t in terms if not t.isascii())[:20]


def test_every_figure_of_both_editions_has_a_real_alt_text(chromium):
    figures = 0
    for page in sorted(HTML.rglob("*.html")):
        if "_static" in page.parts:
            continue
        for tag in re.findall(r"<img\b[^>]*_images/[^>]*>", page.read_text(encoding="utf-8")):  # the figures
            alt = re.search(r'\balt="([^"]*)"', tag)
            text = alt.group(1).strip() if alt else ""
            where = f"{page.relative_to(HTML)}: {tag[:120]}"
            assert len(text) >= 20 and not re.search(r"\.(png|jpe?g|svg|gif)$", text), where
            figures += 1
    assert figures >= 2 * 23  # every figure of the chapters, in both editions
