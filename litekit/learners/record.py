"""What a checkpoint must say to rebuild its model alone: the model record.

``python -m litekit.train`` stores, in its checkpoints' metadata, the options it ran with
(``"options"``) and the model record (``"model"``): learner, backbone (with Conv-4's
width and the normalisation layers), image size, the input normalisation the images got,
precision and memory layout. `python -m litekit.evaluate` rebuilds the learner from that
record and the checkpoint's weights, with nothing else from the command line.

Checkpoints written before the record existed hold the options only; `model_record`
derives the record from them with the defaults those runs had (no pretrained weights,
hence no normalisation; fp32; the standard memory layout). A checkpoint made by
``fit(...)`` in Python has neither: its model is whatever the script built, so it cannot
be rebuilt from the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from litekit._checks import bad_argument
from litekit.learners.base import Learner
from litekit.learners.build import backbone_from_name, learner_from_name
from litekit.learners.pretrained import normalization

#: The record's entries; an evaluation refuses options that contradict them.
FIELDS = (
    "learner",
    "backbone",
    "width",
    "norm",
    "weights",
    "image_size",
    "normalization",
    "precision",
    "channels_last",
)
# What a run made before an option existed was made with.
_DEFAULTS = {"weights": None, "precision": "fp32", "channels_last": False, "width": 64}


def make_record(
    *,
    learner: str,
    backbone: str,
    image_size: int,
    width: int = 64,
    norm: str = "model",
    weights: str | None = None,
    precision: str = "fp32",
    channels_last: bool = False,
    input_normalization: Any = "weights",
) -> dict[str, Any]:
    """The model record of a run (plain values, for a checkpoint's metadata). The
    normalisation is what ``weights`` imply (`litekit.learners.pretrained.normalization`),
    unless ``input_normalization`` gives the (mean, std) the images got (None: none)."""
    norm_values = input_normalization
    if isinstance(input_normalization, str) and input_normalization == "weights":
        norm_values = normalization(weights, backbone)
    return {
        "learner": learner,
        "backbone": backbone,
        "width": width,
        "norm": norm,
        "weights": weights,
        "image_size": image_size,
        "normalization": None if norm_values is None else [list(v) for v in norm_values],
        "precision": precision,
        "channels_last": channels_last,
    }


def model_record(metadata: Any, *, argument: str = "checkpoint", path: str = "") -> dict[str, Any]:
    """The model record of a checkpoint's metadata (derived from its options for
    checkpoints that predate the record); an error naming ``path`` when there is none."""
    if isinstance(metadata, Mapping) and isinstance(metadata.get("model"), Mapping):
        record = dict(metadata["model"])
        missing = [f for f in FIELDS if f not in record]
        if not missing:
            return record
    elif isinstance(metadata, Mapping) and isinstance(metadata.get("options"), Mapping):
        options = {**_DEFAULTS, **metadata["options"]}
        norm = options.get("norm") or ("model" if options["weights"] is not None else "group")
        return make_record(
            learner=options["learner"],
            backbone=options["backbone"],
            image_size=options["image_size"],
            width=options["width"],
            norm=norm,
            weights=options["weights"],
            precision=options["precision"],
            channels_last=options["channels_last"],
        )
    else:
        missing = list(FIELDS)
    raise bad_argument(
        argument,
        path,
        "this checkpoint does not record its model (made by fit() in Python, or damaged: "
        f"missing {missing}); evaluate it from Python with the learner it was trained with, "
        "or pass a checkpoint made by python -m litekit.train.",
    )


def learner_from_record(record: Mapping[str, Any]) -> Learner:
    """A learner built as the record says, with random weights (load the checkpoint's state
    into it). Pretrained weights are not loaded: the checkpoint's state replaces them."""
    backbone: nn.Module = backbone_from_name(
        record["backbone"], width=record["width"], norm=record["norm"]
    )
    return learner_from_name(record["learner"], backbone, image_size=record["image_size"])
