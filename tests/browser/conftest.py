"""Fixtures for driving a real JupyterLab in headless Chromium.

The server runs from this project's own environment (``sys.executable -m jupyter lab``), on
loopback, on a free port, with no token and a temporary root directory; it is stopped and
the directory removed even when a test fails. Chromium is Debian's (/usr/bin/chromium), as
Playwright's own browser download is not reachable offline; without it the tests skip with
the command that installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("LITEKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LAB_SETTINGS = {
    # Render every cell, not only those in view, so the test can find any cell's output.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # No "get notified about news?" pop-up over the notebook (and no network call).
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def write_lab_settings(folder: Path) -> None:
    """User settings for the test's JupyterLab, under its own temporary config folder."""
    for name, values in LAB_SETTINGS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url + "api/status", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"jupyter lab did not answer at {url} within {timeout:.0f} s")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go: build/browser/ in the project."""
    folder = Path(__file__).resolve().parents[2] / "build" / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
            "(or set LITEKIT_CHROMIUM to its path) to run the browser tests."
        )
    pytest.importorskip("playwright", reason="pip install playwright (in the dev extra)")
    return CHROMIUM


@pytest.fixture
def lab_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="litekit-lab-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def lab_server(chromium_path: str, lab_root: Path) -> Iterator[str]:
    """Base URL of a JupyterLab server over ``lab_root``; stopped after the test."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = (lab_root.parent / f"{lab_root.name}.log").open("w")
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={lab_root}",
        "--ServerApp.disable_check_xsrf=True",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.allow_root=True",
    ]
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(lab_root / ".jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(lab_root / ".jupyter-runtime"),
    }
    env.pop("LITEKIT_HEADLESS", None)  # the kernels behind this server are interactive
    write_lab_settings(lab_root / ".jupyter-config" / "lab" / "user-settings")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        wait_until_up(url, process)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)


@pytest.fixture
def page(chromium_path: str):
    """A fresh headless Chromium page (Playwright), closed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()
