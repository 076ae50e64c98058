"""The model of an evaluation: read from the checkpoint alone, checked against the options.

`read_model` reads a checkpoint of ``python -m litekit.train`` (verified by its checksum,
`litekit.checkpoint`) and its model record (`litekit.learners.record`). The command line
may repeat a recorded setting (``--learner protonets``), which documents the run; one that
says otherwise is refused, naming the option, both values and the fix, before any data is
read. `build_learner` then builds the recorded learner and loads the weights.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from litekit import checkpoint as checkpoints
from litekit._checks import bad_argument
from litekit.data.folders import bad_path
from litekit.learners.base import Learner
from litekit.learners.record import learner_from_record, model_record

#: Options that may repeat the checkpoint's record, and the record's entry each checks.
CHECKED_OPTIONS = {
    "learner": "learner",
    "backbone": "backbone",
    "width": "width",
    "norm": "norm",
    "image_size": "image_size",
    "precision": "precision",
}


@dataclass
class Model:
    """A checkpoint's path, model record, weights and the step it was saved after."""

    path: Path
    record: dict[str, Any]
    state: dict[str, torch.Tensor]
    step: int
    metadata: dict

    @property
    def normalization(self):
        """The images' (mean, std) per channel, as in training; None for none."""
        value = self.record["normalization"]
        return None if value is None else (tuple(value[0]), tuple(value[1]))


def read_model(path: str) -> Model:
    """Read and verify the checkpoint at ``path``; its model record must be there."""
    try:
        saved = checkpoints.read(path)
    except checkpoints.CheckpointError as error:
        raise bad_path("--checkpoint", path, error.fix) from None
    except ValueError as error:  # a folder, a missing file
        fix = str(error).split(": ", 1)[-1]
        raise bad_path("--checkpoint", path, fix) from None
    metadata = saved.get("metadata") if isinstance(saved.get("metadata"), dict) else {}
    record = model_record(metadata, argument="--checkpoint", path=str(path))
    return Model(Path(path), record, saved["learner"], int(saved["step"]), metadata)


def check_options(args: argparse.Namespace, model: Model) -> None:
    """Options given on the command line agree with the checkpoint's record."""
    for option, entry in CHECKED_OPTIONS.items():
        given = getattr(args, option, None)
        if given is None:
            continue
        recorded = model.record[entry]
        if given != recorded:
            flag = "--" + option.replace("_", "-")
            raise bad_argument(
                flag,
                given,
                f"the checkpoint {str(model.path)!r} holds a model with {flag} {recorded!r}; "
                f"leave {flag} out (the checkpoint says it), or pass the checkpoint of a "
                f"{given!r} model.",
            )


def build_learner(model: Model, device: torch.device) -> Learner:
    """The recorded learner with the checkpoint's weights, on ``device``, in eval mode."""
    torch.manual_seed(0)  # the weights are replaced; this only keeps construction quiet
    learner = learner_from_record(model.record)
    try:
        learner.load_state_dict(model.state)
    except RuntimeError as error:
        raise bad_path(
            "--checkpoint",
            model.path,
            f"its weights do not fit the model it records ({error}); the file and its record "
            "disagree: pass a checkpoint made by python -m litekit.train.",
        ) from None
    return learner.to(device).eval()
