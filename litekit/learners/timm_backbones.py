"""Backbones from timm (PyPI ``timm``), named ``"timm:MODEL"`` (``"timm:efficientnet_b0"``).

timm holds most of the image backbones researchers start from (EfficientNets, ConvNeXt,
ViT, ...) with their pretrained weights. Here a timm model is built headless
(``num_classes=0``: it returns its pooled features, whose length is ``num_features``) and
with random weights: litekit never downloads anything. Pretrained weights come from

- a local file (``.safetensors``, or ``.pth``/``.pt``/``.bin`` written by ``torch.save``) of
  the model's state dict, read by `litekit.learners.pretrained.load_file`; or
- ``weights="DEFAULT"``: timm's own pretrained file for the model (or for the tag in its
  name, ``"timm:efficientnet_b0.ra_in1k"``), read from the cache where timm keeps it when
  it has downloaded it before (the Hugging Face hub cache, or torch hub's ``checkpoints``
  folder). A missing file is an error that says how to put it there.

Each pretrained tag says how its images were normalised (its ``pretrained_cfg``: mean and
standard deviation per channel); `normalization` reads it, so that the data are normalised
as those weights expect. Models trained at one input size (ViTs) are built with
``dynamic_img_size=True``, so they embed other image sizes with the same weights (timm
interpolates the position embeddings).

LITE's split of the gradient needs each image embedded on its own; that is checked for
timm models as for any backbone (`litekit.learners.checks.batch_coupled_modules`): timm's
``BatchNormAct2d`` is a batch norm, held in eval mode by the learners.
"""

from __future__ import annotations

import difflib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from litekit._checks import bad_argument

#: The start of a backbone name that names a timm model (``"timm:" + timm's model name``).
PREFIX = "timm:"
#: The ``weights`` value that means timm's pretrained file for the model, from its cache.
CACHED = "DEFAULT"


def is_timm_name(name: object) -> bool:
    """True when ``name`` is a string that starts with ``"timm:"``."""
    return isinstance(name, str) and name.startswith(PREFIX)


def _timm(argument: str, value: object) -> Any:
    """The timm module, or an error saying how to install it."""
    try:
        import timm
    except ImportError:
        raise bad_argument(
            argument,
            value,
            "timm is not installed; install it with pip install 'litekit[timm]' (or pip "
            "install timm), or pass a torchvision model name.",
        ) from None
    return timm


@lru_cache(maxsize=1)
def _architectures() -> tuple[str, ...]:
    import timm

    return tuple(timm.list_models())


def _close_names(name: str, count: int = 5) -> list[str]:
    """timm's architectures closest to ``name``; ties in alphabetical order."""
    scored = []
    for candidate in _architectures():
        ratio = difflib.SequenceMatcher(None, name, candidate).ratio()
        if ratio >= 0.6:
            scored.append((-ratio, candidate))
    return [candidate for _, candidate in sorted(scored)[:count]]


def check_timm_name(name: str, *, argument: str = "backbone") -> str:
    """timm's model name in ``name`` (``"timm:resnet50.a1_in1k"`` -> ``"resnet50.a1_in1k"``),
    checked without building anything: an unknown architecture gets close names, an unknown
    pretrained tag the model's tags."""
    timm = _timm(argument, name)
    model = name[len(PREFIX) :]
    architecture, _, tag = model.partition(".")
    if not timm.is_model(architecture):
        close = _close_names(architecture)
        suggestions = [PREFIX + c for c in close] or ["timm:efficientnet_b0", "timm:resnet50"]
        raise bad_argument(
            argument,
            name,
            f"not a timm model; try one of {suggestions} (timm.list_models() lists them all).",
        )
    if tag:
        tags = timm.list_pretrained(f"{architecture}.*")
        if model not in tags:
            raise bad_argument(
                argument,
                name,
                f"timm has no pretrained tag {tag!r} for {architecture}; pass one of "
                f"{[PREFIX + t for t in tags][:8]}, or {PREFIX + architecture}.",
            )
    return model


def pretrained_config(name: str, *, argument: str = "backbone") -> Any:
    """timm's ``PretrainedCfg`` of the model (and tag) ``name`` names: input size, mean and
    standard deviation, where its weights are published."""
    timm = _timm(argument, name)
    model = check_timm_name(name, argument=argument)
    config = timm.models.get_pretrained_cfg(model)
    if config is None:  # an architecture without any pretrained tag
        architecture = model.partition(".")[0]
        config = timm.models.get_pretrained_cfg(architecture, allow_unregistered=True)
    return config


def normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) per channel that the pretrained weights of ``name`` expect."""
    config = pretrained_config(name)
    return tuple(config.mean), tuple(config.std)


def cached_weights_file(name: str) -> Path | None:
    """Where timm's pretrained file for ``name`` lies in the local cache, or None when it is
    not there. Looks only: nothing is downloaded."""
    config = pretrained_config(name)
    if config.file and Path(config.file).is_file():
        return Path(config.file)
    if config.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo = config.hf_hub_id.split("@")[0]
        for filename in (config.hf_hub_filename, "model.safetensors", "pytorch_model.bin"):
            if filename:
                found = try_to_load_from_cache(repo, filename)
                if isinstance(found, str) and Path(found).is_file():
                    return Path(found)
    if config.url:
        file = (
            Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(config.url).path)
        )
        if file.is_file():
            return file
    return None


def _missing_from_cache(name: str, argument: str) -> ValueError:
    config = pretrained_config(name)
    model = name[len(PREFIX) :]
    if config.hf_hub_id:
        from huggingface_hub import constants

        where = (
            f"the Hugging Face hub cache ({constants.HF_HUB_CACHE}, repository {config.hf_hub_id})"
        )
    else:
        where = f"torch hub's folder {str(Path(torch.hub.get_dir()) / 'checkpoints')!r}"
    return bad_argument(
        argument,
        CACHED,
        f"timm's pretrained weights for {model} are not in {where}, and litekit never "
        'downloads. On a machine with network access run python -c "import timm, '
        f"safetensors.torch; m = timm.create_model('{model}', pretrained=True); "
        "safetensors.torch.save_file(m.state_dict(), 'weights.safetensors')\", copy "
        "weights.safetensors here and pass its path instead.",
    )


def timm_weights_file(name: str, weights: str | os.PathLike, *, argument: str = "weights") -> Path:
    """The file ``weights`` stands for with the timm model ``name``: the path itself, or for
    ``"DEFAULT"`` timm's cached pretrained file (an error when it is not cached)."""
    if str(weights) != CACHED:
        return Path(weights)
    found = cached_weights_file(name)
    if found is None:
        raise _missing_from_cache(name, argument)
    return found


def check_timm_weights(name: str, weights: object, *, argument: str = "weights") -> None:
    """``weights`` is ``"DEFAULT"`` (timm's cached file) or a file that exists; checked
    without reading it."""
    if str(weights) == CACHED:
        timm_weights_file(name, weights, argument=argument)
        return
    if not Path(str(weights)).is_file():
        raise bad_argument(
            argument,
            str(weights),
            f"no such file; pass a .safetensors or torch.save file of {name}'s state dict, or "
            f"{CACHED!r} for timm's own weights from its cache.",
        )


def timm_backbone(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    argument: str = "backbone",
    weights_argument: str = "weights",
) -> nn.Module:
    """The timm model ``name`` names (``"timm:efficientnet_b0"``), headless.

    ``num_classes=0`` removes the classifier: the model returns pooled features of length
    ``model.num_features``. A model trained at a fixed input size is built with
    ``dynamic_img_size=True`` when it takes it, so any image size it can tile works. It is
    built with random weights (``pretrained=False``: never a download), then ``weights`` are
    loaded when given: a state-dict file, or ``"DEFAULT"`` for timm's cached file.
    """
    timm = _timm(argument, name)
    model = check_timm_name(name, argument=argument)
    if weights is not None:
        check_timm_weights(name, weights, argument=weights_argument)
    options: dict[str, Any] = {"pretrained": False, "num_classes": 0}
    built = None
    if getattr(pretrained_config(name), "fixed_input_size", False):
        try:
            built = timm.create_model(model, **options, dynamic_img_size=True)
        except TypeError:  # a fixed-size model without that option: built as it is
            pass
    if built is None:
        built = timm.create_model(model, **options)
    if weights is not None:
        from litekit.learners import pretrained

        file = timm_weights_file(name, weights, argument=weights_argument)
        state = pretrained.load_file(file, weights_argument)
        pretrained.apply_state(built, state, str(weights), weights_argument)
    return built
