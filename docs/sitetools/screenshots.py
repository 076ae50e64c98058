"""Screenshots of the built site, for a person to look at: landing page, maths, a tutorial,
one of its figures, its frozen panel, and an API page.

The site is served from 127.0.0.1 by Python's own HTTP server and opened in Debian's
Chromium (/usr/bin/chromium, or ``LITEKIT_CHROMIUM``) through Playwright, headless.

    python docs/sitetools/screenshots.py        # PNGs in build/docs-screenshots/
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "build" / "docs"
SHOTS = ROOT / "build" / "docs-screenshots"
CHROMIUM = os.environ.get("LITEKIT_CHROMIUM", "/usr/bin/chromium")
TUTORIAL = "tutorials/03_subset_size_vs_variance.html"
API_PAGE = "api/litekit.html"
MATHJAX_DONE = "() => window.MathJax?.startup?.promise?.then(() => true)"


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without logging every request to stderr."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    if not (folder / "index.html").is_file():
        raise FileNotFoundError(f"{folder}/index.html: build the site first (make docs)")
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def open_page(page, url: str) -> None:
    """Go to ``url`` and wait until its maths is typeset and its plotly figures are drawn."""
    page.goto(url, wait_until="load")
    if page.evaluate("() => Boolean(window.MathJax?.startup?.promise)"):
        page.evaluate(MATHJAX_DONE)
    if page.locator(".plotly-graph-div").count():
        page.locator(".plotly-graph-div .main-svg").first.wait_for(timeout=30_000)


def take(page, base: str, dest: Path) -> list[Path]:
    """The screenshots, from an open Playwright ``page`` and the site's base URL."""
    dest.mkdir(parents=True, exist_ok=True)
    saved = []

    def shoot(name: str, target) -> None:
        path = dest / f"{name}.png"
        target.screenshot(path=str(path))
        saved.append(path)

    open_page(page, base + "index.html")
    shoot("landing", page)
    open_page(page, base + "maths.html")
    shoot("maths", page)
    open_page(page, base + TUTORIAL)
    shoot("tutorial", page)
    figure = page.locator(".plotly-graph-div").first
    figure.scroll_into_view_if_needed()
    shoot("tutorial-plotly", figure)
    panel = page.locator(".litekit-widget").first
    panel.scroll_into_view_if_needed()
    shoot("tutorial-panel", panel.locator("xpath=ancestor::div[contains(@class,'cell')][1]"))
    open_page(page, base + API_PAGE)
    shoot("api", page)
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=SITE)
    parser.add_argument("--out", type=Path, default=SHOTS)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "tests" / "browser"))
    from conftest import CHROMIUM_ARGS

    with serve(args.site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            for path in take(page, base, args.out):
                print(path.relative_to(ROOT))
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
