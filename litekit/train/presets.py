"""Named sets of training options: ``python -m litekit.train --preset NAME``.

A preset fills in options the command line does not give; an option given explicitly
always wins. The run's summary (``"preset"``) lists what the preset set and what the
command line kept, and ``"options"`` holds every resolved value.

``md-lite``: the LITE paper's Meta-Dataset settings (read from the LITE code's defaults):
EfficientNet-B0 at 224 px, LITE with h = 40 and query batches of 40, 16 tasks per update,
Adam at learning rate 1e-3; use it with ``--metadataset ROOT`` (its eight training sources
by default). The paper started the backbone from ImageNet-trained weights: add
``--weights DEFAULT`` for that.

``orbit-neurips21``: the LITE paper's ORBIT settings (read from the ORBIT benchmark's code
at the tag ``results-neurips21-paper``): EfficientNet-B0 at 224 px, 16 tasks per update,
Adam at learning rate 1e-4 with the backbone at 0.1 of it, and per learner the LITE subset
and query batch: h = 8 and query batch 8 for Simple CNAPs and CNAPs, h = 16 and query
batch 8 for ProtoNets. (ORBIT counts h and the query batch in clips of 8 frames; here they
count frames.) The paper started the backbone from ImageNet weights: add ``--weights
DEFAULT`` for that (a download into torchvision's cache, once).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """Option values by argparse destination, for every learner and per learner."""

    description: str
    settings: Mapping[str, Any]
    per_learner: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def values(self, learner: str) -> dict[str, Any]:
        """The settings for ``learner``: the common ones, then the learner's own."""
        return {**self.settings, **self.per_learner.get(learner, {})}


PRESETS: dict[str, Preset] = {
    "orbit-neurips21": Preset(
        "the LITE paper's ORBIT settings",
        {
            "backbone": "efficientnet_b0",
            "image_size": 224,
            "tasks_per_step": 16,
            "optimizer": "adam",
            "lr": 1e-4,
            "backbone_lr_scale": 0.1,
        },
        {
            "protonets": {"h": 16, "query_batch": 8},
            "simple_cnaps": {"h": 8, "query_batch": 8},
            "cnaps": {"h": 8, "query_batch": 8},
        },
    ),
    "md-lite": Preset(
        "the LITE paper's Meta-Dataset settings",
        {
            "backbone": "efficientnet_b0",
            "image_size": 224,
            "tasks_per_step": 16,
            "optimizer": "adam",
            "lr": 1e-3,
            "h": 40,
            "query_batch": 40,
        },
    ),
}


def given_options(parser: argparse.ArgumentParser, argv: Any) -> set[str]:
    """The destinations of the options ``argv`` gives: a second parse with every default
    suppressed, so abbreviations and ``--option=value`` count too. (``parser`` is spent.)"""
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def apply_preset(args: argparse.Namespace, explicit: set[str]) -> dict[str, Any] | None:
    """Fill in ``args.preset``'s settings for the options not in ``explicit`` (argparse
    destinations given on the command line). Returns what happened, for the summary:
    ``{"name", "set": {option: value}, "kept": {option: the command line's value}}``, or
    None without a preset."""
    if args.preset is None:
        return None
    preset = PRESETS[args.preset]
    applied, kept = {}, {}
    for option, value in preset.values(args.learner).items():
        if option in explicit:
            kept[option] = getattr(args, option)
        else:
            setattr(args, option, value)
            applied[option] = value
    return {"name": args.preset, "description": preset.description, "set": applied, "kept": kept}
