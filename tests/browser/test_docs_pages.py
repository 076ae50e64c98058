"""Every tutorial page, the maths page, the landing page (with its diagram) and the
classroom pages (instructor's notes, references, running online), read in Chromium at
1280 px and at 390 px.

A page fails on: a console error or a failed request (a missing favicon is both); a figure
with plotly's placeholder "new text"; a plotly subplot title or axis title drawn over
another (their bounding boxes); maths or code wider than its container without a scroll box
of its own; a figure without alt text (an image whose alt is a file name, a live figure
without a label); a figure shown twice (a picture next to its live version); a page wider
than the screen; a page title
with TeX in it; test machinery on the page (papermill's injected cell, test markers). At
1280 px a line of code at the project's 100-column limit must show without scrolling.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from test_docs import Reader, base_url, site  # noqa: F401  (fixtures shared with test_docs)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs"))
from sitetools import tutorials  # noqa: E402

WIDTHS = (1280, 390)
CLASSROOM = ["index.html", "instructor.html", "references.html", "launch.html"]
PAGES = ["maths.html", *CLASSROOM] + [f"tutorials/{e['notebook']}.html" for e in tutorials.load()]
SECONDS = 1000

# In the page: what a reader would trip over, as lists of short descriptions.
INSPECT = """() => {
  const article = document.querySelector('article.bd-article') || document.body;
  const box = article.getBoundingClientRect();
  const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const found = {newText: [], overlaps: [], unscrolled: [], noAlt: [], twice: [], longCode: []};
  for (const figure of document.querySelectorAll('.plotly-graph-div')) {
    const texts = [...figure.querySelectorAll('text')];
    if (texts.some(t => t.textContent.includes('new text'))) found.newText.push(figure.id);
    const labels = [...figure.querySelectorAll('.annotation-text, .g-xtitle text, .g-ytitle text')]
      .filter(t => t.textContent.trim())
      .map(t => [t.textContent.trim(), t.getBoundingClientRect()]);
    for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++) {
      const [a, r] = labels[i], [b, s] = labels[j];
      const apart = r.right <= s.left + 1 || s.right <= r.left + 1
        || r.bottom <= s.top + 1 || s.bottom <= r.top + 1;
      if (!apart) found.overlaps.push(`${figure.id}: "${a}" over "${b}"`);
    }
    const holder = figure.closest('.litekit-plotly');
    if (!holder || !(holder.getAttribute('aria-label') || '').trim()) found.noAlt.push(figure.id);
    const output = figure.closest('.cell_output');
    if (output && [...output.querySelectorAll('img')].some(i => !i.closest('noscript')))
      found.twice.push(figure.id);
  }
  for (const img of article.querySelectorAll('img')) {
    const alt = (img.getAttribute('alt') || '').trim();
    if (!alt || /\\.(png|svg|jpe?g)$/.test(alt) || /[0-9a-f]{20}/.test(alt))
      found.noAlt.push(img.getAttribute('src'));
  }
  for (const el of article.querySelectorAll('pre, div.math, mjx-container[display="true"]')) {
    if (el.closest('noscript') || el.closest('details:not([open])')) continue;
    const r = el.getBoundingClientRect();
    const wide = el.scrollWidth > el.clientWidth + 1 || r.right > box.right + 1;
    if (!wide) continue;
    let ok = scrolls(el) && r.right <= box.right + 1;
    for (let p = el.parentElement; !ok && p && p !== article; p = p.parentElement)
      ok = scrolls(p) && p.getBoundingClientRect().right <= box.right + 1;
    const what = `${el.tagName.toLowerCase()}: ${el.textContent.trim().slice(0, 40)}`;
    if (!ok) found.unscrolled.push(what);
  }
  for (const pre of article.querySelectorAll('div.cell_input pre')) {
    if (pre.closest('details:not([open])')) continue;
    const longest = Math.max(...pre.textContent.split('\\n').map(l => l.length));
    if (longest <= 100 && pre.scrollWidth > pre.clientWidth + 1)
      found.longCode.push(pre.textContent.trim().slice(0, 40));
  }
  const page = document.documentElement;
  found.sideways = page.scrollWidth > page.clientWidth + 1 ? [`${page.scrollWidth} px wide`] : [];
  found.title = document.title;
  found.icon = (document.querySelector('link[rel~="icon"]') || {}).href || null;
  found.text = article.innerText;
  return found;
}"""


@pytest.mark.timeout(600)
@pytest.mark.parametrize("width", WIDTHS)
def test_pages_read_cleanly_at(width: int, base_url: str, chromium_path: str):  # noqa: F811
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).parent))
    from sitetools import screenshots

    from conftest import CHROMIUM_ARGS

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            reader = Reader(page)
            failed: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
            for name in PAGES:
                reader.errors.clear()
                failed.clear()
                screenshots.open_page(page, base_url + name)
                page.wait_for_timeout(300)  # plotly lays out the titles after drawing
                found = page.evaluate(INSPECT)
                where = f"{name} at {width} px"
                problems += [f"{where}: {error}" for error in reader.errors]
                problems += [f"{where}: request failed: {url}" for url in failed]
                problems += [f"{where}: request left the site: {url}" for url in reader.refused]
                kinds = ("newText", "overlaps", "unscrolled", "noAlt", "twice", "sideways")
                for kind in kinds:
                    problems += [f"{where}: {kind}: {item}" for item in found[kind]]
                if width >= 1280:
                    problems += [f"{where}: 100 columns scroll: {c}" for c in found["longCode"]]
                if re.search(r"\\\(|\$", found["title"]):
                    problems.append(f"{where}: TeX in the page title {found['title']!r}")
                if not found["icon"] or page.request.get(found["icon"]).status != 200:
                    problems.append(f"{where}: no favicon ({found['icon']})")
                for machinery in ("NBVAL_CHECK_OUTPUT", "fmt: skip", "# Parameters\n"):
                    if machinery in found["text"]:
                        problems.append(f"{where}: test machinery on the page: {machinery!r}")
                if name.startswith("tutorials/"):
                    header = page.locator(".litekit-tutorial-header")
                    if header.count() != 1 or "minute" not in header.inner_text():
                        problems.append(f"{where}: no header with the tutorial's time")
                    box = page.locator("details.hide summary", has_text="Parameters of this run")
                    if box.count() != 1:
                        problems.append(f"{where}: no 'Parameters of this run' box")
        finally:
            browser.close()
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])


@pytest.mark.timeout(120)
def test_the_tutorials_index_lists_every_tutorial_with_its_time(base_url: str, page):  # noqa: F811
    reader = Reader(page)
    reader.open(base_url + "tutorials/index.html")
    rows = page.locator("article table tbody tr")
    entries = tutorials.load()
    assert rows.count() == len(entries)
    for row, entry in zip(rows.all(), entries, strict=True):
        assert tutorials.duration(entry["seconds"]) in row.inner_text()
        assert row.locator(f'a[href="{entry["notebook"]}.html"]').count() == 1
    reader.check_clean("the tutorials index")


@pytest.mark.timeout(120)
def test_without_javascript_each_live_figure_is_its_picture(base_url: str, chromium_path: str):  # noqa: F811
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_context(java_script_enabled=False).new_page()
            page.goto(base_url + "tutorials/03_subset_size_vs_variance.html", wait_until="load")
            holders = page.locator(".litekit-plotly")
            pictures = page.locator(".litekit-plotly img")
            assert holders.count() >= 3 and pictures.count() == holders.count()
            loaded = pictures.evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth)")
            assert all(width >= 1000 for width in loaded), f"2x pictures, loaded: {loaded}"
            assert all(alt for alt in pictures.evaluate_all("imgs => imgs.map(i => i.alt)"))
        finally:
            browser.close()
