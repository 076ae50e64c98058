"""The documentation site as a reader gets it: served from 127.0.0.1, opened in Chromium.

`make test` builds the site (fast, warnings as errors) before pytest runs; without
build/docs/ these tests skip, saying how to build it. They check that:

- every link and resource of every page resolves inside the site, anchors included, and no
  page loads anything from another host (a static check of all HTML files);
- the landing page, a tutorial and an API page load with no console error and no request
  leaving localhost (every request is routed and anything else is refused and reported);
  the tutorial shows its figures (live plotly figures drawn, each with its picture for
  readers without JavaScript, and pictures loaded), its maths typeset by MathJax, its
  frozen panel, and links from its code to the API pages (test_docs_pages.py reads every
  tutorial page and the maths page at two widths);
- screenshots of these pages land in build/docs-screenshots/ for a person to look at.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "build" / "docs"
sys.path.insert(0, str(ROOT / "docs"))
from sitetools import screenshots  # noqa: E402

TUTORIAL = screenshots.TUTORIAL
LOCAL_HOSTS = ("127.0.0.1", "localhost")
LOCAL_SCHEMES = ("file", "data", "blob", "about")
SECONDS = 1000  # Playwright timeouts are in milliseconds


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / "index.html").is_file():
        pytest.skip(
            "build/docs/ is not built: `make test` builds it first, or run "
            "`LITEKIT_DOCS_FAST=1 make docs` (quick) or `make docs`."
        )
    return SITE


@pytest.fixture(scope="module")
def base_url(site: Path):
    with screenshots.serve(site) as url:
        yield url


class Links(HTMLParser):
    """The anchors a page defines and the URLs it refers to (href and src)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif name in ("href", "src"):
                self.refs.append((tag, name, value))


def parse(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_link_and_resource_resolves_inside_the_site(site: Path):
    pages = sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)
    assert len(pages) > 10, pages
    parsed = {page: parse(page) for page in pages}
    broken, remote = [], []
    for page, links in parsed.items():
        for tag, attribute, url in links.refs:
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//"):
                if tag != "a" and parts.scheme not in LOCAL_SCHEMES:
                    remote.append(f"{page.relative_to(site)}: <{tag} {attribute}={url}>")
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(site)}: {url} (no such file)")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else parse(target).ids
                if fragment not in ids:
                    broken.append(f"{page.relative_to(site)}: {url} (no anchor #{fragment})")
    assert not remote, "pages load resources from the network:\n" + "\n".join(remote[:20])
    assert not broken, f"{len(broken)} broken links:\n" + "\n".join(broken[:40])


class Reader:
    """A Playwright page whose requests must stay on localhost and whose errors are kept."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.refused: list[str] = []
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.route("**/*", self.on_request)

    def on_console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def on_request(self, route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in LOCAL_SCHEMES or parts.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def open(self, url: str) -> None:
        screenshots.open_page(self.page, url)

    def check_clean(self, what: str) -> None:
        assert not self.refused, f"{what} asked for {self.refused}"
        assert not self.errors, f"{what}: " + "\n".join(self.errors)


@pytest.mark.timeout(180)
def test_landing_tutorial_and_api_pages_render_offline(base_url: str, page):
    reader = Reader(page)

    reader.open(base_url + "index.html")
    assert "litekit" in page.title()
    assert page.get_by_text("dataset → sampler → episode → learner → LITE → loss → step").count()
    assert page.locator("mjx-container").count() > 0, "MathJax typeset the landing page"
    for target in ("tutorials/index.html", "maths.html", "api/index.html"):
        assert page.locator(f'a[href="{target}"]').count(), f"the landing page links {target}"
    reader.check_clean("the landing page")

    reader.open(base_url + TUTORIAL)
    images = page.locator(".cell_output img")  # the figures drawn as pictures only
    assert images.count() >= 1
    widths = images.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert all(width > 0 for width in widths), f"images that did not load: {widths}"
    drawn = page.locator(".plotly-graph-div .main-svg")
    drawn.first.wait_for(timeout=30 * SECONDS)
    figures = page.locator(".plotly-graph-div")
    assert figures.count() >= 3, "the live figures"
    traces = figures.evaluate_all("divs => divs.map(d => d.data.length)")
    assert all(count >= 1 for count in traces), "every plotly figure has its data"
    fallbacks = page.locator(".litekit-plotly noscript")
    assert fallbacks.count() == figures.count(), "each live figure has its picture without JS"
    assert page.locator("mjx-container").count() > 0, "MathJax typeset the tutorial's maths"
    panel = page.locator(".litekit-widget")
    assert panel.count() == 1 and "live in JupyterLab" in panel.inner_text()
    after_panel = panel.locator("xpath=ancestor::div[contains(@class,'cell_output')][1]//img")
    assert after_panel.first.evaluate("img => img.naturalWidth") > 0, "the panel's figure"
    api_links = page.locator('a.sphinx-codeautolink-a[href*="api/litekit"]')
    assert api_links.count() > 5, "the tutorial's code links to the API pages"
    reader.check_clean("the tutorial")

    reader.open(base_url + "api/litekit.html")
    assert page.locator('dt[id="litekit.Lite"]').count() == 1
    assert page.locator('dt[id="litekit.meta_train_step"]').count() == 1
    reader.check_clean("the API page")


@pytest.mark.timeout(180)
def test_screenshots_of_the_site(base_url: str, page):
    saved = screenshots.take(page, base_url, screenshots.SHOTS)
    assert len(saved) == 6 and all(path.stat().st_size > 10_000 for path in saved)
