"""Learners, backbones and optimisers from their names: the one place they are built.

The command line (`python -m litekit.train`), the measurements (`litekit.measure`), the
diagnostics' small task (`litekit.diagnostics.demo_task`), the notebooks and the benchmarks
take names (and a few sizes) and build what they mean here, so that a measured step, a
diagnosed learner and a trained run are the same model. Weights are random (nothing is
downloaded): seed torch's global generator first for repeatable ones. Construction draws
the weights in a fixed order (backbone, set encoder, FiLM generator, classifier).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import lru_cache

import torch
from torch import nn

from litekit._checks import bad_argument, check_choice, check_int
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
    """Return ``name`` if it is ``"conv4"`` or a torchvision classification model.

    Checks the name alone (nothing is built), so callers can refuse a misspelt backbone
    before any work; ``argument`` is the name the error is reported under.
    """
    if name == "conv4":
        return name
    names = _torchvision_names()
    if not isinstance(name, str) or name not in names:
        close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.5)
        raise bad_argument(
            argument,
            name,
            "not a torchvision classification model; try one of "
            f"{close or ['resnet18', 'efficientnet_b0']}, or 'conv4'.",
        )
    return name


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


def backbone_from_name(
    name: str, *, width: int = 64, depth: int = 4, norm: str = "model"
) -> nn.Module:
    """``"conv4"`` (``depth`` blocks of ``width`` channels) or a torchvision model by name.

    ``norm`` (see `NORMS`): ``"group"`` replaces a torchvision model's BatchNorm by GroupNorm
    (`litekit.learners.group_norm`): every image is then embedded on its own, in any mode, so
    a randomly initialised model trains from scratch with LITE's split exact. Conv-4 has
    GroupNorm already; ``"batch"`` swaps it for BatchNorm, whose batch statistics (in train
    mode) couple the images of a batch.
    """
    check_backbone_name(name)
    check_norm(name, norm)
    if name == "conv4":
        check_int("width", width, minimum=1)
        check_int("depth", depth, minimum=1)
        backbone = conv4(width=width, depth=depth)
        return _with_batch_norm(backbone) if norm == "batch" else backbone
    backbone = torchvision_backbone(name)
    return group_norm(backbone) if norm == "group" else backbone


def learner_from_name(
    name: str,
    backbone: nn.Module,
    *,
    image_size: int = 64,
    backbone_mode: str = "eval",
    set_dim: int = 64,
    set_width: int = 32,
    set_depth: int = 4,
    film_hidden: int = 64,
    classifier_hidden: int = 128,
) -> Learner:
    """ProtoNets, Simple CNAPs or CNAPs around ``backbone``.

    Args:
        name: one of `LEARNERS`.
        backbone: the feature extractor (e.g. from `backbone_from_name`).
        image_size: CNAPs finds its embedding size with one probe image of this size.
        backbone_mode: ``"eval"`` (fixed normalisation statistics) or ``"train"``; see
            `litekit.learners.Learner`.
        set_dim, set_width, set_depth: the set encoder's code size, hidden channels and
            blocks (Simple CNAPs and CNAPs; `litekit.learners.SetEncoder`).
        film_hidden: hidden width of the FiLM generator (Simple CNAPs and CNAPs).
        classifier_hidden: hidden width of CNAPs' classifier generator.

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
        return ProtoNets(backbone, backbone_mode=backbone_mode)
    film = dict(
        set_encoder=SetEncoder(3, dim=set_dim, width=set_width, depth=set_depth),
        set_dim=set_dim,
        film_hidden=film_hidden,
        backbone_mode=backbone_mode,
    )
    if name == "simple_cnaps":
        return SimpleCNAPs(backbone, **film)
    return CNAPs(backbone, example_size=image_size, classifier_hidden=classifier_hidden, **film)


def optimizer_from_name(
    name: str, parameters: Iterable[torch.Tensor], lr: float
) -> torch.optim.Optimizer:
    """Adam, or plain SGD, at learning rate ``lr``."""
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    return torch.optim.SGD(parameters, lr=lr)
