"""Shared test set-up, for tests/ and for nbval's runs of notebooks/.

- The tests use tiny models, for which one thread is fastest, and several threads per
  process on a busy CPU make OpenMP spin and slow everything down by 10x or more. Notebook
  kernels that the tests start (papermill, nbval) inherit ``OMP_NUM_THREADS=1`` unless the
  environment already sets it.
- They also inherit ``LITEKIT_HEADLESS=1``, so the notebooks call their plain functions
  instead of building widgets.
- nbval re-runs notebooks at their default parameters; those whose defaults take minutes
  opt out (`nbtools.checked_in_gate`) and the papermill gate compares their checked cells.
- ``make test`` spreads the tests over the CPU's cores (pytest-xdist, ``--dist loadgroup``):
  each test goes to whichever worker is free, except that a notebook's nbval cells share one
  kernel and a browser test module one server and browser, so each of those runs whole, in
  order, on one worker (`pytest_collection_modifyitems`).
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


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    """Keep a notebook's cells, and a browser module's tests, together on one xdist worker."""
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb" or path.parent.name == "browser":
            item.add_marker(pytest.mark.xdist_group(path.name))
