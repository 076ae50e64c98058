"""Pretrained backbone weights: torchvision's named weights, or a state dict on disk.

The paper's learners start from ImageNet weights. Two sources, chosen by ``weights=``:

- a torchvision weights name for the model (``"DEFAULT"``, ``"IMAGENET1K_V1"``, or the full
  ``"ResNet18_Weights.IMAGENET1K_V1"``): torchvision keeps the file in its cache folder
  (``torch.hub.get_dir()/checkpoints``) and downloads it there only when it is missing. With
  no network, put the file there by hand; the error names the folder and the file;
- a local file of the model's state dict (the whole model's, or the backbone's): a
  ``.safetensors`` file, or one written by ``torch.save(model.state_dict(), path)``; loaded
  on the CPU, never downloaded.

timm models (``"timm:NAME"``) take a file too, or timm's own cached file
(`litekit.learners.timm_backbones`).

Such weights expect their inputs normalised the way they were trained: `normalization`
says how (mean and standard deviation per channel: ImageNet's for torchvision's weights, the
pretrained configuration's for a timm model), and the datasets take it
(``normalization=`` in `litekit.data`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from litekit._checks import bad_argument
from litekit._deprecated import old_names

#: File name endings taken for weights files even before the file exists (to say "no such
#: file" rather than "no such weights name").
WEIGHTS_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def is_weights_file(weights: str | os.PathLike) -> bool:
    """True when ``weights`` names a file (a path that exists, or ends as `WEIGHTS_SUFFIXES`)."""
    path = Path(weights)
    return path.exists() or path.suffix in WEIGHTS_SUFFIXES


def named_weights(model: str, weights: str, argument: str = "weights"):
    """torchvision's weights enum member for ``model`` and ``weights`` (e.g. "DEFAULT")."""
    import torchvision

    available = torchvision.models.get_model_weights(model)
    short = weights.split(".")[-1]
    if short == "DEFAULT":
        return available.DEFAULT
    if short in available.__members__:
        return available[short]
    names = ["DEFAULT", *(m for m in available.__members__ if m != "DEFAULT")]
    raise bad_argument(
        argument,
        weights,
        f"{model} has weights {names}; pass one of them, or the path of a state-dict file.",
    )


def _cache_file(weights) -> Path:
    """Where torchvision keeps (or would download) the file of named ``weights``."""
    name = os.path.basename(urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def load_named(weights, argument: str = "weights") -> dict[str, torch.Tensor]:
    """The state dict of named ``weights``, from torchvision's cache (downloaded if missing)."""
    file = _cache_file(weights)
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError, ValueError) as error:  # no network, or a bad download
        raise bad_argument(
            argument,
            str(weights),
            f"its file {file.name!r} is not in torchvision's cache folder {str(file.parent)!r} "
            f"and could not be downloaded ({type(error).__name__}); copy it there from a "
            f"machine with network access ({weights.url}), or pass a local state-dict file.",
        ) from error


def _load_safetensors(path: Path, argument: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file as load_safetensors

    try:
        return load_safetensors(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise bad_argument(
            argument,
            str(path),
            f"not a readable .safetensors file ({str(error).strip()[:120]}): the file is "
            "damaged or truncated; copy it again, or save the weights again with "
            "safetensors.torch.save_file(model.state_dict(), path).",
        ) from error


def load_file(path: str | os.PathLike, argument: str = "weights") -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a torch.save file, read on the CPU with
    tensors only (nothing in the file is run)."""
    path = Path(path)
    if not path.is_file():
        raise bad_argument(argument, str(path), "no such file; pass an existing state-dict file.")
    if path.suffix == ".safetensors":
        return _load_safetensors(path, argument)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - anything torch cannot read is not one
        raise bad_argument(
            argument, str(path), f"not a state dict torch.load can read ({error})."
        ) from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise bad_argument(
            argument, str(path), "pass a file written by torch.save(model.state_dict(), path)."
        )
    return state


def _statistics_without_batch_norm(backbone: nn.Module, state: dict[str, torch.Tensor]) -> list:
    """Layers of ``backbone`` that ``state`` gives BatchNorm running statistics but that are
    not BatchNorm here (a BatchNorm model's weights offered to its GroupNorm variant)."""
    modules = dict(backbone.named_modules())
    layers = {k.rsplit(".", 1)[0] for k in state if k.endswith("running_mean")}
    return sorted(
        layer
        for layer in layers
        if layer in modules and not isinstance(modules[layer], nn.modules.batchnorm._BatchNorm)
    )


def _key_report(missing: list[str], wrong: list[str], unexpected: list[str]) -> str:
    """What differs between a backbone's keys and a file's: the first of each kind."""
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing, the first {missing[0]!r}; missing {missing[:3]}")
    if wrong:
        parts.append(f"{len(wrong)} with other shapes, the first {wrong[0]!r}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected, the first {unexpected[0]!r}")
    else:
        parts.append("no unexpected key")
    return "; ".join(parts)


def apply_state(
    backbone: nn.Module, state: dict[str, torch.Tensor], source: str, argument: str = "weights"
) -> None:
    """Load ``state`` into ``backbone``: every backbone tensor must be there with its shape;
    a classifier the backbone no longer has (``fc.*``, ``classifier.*``) may be extra.

    Weights with BatchNorm statistics for a layer that is another normalisation here (say
    GroupNorm, put in place of BatchNorm) are refused: their scale and shift were learnt
    for normalised batch statistics, so they would load but not mean the same."""
    own = backbone.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or wrong:
        unexpected = [k for k in state if k not in own]
        raise bad_argument(
            argument,
            source,
            f"these weights do not fit the backbone ({_key_report(missing, wrong, unexpected)})"
            "; pass weights saved from the same architecture (a prefix such as 'module.' or "
            "'backbone.' on every key means they were saved from a wrapper: strip it).",
        )
    renormalised = _statistics_without_batch_norm(backbone, state)
    if renormalised:
        raise bad_argument(
            argument,
            source,
            f"these weights hold BatchNorm statistics for {renormalised[:3]}, which are not "
            "BatchNorm in this backbone; keep the model's own normalisation (norm 'model'), "
            "or pass weights saved from this backbone.",
        )
    backbone.load_state_dict({k: state[k] for k in own})


def normalization(
    weights: str | os.PathLike | None, backbone: str | None = None
) -> tuple[Sequence[float], Sequence[float]] | None:
    """The input normalisation ``weights`` expect, as (mean, std) per channel.

    None without weights (random initialisation normalises nothing). For a timm backbone
    (``backbone="timm:NAME"``) the mean and standard deviation of its pretrained
    configuration (the tag in the name, or timm's default tag): they differ between tags.
    Otherwise ImageNet's, which every torchvision classification weight expects (a
    state-dict file is taken to come from one of them).
    """
    if weights is None:
        return None
    # Imported here, not at the top: litekit.data imports the ORBIT sampler, which imports
    # litekit.episodes, which imports this package's task checks: an import cycle.
    from litekit.data.normalization import IMAGENET_NORMALIZATION
    from litekit.learners import timm_backbones

    if timm_backbones.is_timm_name(backbone):
        return timm_backbones.normalization(backbone)
    return IMAGENET_NORMALIZATION


__getattr__ = old_names(__name__, {"cache_file": ("it was only used here", _cache_file)})
