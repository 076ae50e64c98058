"""Learners, backbones and optimisers from their names: the one place they are built.

The command line (`python -m litekit.train`), the measurements (`litekit.measure`), the
diagnostics' small task (`litekit.diagnostics.demo_task`), the notebooks and the benchmarks
take names (and a few sizes) and build what they mean here, so that a measured step, a
diagnosed learner and a trained run are the same model. A backbone is ``"conv4"``, a
torchvision model's name, or ``"timm:NAME"`` for a timm model
(`litekit.learners.timm_backbones`). Weights are random unless ``weights=`` names
pretrained ones (a torchvision weights name, read from torchvision's cache; ``"DEFAULT"``
for timm's cached file; or a ``.safetensors`` or torch.save state-dict file;
`litekit.learners.pretrained`): seed torch's global generator
first for repeatable ones. Construction draws the weights in a fixed order (backbone, set
encoder, FiLM generator, classifier).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from litekit._checks import bad_argument, check_choice, check_int
from litekit.learners import pretrained, timm_backbones
from litekit.learners.backbones import conv4, group_norm, torchvision_backbone
from litekit.learners.base import BACKBONE_MODES, Learner
from litekit.learners.cnaps import CNAPs, SetEncoder, SimpleCNAPs
from litekit.learners.protonets import ProtoNets

LEARNERS = ("protonets", "simple_cnaps", "cnaps")
#: "model": the backbone's own normalisation (Conv-4: GroupNorm; torchvision: BatchNorm);
#: "group": GroupNorm everywhere; "batch": BatchNorm (Conv-4 only, to show batch statistics).
NORMS = ("model", "group", "batch")
OPTIMIZERS = ("adam", "sgd")


@lru_cache(maxsize=1)
def _torchvision_names() -> tuple[str, ...]:
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def check_backbone_name(name: object, *, argument: str = "backbone") -> str:
    """Return ``name`` if it is ``"conv4"``, a torchvision classification model, or
    ``"timm:NAME"`` with a timm model's name (and, optionally, its pretrained tag).

    Checks the name alone (nothing is built), so callers can refuse a misspelt backbone
    before any work; ``argument`` is the name the error is reported under.
    """
    if name == "conv4":
        return name
    if timm_backbones.is_timm_name(name):
        timm_backbones.check_timm_name(name, argument=argument)
        return name
    names = _torchvision_names()
    if not isinstance(name, str) or name not in names:
        close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.5)
        raise bad_argument(
            argument,
            name,
            "not a torchvision classification model; try one of "
            f"{close or ['resnet18', 'efficientnet_b0']}, 'conv4', or a timm model as "
            "'timm:NAME'.",
        )
    return name


def default_norm(weights: object) -> str:
    """The ``norm`` both command lines use when none is given: ``"model"`` with pretrained
    weights (they were trained with the model's own normalisation), else ``"group"`` (a
    randomly initialised BatchNorm in eval mode normalises nothing; GroupNorm normalises
    each image on its own, so the model trains from scratch with LITE's split exact)."""
    return "model" if weights is not None else "group"


def check_norm(backbone: str, norm: object, *, argument: str = "norm") -> str:
    """Return ``norm`` if it is one of `NORMS` and applies to ``backbone`` ("batch" is for
    Conv-4 only); ``argument`` is the name an error is reported under."""
    check_choice(argument, norm, NORMS)
    if norm == "batch" and backbone != "conv4":
        raise bad_argument(
            argument, norm, f"{backbone} keeps its own normalisation: pass 'model' or 'group'."
        )
    return norm


def _with_batch_norm(model: nn.Module) -> nn.Module:
    """Every GroupNorm of ``model`` replaced by a BatchNorm2d over the same channels."""
    for name, child in model.named_children():
        if isinstance(child, nn.GroupNorm):
            setattr(model, name, nn.BatchNorm2d(child.num_channels))
        else:
            _with_batch_norm(child)
    return model


def check_weights(
    backbone: str,
    weights: object,
    *,
    norm: str = "model",
    argument: str = "weights",
    norm_argument: str = "norm",
) -> str | os.PathLike | None:
    """Return ``weights`` if ``backbone`` can start from them, checked without loading.

    None (random initialisation); the path of a file that exists (what is in it is checked
    when it is loaded); a torchvision weights name of the model (``"DEFAULT"``,
    ``"IMAGENET1K_V1"``), which Conv-4 has none of; or, for a timm model, ``"DEFAULT"``,
    timm's pretrained file, which must be in its cache. Named torchvision weights were
    trained with BatchNorm, so they refuse ``norm="group"`` (reported under
    ``norm_argument``; for timm models the loading refuses BatchNorm statistics for a layer
    that is no longer BatchNorm). ``argument`` is the name the other errors are reported
    under.
    """
    if weights is None:
        return None
    if timm_backbones.is_timm_name(backbone) and isinstance(weights, str | os.PathLike):
        timm_backbones.check_timm_weights(backbone, weights, argument=argument)
        return weights
    if not isinstance(weights, str | os.PathLike) or not str(weights):
        fix = "pass a torchvision weights name such as 'DEFAULT', or a state-dict file."
        raise bad_argument(argument, weights, fix)
    if pretrained.is_weights_file(weights):
        if not Path(weights).is_file():
            raise bad_argument(
                argument, str(weights), "no such file; pass an existing state-dict file."
            )
        return weights
    if backbone == "conv4":
        raise bad_argument(
            argument,
            weights,
            "named weights come with a torchvision model name; for conv4 pass the path of a "
            "state-dict file.",
        )
    pretrained.named_weights(backbone, str(weights), argument)
    if norm == "group":
        raise bad_argument(
            norm_argument,
            norm,
            f"the pretrained weights {weights!r} were trained with BatchNorm, whose "
            "statistics GroupNorm would throw away; keep the model's own normalisation "
            "('model').",
        )
    return weights


def _load_weights(backbone: str, weights: str | os.PathLike, argument: str) -> dict:
    """The state dict of checked ``weights``: a file, or torchvision's (timm's) cached ones."""
    if timm_backbones.is_timm_name(backbone):
        file = timm_backbones.timm_weights_file(backbone, weights, argument=argument)
        return pretrained.load_file(file, argument)
    if pretrained.is_weights_file(weights):
        return pretrained.load_file(weights, argument)
    named = pretrained.named_weights(backbone, str(weights), argument)
    return pretrained.load_named(named, argument)


def backbone_from_name(
    name: str,
    *,
    width: int = 64,
    depth: int = 4,
    norm: str = "model",
    weights: str | os.PathLike | None = None,
    argument_prefix: str = "",
) -> nn.Module:
    """``"conv4"`` (``depth`` blocks of ``width`` channels), a torchvision model by name, or a
    timm model (``"timm:efficientnet_b0"``, `litekit.learners.timm_backbones`).

    ``norm`` (see `NORMS`): ``"group"`` replaces a model's BatchNorm by GroupNorm
    (`litekit.learners.group_norm`): every image is then embedded on its own, in any mode, so
    a randomly initialised model trains from scratch with LITE's split exact. Conv-4 has
    GroupNorm already; ``"batch"`` swaps it for BatchNorm, whose batch statistics (in train
    mode) couple the images of a batch.

    ``weights`` (`check_weights`): None for random initialisation, a torchvision weights
    name (from torchvision's cache folder, downloaded only when missing), ``"DEFAULT"`` for
    a timm model (timm's file, from its cache; never downloaded), or a ``.safetensors`` or
    torch.save state-dict file saved from the same backbone (after its ``norm`` swap). Their
    images expect the normalisation `litekit.learners.pretrained.normalization` gives
    (ImageNet's for torchvision; the pretrained configuration's for timm). Errors name the
    arguments with ``argument_prefix`` in front (``"--"`` for a command line's options).
    """
    named = {key: argument_prefix + key for key in ("backbone", "norm", "weights")}
    check_backbone_name(name, argument=named["backbone"])
    check_norm(name, norm, argument=named["norm"])
    check_weights(name, weights, norm=norm, argument=named["weights"], norm_argument=named["norm"])
    if name == "conv4":
        check_int(argument_prefix + "width", width, minimum=1)
        check_int(argument_prefix + "depth", depth, minimum=1)
        backbone = conv4(width=width, depth=depth)
        if norm == "batch":
            backbone = _with_batch_norm(backbone)
    else:
        if timm_backbones.is_timm_name(name):
            backbone = timm_backbones.timm_backbone(name, argument=named["backbone"])
        else:
            backbone = torchvision_backbone(name)
        if norm == "group":
            backbone = group_norm(backbone)
    if weights is not None:
        state = _load_weights(name, weights, named["weights"])
        pretrained.apply_state(backbone, state, str(weights), named["weights"])
    return backbone


def learner_from_name(
    name: str,
    backbone: nn.Module | str,
    *,
    image_size: int = 64,
    backbone_mode: str = "eval",
    set_dim: int = 64,
    set_width: int = 32,
    set_depth: int = 4,
    film_hidden: int = 64,
    classifier_hidden: int = 128,
    weights: str | os.PathLike | None = None,
) -> Learner:
    """ProtoNets, Simple CNAPs or CNAPs around ``backbone``.

    Args:
        name: one of `LEARNERS`.
        backbone: the feature extractor (e.g. from `backbone_from_name`), or its name.
        image_size: CNAPs finds its embedding size with one probe image of this size.
        backbone_mode: ``"eval"`` (fixed normalisation statistics) or ``"train"``; see
            `litekit.learners.Learner`.
        set_dim, set_width, set_depth: the set encoder's code size, hidden channels and
            blocks (Simple CNAPs and CNAPs; `litekit.learners.SetEncoder`).
        film_hidden: hidden width of the FiLM generator (Simple CNAPs and CNAPs).
        classifier_hidden: hidden width of CNAPs' classifier generator.
        weights: pretrained weights loaded into ``backbone`` by the learner (`Learner`): a
            state-dict file for a module, or a torchvision weights name when ``backbone`` is
            a model name. (`backbone_from_name` takes them too, with its ``norm``.)

    ProtoNets has no set encoder: the set, FiLM and classifier sizes do not apply to it. The
    defaults are the learners' own.
    """
    check_choice("learner", name, LEARNERS)
    check_choice("backbone_mode", backbone_mode, BACKBONE_MODES)
    sizes = dict(set_dim=set_dim, set_width=set_width, set_depth=set_depth)
    sizes.update(film_hidden=film_hidden, classifier_hidden=classifier_hidden)
    for argument, value in sizes.items():
        check_int(argument, value, minimum=1)
    if name == "protonets":
        return ProtoNets(backbone, backbone_mode=backbone_mode, weights=weights)
    film = dict(
        set_encoder=SetEncoder(3, dim=set_dim, width=set_width, depth=set_depth),
        set_dim=set_dim,
        film_hidden=film_hidden,
        backbone_mode=backbone_mode,
        weights=weights,
    )
    if name == "simple_cnaps":
        return SimpleCNAPs(backbone, **film)
    return CNAPs(backbone, example_size=image_size, classifier_hidden=classifier_hidden, **film)


def parameter_groups(learner: nn.Module, lr: float, backbone_lr_scale: float = 1.0) -> list[dict]:
    """The learner's parameters in two optimiser groups: the backbone's (``learner.backbone``)
    at ``lr · backbone_lr_scale``, and the rest (set encoder, FiLM generator, classifier
    generator) at ``lr``. Each group carries its ``name`` and its ``base_scale``; a
    learning-rate schedule that multiplies every group's rate keeps the ratio. A group
    without parameters is left out."""
    if not (isinstance(backbone_lr_scale, int | float) and 0 < backbone_lr_scale < float("inf")):
        raise bad_argument(
            "backbone_lr_scale", backbone_lr_scale, "pass a positive number, e.g. 0.1 (ORBIT's)."
        )
    backbone = getattr(learner, "backbone", None)
    if not isinstance(backbone, nn.Module):
        raise bad_argument(
            "learner",
            type(learner).__name__,
            "has no .backbone module to give its own learning rate; pass backbone_lr_scale=1.",
        )
    inside = {id(p) for p in backbone.parameters()}
    groups = [
        {"name": "backbone", "base_scale": float(backbone_lr_scale), "lr": lr * backbone_lr_scale,
         "params": [p for p in learner.parameters() if id(p) in inside]},
        {"name": "head", "base_scale": 1.0, "lr": lr,
         "params": [p for p in learner.parameters() if id(p) not in inside]},
    ]  # fmt: skip
    return [group for group in groups if group["params"]]


def optimizer_from_name(
    name: str,
    parameters: Iterable[torch.Tensor] | nn.Module,
    lr: float,
    *,
    backbone_lr_scale: float = 1.0,
) -> torch.optim.Optimizer:
    """Adam, or plain SGD, at learning rate ``lr``.

    ``parameters``: an iterable of tensors (one group), or a learner. With a learner and
    ``backbone_lr_scale`` other than 1, the backbone's weights learn at ``lr ·
    backbone_lr_scale`` and the rest at ``lr`` (`parameter_groups`; ORBIT trains its
    pretrained backbone at 0.1 of the rate). With a scale of 1 there is one group, as
    before, so optimiser states saved then still load.
    """
    check_choice("optimizer", name, OPTIMIZERS)
    if isinstance(parameters, nn.Module):
        if backbone_lr_scale == 1:
            parameters = parameters.parameters()
        else:
            parameters = parameter_groups(parameters, lr, backbone_lr_scale)
    elif backbone_lr_scale != 1:
        raise bad_argument(
            "backbone_lr_scale",
            backbone_lr_scale,
            "pass the learner itself (not its parameters) so its backbone can be found, or 1.",
        )
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    return torch.optim.SGD(parameters, lr=lr)
