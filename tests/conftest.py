"""Shared test set-up.

- The tests use tiny models, for which one thread is fastest, and several threads per
  process on a busy CPU make OpenMP spin and slow everything down by 10x or more. Notebook
  kernels that the tests start (papermill, nbval) inherit ``OMP_NUM_THREADS=1`` unless the
  environment already sets it.
- They also inherit ``LITEKIT_HEADLESS=1``, so the notebooks call their plain functions
  instead of building widgets.
"""

from __future__ import annotations

import os

import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["LITEKIT_HEADLESS"] = "1"
