"""Feature extractors: torchvision or timm models with their classifier removed, or Conv-4.

A learner needs a module that maps a batch of images to a batch of embedding vectors, each
image on its own. Torchvision classification models do that once their last linear layer
is replaced by the identity; timm models (``"timm:NAME"``,
`litekit.learners.timm_backbones`) once built with ``num_classes=0``.
"""

from __future__ import annotations

import difflib
import math

import torch
from torch import nn

from litekit._checks import bad_argument
from litekit.learners import pretrained, timm_backbones
from litekit.learners.checks import first_conv_channels

_HEAD_ATTRIBUTES = ("fc", "classifier", "heads", "head")


def strip_classifier(model: nn.Module) -> nn.Module:
    """Replace a torchvision model's final linear layer by the identity, in place.

    Handles ``fc`` (ResNet), ``classifier`` (EfficientNet, MobileNet, ConvNeXt, VGG) and
    ``heads``/``head`` (ViT, Swin). Only the last ``nn.Linear`` goes, so layers before it
    (pooling, flattening, normalisation) stay.
    """
    for attribute in _HEAD_ATTRIBUTES:
        head = getattr(model, attribute, None)
        if isinstance(head, nn.Linear):
            setattr(model, attribute, nn.Identity())
            return model
        if isinstance(head, nn.Sequential) and len(head) and isinstance(head[-1], nn.Linear):
            head[-1] = nn.Identity()
            return model
    return model


def torchvision_backbone(
    name: str, *, weights: str | None = None, argument: str = "backbone"
) -> nn.Module:
    """A torchvision model by name (``"resnet18"``, ``"efficientnet_b0"``, ...), headless.

    ``weights=None`` gives random initialisation and needs no network. ``weights`` may name
    torchvision weights (``"DEFAULT"``, ``"IMAGENET1K_V1"``: read from torchvision's cache,
    downloaded only when missing) or a state-dict file (`litekit.learners.pretrained`).
    ``argument`` is the name an unknown model is reported under.
    """
    import torchvision

    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        close = difflib.get_close_matches(name, available, n=5, cutoff=0.5)
        raise bad_argument(
            argument,
            name,
            "not a torchvision classification model; try one of "
            f"{close or ['resnet18', 'efficientnet_b0']}, or 'conv4'.",
        )
    state = None
    if weights is not None and not pretrained.is_weights_file(weights):
        state = pretrained.load_named(pretrained.named_weights(name, weights))
    model = strip_classifier(torchvision.models.get_model(name, weights=None))
    if state is not None:
        pretrained.apply_state(model, state, weights)
    elif weights is not None:
        pretrained.apply_state(model, pretrained.load_file(weights), str(weights))
    return model


def conv4(in_channels: int = 3, width: int = 64, depth: int = 4, groups: int = 8) -> nn.Sequential:
    """The few-shot Conv-4 backbone, with GroupNorm so every image is embedded on its own.

    ``depth`` blocks of conv3x3 → GroupNorm → ReLU → max-pool(2), then global average pooling,
    giving ``width``-dimensional embeddings at any image size of at least 2**depth pixels.
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for _ in range(depth):
        layers += [
            nn.Conv2d(channels, width, 3, padding=1, bias=False),
            nn.GroupNorm(min(groups, width), width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


def _timm_group_norm_act(child: nn.Module, groups: int) -> nn.Module:
    """timm's fused BatchNormAct2d as a GroupNormAct that keeps its activation and dropout."""
    from timm.layers import GroupNormAct

    channels = child.num_features
    replacement = GroupNormAct(
        channels, math.gcd(groups, channels), eps=child.eps, affine=child.affine, apply_act=False
    )
    replacement.drop, replacement.act = child.drop, child.act
    return replacement


def group_norm(model: nn.Module, groups: int = 8) -> nn.Module:
    """Replace every ``BatchNorm2d`` of ``model`` by a ``GroupNorm``, in place.

    GroupNorm normalises each image on its own, so a randomly initialised torchvision model
    trains from scratch without batch statistics and LITE's split of the gradient stays
    exact. (In eval mode a randomly initialised BatchNorm uses its initial running statistics
    and normalises nothing: a deep model such as EfficientNet-B0 then maps every image to
    nearly zero.) Each layer gets gcd(groups, channels) groups. timm's ``BatchNormAct2d``
    (batch norm, then dropout and an activation, in one module) becomes timm's
    ``GroupNormAct`` with the same dropout and activation.
    """
    for name, child in model.named_children():
        if isinstance(child, nn.BatchNorm2d) and hasattr(child, "act") and hasattr(child, "drop"):
            setattr(model, name, _timm_group_norm_act(child, groups))
        elif isinstance(child, nn.BatchNorm2d):
            channels = child.num_features
            setattr(model, name, nn.GroupNorm(math.gcd(groups, channels), channels))
        else:
            group_norm(child, groups)
    return model


