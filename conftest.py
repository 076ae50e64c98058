"""Shared test set-up, for tests/ and for nbval's runs of notebooks/.

- The tests use tiny models, for which one thread is fastest, and several threads per
  process on a busy CPU make OpenMP spin and slow everything down by 10x or more. Notebook
  kernels that the tests start (papermill, nbval) inherit ``OMP_NUM_THREADS=1`` unless the
  environment already sets it.
- They also inherit ``LITEKIT_HEADLESS=1``, so the notebooks call their plain functions
  instead of building widgets.
- nbval re-runs notebooks at their default parameters; those whose defaults take minutes
  opt out (`nbtools.checked_in_gate`) and the papermill gate compares their checked cells.
- ``make test`` spreads the tests over the CPU's cores (pytest-xdist): each test goes to
  whichever worker is free, except that a notebook's nbval cells share one kernel and a
  browser test module one server and browser, so each of those runs whole, in order, on one
  worker (`pytest_xdist_make_scheduler`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["LITEKIT_HEADLESS"] = "1"


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """nbval leaves alone the notebooks whose checked cells the papermill gate compares
    (``metadata.litekit.checked_in == "gate"``, see tests/nbtools.py)."""
    if collection_path.suffix == ".ipynb" and collection_path.parent.name == "notebooks":
        metadata = json.loads(collection_path.read_text()).get("metadata", {})
        if metadata.get("litekit", {}).get("checked_in") == "gate":
            return True
    return None


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: make test runs on every core
def pytest_xdist_make_scheduler(config, log):
    """Spread single tests over the workers, but keep a notebook's nbval cells (one kernel,
    run in order) and a browser test module (one server and browser) whole on one worker."""
    from xdist.scheduler import LoadScopeScheduling

    class NotebooksWhole(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path.endswith(".ipynb") or "/browser/" in path else nodeid

    return NotebooksWhole(config, log)
