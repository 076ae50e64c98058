"""Learners, backbones and optimisers from their names: the one place scripts build them.

The command line (`python -m litekit.train`) and the memory tools (`litekit.memory`) take
names from the user; both build what the names mean here, so that a measured step and a
trained run use the same model. Weights are random (nothing is downloaded): seed torch's
global generator first for repeatable ones.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from litekit._checks import check_choice
from litekit.learners.backbones import conv4, group_norm, torchvision_backbone
from litekit.learners.base import Learner
from litekit.learners.cnaps import CNAPs, SimpleCNAPs
from litekit.learners.protonets import ProtoNets

LEARNERS = ("protonets", "simple_cnaps", "cnaps")
NORMS = ("model", "group")
OPTIMIZERS = ("adam", "sgd")


def backbone_from_name(name: str, *, width: int = 64, norm: str = "model") -> nn.Module:
    """``"conv4"`` (GroupNorm already, ``width`` channels) or a torchvision model by name.

    ``norm="group"`` replaces a torchvision model's BatchNorm by GroupNorm
    (`litekit.learners.group_norm`): every image is then embedded on its own, in any mode,
    so a randomly initialised model trains from scratch with LITE's split exact.
    """
    check_choice("norm", norm, NORMS)
    if name == "conv4":
        return conv4(width=width)
    backbone = torchvision_backbone(name)
    return group_norm(backbone) if norm == "group" else backbone


def learner_from_name(name: str, backbone: nn.Module, *, image_size: int = 64) -> Learner:
    """ProtoNets, Simple CNAPs or CNAPs around ``backbone`` with their default heads.

    CNAPs finds its embedding size with one probe image of ``image_size`` pixels.
    """
    check_choice("learner", name, LEARNERS)
    if name == "protonets":
        return ProtoNets(backbone)
    if name == "simple_cnaps":
        return SimpleCNAPs(backbone)
    return CNAPs(backbone, example_size=image_size)


def optimizer_from_name(
    name: str, parameters: Iterable[torch.Tensor], lr: float
) -> torch.optim.Optimizer:
    """Adam, or plain SGD, at learning rate ``lr``."""
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    return torch.optim.SGD(parameters, lr=lr)
