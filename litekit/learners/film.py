"""FiLM: task-conditioned feature-wise scale and shift of a backbone's channels.

CNAPs and Simple CNAPs adapt a shared backbone to each task by scaling and shifting the
channels after chosen layers: y ← γ ⊙ y + β, with (γ, β) generated from a set encoding z of
the support set. Here the modulation is applied by forward hooks that exist only for the
duration of one call (`film_applied`), so the backbone module itself holds no per-task
state and any torchvision model or user module can be adapted without editing it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from litekit._checks import bad_argument

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)


def _channel_dim(module: nn.Module) -> int:
    """The dimension of ``module``'s output that holds its channels: 1 (B, C, ...), except
    for a layer norm over the last dimension (a transformer's tokens, (B, T, C)); layer
    norms written for (B, C, H, W) maps (timm's and torchvision's ``LayerNorm2d``) use 1."""
    if isinstance(module, nn.LayerNorm) and not type(module).__name__.endswith("2d"):
        return -1
    return 1


def _channels(module: nn.Module) -> int:
    if isinstance(module, nn.LayerNorm):
        return int(module.normalized_shape[-1])
    for attribute in ("num_features", "num_channels", "out_channels"):
        if hasattr(module, attribute):
            return int(getattr(module, attribute))
    raise bad_argument(
        "film_layers", type(module).__name__, "FiLM needs layers with a channel count."
    )


def find_film_layers(backbone: nn.Module, names: Sequence[str] | None = None) -> list[str]:
    """Names of the modules whose outputs FiLM modulates.

    By default every normalisation layer (BatchNorm, GroupNorm, InstanceNorm, LayerNorm), as
    CNAPs places FiLM after each one; a backbone without any falls back to its Conv2d
    layers. In a transformer (a ViT) the layer norms scale and shift each token's channels.
    timm's fused ``BatchNormAct2d`` applies its activation inside the layer, so there FiLM
    modulates the activated output.
    """
    modules = dict(backbone.named_modules())
    if names is not None:
        unknown = [n for n in names if n not in modules]
        if unknown:
            raise bad_argument("film_layers", unknown, "pass names from backbone.named_modules().")
        return list(names)
    found = [n for n, m in modules.items() if isinstance(m, _NORM_TYPES)]
    if not found:
        found = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
    if not found:
        raise bad_argument(
            "backbone",
            type(backbone).__name__,
            "found no normalisation or Conv2d layer to modulate; pass film_layers=[...] names.",
        )
    return found


class FilmGenerator(nn.Module):
    """Maps a set encoding z to (γ, β) for each FiLM layer.

    A shared trunk (Linear → ReLU) feeds one linear head per layer; γ = 1 + Δγ so that a
    freshly initialised generator starts close to the identity modulation.
    """

    def __init__(
        self, set_dim: int, channels: Sequence[int], hidden: int = 64, init_scale: float = 0.1
    ) -> None:
        super().__init__()
        self.channels = list(channels)
        self.trunk = nn.Sequential(nn.Linear(set_dim, hidden), nn.ReLU())
        self.heads = nn.ModuleList(nn.Linear(hidden, 2 * c) for c in self.channels)
        for head in self.heads:
            nn.init.normal_(head.weight, std=init_scale / hidden**0.5)
            nn.init.zeros_(head.bias)

    def forward(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        hidden = self.trunk(z)
        params = []
        for head, c in zip(self.heads, self.channels, strict=True):
            out = head(hidden)
            params.append((1.0 + out[:c], out[c:]))
        return params


@contextmanager
def film_applied(
    backbone: nn.Module,
    layer_names: Sequence[str],
    params: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> Iterator[None]:
    """Within the block, layer ``layer_names[i]`` outputs ``γ_i ⊙ y + β_i`` over its channel
    dimension (1, or the last for a transformer's layer norm)."""
    modules = dict(backbone.named_modules())
    handles = []

    def make_hook(gamma: torch.Tensor, beta: torch.Tensor, dim: int):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            if dim == 1:
                shape = (1, -1) + (1,) * (output.ndim - 2)
            else:
                shape = (1,) * (output.ndim - 1) + (-1,)
            return output * gamma.view(shape) + beta.view(shape)

        return hook

    try:
        for name, (gamma, beta) in zip(layer_names, params, strict=True):
            hook = make_hook(gamma, beta, _channel_dim(modules[name]))
            handles.append(modules[name].register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def film_channels(backbone: nn.Module, layer_names: Sequence[str]) -> list[int]:
    """Channel count of each FiLM layer."""
    modules = dict(backbone.named_modules())
    return [_channels(modules[name]) for name in layer_names]