def as_backbone(backbone: nn.Module | str, weights: str | None = None) -> nn.Module:
    """Accept a module as is, or build ``"conv4"``, a torchvision model or a timm model
    (``"timm:NAME"``) from its name, with ``weights`` (a torchvision weights name for
    torchvision models, ``"DEFAULT"`` for timm's cached file, or a state-dict file)."""
    if not isinstance(backbone, nn.Module | str):
        raise bad_argument(
            "backbone", backbone, "pass an nn.Module or a model name such as 'resnet18'."
        )
    if timm_backbones.is_timm_name(backbone):
        return timm_backbones.timm_backbone(backbone, weights=weights)
    if isinstance(backbone, str) and backbone != "conv4":
        return torchvision_backbone(backbone, weights=weights)
    module = conv4() if isinstance(backbone, str) else backbone
    if weights is not None:
        if not pretrained.is_weights_file(weights):
            raise bad_argument(
                "weights",
                weights,
                "named weights come with a torchvision model name; for this backbone pass "
                "the path of a state-dict file.",
            )
        pretrained.apply_state(module, pretrained.load_file(weights), str(weights))
    return module


def probe(backbone: nn.Module, size: int, channels: int | None = None) -> torch.Tensor:
    """One no-grad, eval-mode forward of a blank (channels, size, size) image, made on the
    backbone's own device and dtype; the backbone's mode is restored afterwards.

    ``channels`` defaults to what the backbone's first convolution takes (3 without one).
    """
    if channels is None:
        found = first_conv_channels(backbone)
        channels = 3 if found is None else found[1]
    parameter = next(backbone.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            return backbone(torch.zeros(1, channels, size, size, device=device, dtype=dtype))
    finally:
        backbone.train(was_training)


def feature_dim(backbone: nn.Module, size: int = 64, channels: int = 3) -> int:
    """Length of the backbone's embedding of one (channels, size, size) image."""
    return int(probe(backbone, size, channels).flatten(1).shape[1])


def _embeds(backbone: nn.Module, size: int, channels: int) -> str | None:
    """None if ``backbone`` embeds one (channels, size, size) image; else the error it gave."""
    try:
        probe(backbone, size, channels)
    except (RuntimeError, ValueError, AssertionError, IndexError) as error:
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0][:160]}"
    return None


def smallest_image_size(
    backbone: nn.Module, above: int = 0, *, channels: int = 3, largest: int = 1024
) -> int | None:
    """The smallest square size in (``above``, ``largest``] that ``backbone`` can embed.

    Found by dry forwards of one blank image, not by formula, so it holds for any module:
    sizes are doubled until one works, then bisected (models that work at a size work at
    every larger one, as convolution-and-pooling networks do). None when no size up to
    ``largest`` works (a model that needs one exact size, such as a ViT, says which in its
    own error).
    """
    fails, works = max(above, 0), max(above, 0) + 1
    while _embeds(backbone, works, channels) is not None:
        if works >= largest:
            return None
        fails, works = works, min(2 * works, largest)
    while works - fails > 1:
        middle = (works + fails) // 2
        if _embeds(backbone, middle, channels) is None:
            works = middle
        else:
            fails = middle
    return works


def check_image_size(
    backbone: nn.Module,
    image_size: int,
    *,
    name: str = "image_size",
    backbone_name: str | None = None,
    channels: int = 3,
) -> None:
    """Raise a ValueError naming the smallest usable size if ``backbone`` cannot embed
    (channels, image_size, image_size) images; one dry forward when it can."""
    error = _embeds(backbone, image_size, channels)
    if error is None:
        return
    label = backbone_name or type(backbone).__name__
    smallest = smallest_image_size(backbone, image_size, channels=channels)
    if smallest is None:
        fix = f"{label} cannot embed {image_size}x{image_size} images ({error}), nor any size up "
        fix += "to 1024; pass the size this model was built for."
    else:
        fix = f"{label} cannot embed {image_size}x{image_size} images ({error}); its smallest "
        fix += f"size is {smallest} px: pass {name} >= {smallest}."
    raise bad_argument(name, image_size, fix)
