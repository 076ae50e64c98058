"""litekit.learners.build: every learner, backbone and optimiser built from its name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from litekit.learners import CNAPs, ProtoNets, SimpleCNAPs, conv4
from litekit.learners.build import backbone_from_name, check_backbone_name, learner_from_name


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    pairs = list(zip(a.state_dict().items(), b.state_dict().items(), strict=True))
    return all(ka == kb and torch.equal(va, vb) for (ka, va), (kb, vb) in pairs)


@pytest.mark.parametrize(("name", "kind"), [("simple_cnaps", SimpleCNAPs), ("cnaps", CNAPs)])
def test_defaults_build_the_learners_own_defaults_with_the_same_weights(name, kind):
    """The command line's call: same modules, weights drawn in the same order."""
    torch.manual_seed(3)
    built = learner_from_name(name, backbone_from_name("conv4", width=8), image_size=32)
    torch.manual_seed(3)
    direct = kind(conv4(width=8), **({"example_size": 32} if kind is CNAPs else {}))
    assert type(built) is kind and same_weights(built, direct)


def test_sizes_and_backbone_mode_reach_the_learner():
    backbone = backbone_from_name("conv4", width=8, depth=3)
    sizes = dict(set_dim=6, set_width=5, set_depth=2, film_hidden=7, classifier_hidden=9)
    learner = learner_from_name("cnaps", backbone, backbone_mode="train", **sizes)
    assert learner.backbone_mode == "train"
    assert learner.set_encoder.dim == 6 and len(learner.set_encoder.net) == 2 * 2 + 2
    assert learner.set_encoder.net[0].out_channels == 5
    shapes = [p.shape for p in learner.classifier.parameters()]
    assert any(9 in shape for shape in shapes)
    assert isinstance(learner_from_name("protonets", conv4(width=4), **sizes), ProtoNets)


def test_conv4_with_batch_norm_and_depth():
    backbone = backbone_from_name("conv4", width=8, depth=2, norm="batch")
    kinds = [type(m) for m in backbone.modules()]
    assert kinds.count(nn.BatchNorm2d) == 2 and nn.GroupNorm not in kinds
    assert backbone(torch.rand(2, 3, 16, 16)).shape == (2, 8)
    assert nn.GroupNorm in [type(m) for m in backbone_from_name("conv4", norm="model").modules()]


def test_group_norm_backbone_embeds_each_image_on_its_own():
    """norm="group" swaps a torchvision model's BatchNorm for GroupNorm: per image, any mode."""
    torch.manual_seed(0)
    model = backbone_from_name("resnet18", norm="group").train()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        together, alone = model(images), model(images[:1])
    assert torch.allclose(together[:1], alone, atol=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: backbone_from_name("conv4", norm="layer"), "^norm='layer'"),
        (lambda: backbone_from_name("resnet18", norm="batch"), "^norm='batch': resnet18"),
        (lambda: backbone_from_name("conv4", depth=0), "^depth=0"),
        (lambda: backbone_from_name("resnet1"), r"^backbone='resnet1'.*resnet18"),
        (lambda: check_backbone_name(3, argument="--backbone"), "^--backbone=3"),
        (lambda: learner_from_name("maml", conv4()), "^learner='maml'"),
        (lambda: learner_from_name("cnaps", conv4(), set_dim=0), "^set_dim=0"),
        (lambda: learner_from_name("protonets", conv4(), backbone_mode="x"), "^backbone_mode="),
    ],
)
def test_bad_names_and_sizes_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
