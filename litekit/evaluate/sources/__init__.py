"""Where ``python -m litekit.evaluate`` gets its tasks: one module per source.

Each source is a subcommand: ``folders`` (episodes from class-per-folder images),
``orbit`` (ORBIT's test protocols), ``metadataset`` (Meta-Dataset's test tasks per source)
and ``task`` (one large VTAB-style task), as in ``python -m litekit.evaluate orbit ...``.
A source module defines:

- ``HELP``: one line for ``--help``;
- ``add_options(group)``: its options, each value checked by its argparse ``type``
  (errors read ``--option=value: fix``);
- ``prepare(args, model) -> prepared``: reads and checks the data, with the image size and
  normalisation of the checkpoint's model (``model.record``, ``model.normalization``;
  `litekit.evaluate.model.Model`). Every error names the option, folder or file and the
  fix. Nothing is scored yet; the learner is not built yet;
- ``score(prepared, learner, run) -> Scored``: scores the learner (`Run` says how) and
  returns the aggregates with their intervals, the table's rows, a summary and the
  records (named lists, written at the top level of the JSON).

To add a source: write ``litekit/evaluate/sources/<name>.py`` with those four names and
add ``"<name>"`` to `SOURCES`. The command line, the checks of the checkpoint and of
``--out``, the table and the JSON document are shared; tests of a source can call
``litekit.evaluate.cli.main(["<name>", ...])``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import torch

from litekit.orbit.personalise import Compute

#: The sources, in the order ``--help`` lists them.
SOURCES = ("folders", "orbit", "metadataset", "task")


def load(name: str) -> Any:
    """The module of source ``name`` (one of `SOURCES`)."""
    return importlib.import_module(f"litekit.evaluate.sources.{name}")


@dataclass(frozen=True)
class Run:
    """How to score: the device, the no-grad passes' chunk size, precision and memory
    layout (from the checkpoint), the seed of the tasks, loader workers, a progress bar."""

    device: torch.device
    compute: Compute
    seed: int = 0
    workers: int = 0
    progress: bool = False


@dataclass
class Scored:
    """What a source found: ``aggregates`` (means with 95% intervals, by name), ``rows``
    (the printed table), ``summary`` (counts and notes) and ``records`` (JSON lists by
    name, e.g. ``{"tasks": [...]}``)."""

    aggregates: dict[str, Any]
    rows: list[dict[str, str]]
    summary: dict[str, Any] = field(default_factory=dict)
    records: dict[str, list] = field(default_factory=dict)
