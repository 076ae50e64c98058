"""Meta-learners: each maps (support images, support labels, query images) to query logits."""

from litekit.learners.backbones import (
    check_image_size,
    conv4,
    group_norm,
    smallest_image_size,
    strip_classifier,
    torchvision_backbone,
)
from litekit.learners.base import Learner
from litekit.learners.build import backbone_from_name, learner_from_name, optimizer_from_name
from litekit.learners.cnaps import CNAPs, FilmLearner, SetEncoder, SimpleCNAPs
from litekit.learners.finetuner import FineTuner
from litekit.learners.protonets import ProtoNets

__all__ = [
    "CNAPs",
    "FilmLearner",
    "FineTuner",
    "Learner",
    "ProtoNets",
    "SetEncoder",
    "SimpleCNAPs",
    "backbone_from_name",
    "check_image_size",
    "conv4",
    "group_norm",
    "learner_from_name",
    "optimizer_from_name",
    "smallest_image_size",
    "strip_classifier",
    "torchvision_backbone",
]
