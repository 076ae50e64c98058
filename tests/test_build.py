"""litekit.learners.build: every learner, backbone and optimiser built from its name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from litekit.learners import CNAPs, ProtoNets, SimpleCNAPs, conv4
from litekit.learners.build import (
    backbone_from_name,
    check_backbone_name,
    check_weights,
    learner_from_name,
)


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


# --- pretrained weights --------------------------------------------------------------------


def saved_state(module: nn.Module, path) -> dict[str, torch.Tensor]:
    torch.save(module.state_dict(), path)
    return module.state_dict()


def test_a_weights_file_reaches_the_backbone_and_every_learner(tmp_path):
    torch.manual_seed(5)
    state = saved_state(conv4(width=4), tmp_path / "conv4.pt")
    built = backbone_from_name("conv4", width=4, weights=tmp_path / "conv4.pt")
    assert all(torch.equal(v, state[k]) for k, v in built.state_dict().items())
    for name in ("protonets", "simple_cnaps", "cnaps"):
        learner = learner_from_name(name, conv4(width=4), image_size=32,
                                    weights=str(tmp_path / "conv4.pt"))  # fmt: skip
        assert all(torch.equal(v, state[k]) for k, v in learner.backbone.state_dict().items())


def test_weights_are_loaded_after_the_norm_swap(tmp_path):
    """A Conv-4 with BatchNorm loads its own file; GroupNorm weights lack its statistics."""
    torch.manual_seed(1)
    batch = backbone_from_name("conv4", width=4, norm="batch")
    state = saved_state(batch, tmp_path / "batch.pt")
    again = backbone_from_name("conv4", width=4, norm="batch", weights=tmp_path / "batch.pt")
    assert all(torch.equal(v, state[k]) for k, v in again.state_dict().items())
    saved_state(conv4(width=4), tmp_path / "group.pt")
    with pytest.raises(ValueError, match=r"^weights=.*group.pt': these weights do not fit"):
        backbone_from_name("conv4", width=4, norm="batch", weights=tmp_path / "group.pt")
    with pytest.raises(ValueError, match=r"^weights=.*batch.pt': these weights hold BatchNorm"):
        backbone_from_name("conv4", width=4, norm="model", weights=tmp_path / "batch.pt")


def test_batch_norm_weights_are_refused_by_a_group_norm_model(tmp_path):
    import torchvision

    saved_state(torchvision.models.resnet18(), tmp_path / "resnet18.pt")
    with pytest.raises(ValueError, match=r"^--weights=.*hold BatchNorm statistics for \['bn1'"):
        backbone_from_name(
            "resnet18", norm="group", weights=tmp_path / "resnet18.pt", argument_prefix="--"
        )


def test_named_weights_are_checked_by_name_and_loaded_from_the_cache(monkeypatch):
    """No network: the cache loader is a stand-in."""
    import torchvision

    from litekit.learners import pretrained

    torch.manual_seed(2)
    state = torchvision.models.resnet18().state_dict()
    asked = []
    monkeypatch.setattr(pretrained, "load_named", lambda w, a="weights": asked.append(w) or state)
    built = backbone_from_name("resnet18", weights="IMAGENET1K_V1")
    assert asked == [pretrained.named_weights("resnet18", "DEFAULT")]
    assert torch.equal(built.conv1.weight, state["conv1.weight"])
    assert check_weights("resnet18", "DEFAULT") == "DEFAULT" and len(asked) == 1  # not loaded
    assert check_weights("conv4", None) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_weights("conv4", "DEFAULT"), "^weights='DEFAULT': named weights come"),
        (lambda: check_weights("resnet18", "IMAGENET9K"), r"^weights='IMAGENET9K': resnet18 has"),
        (lambda: check_weights("resnet18", "absent.pt"), "^weights='absent.pt': no such file"),
        (lambda: check_weights("resnet18", 3), "^weights=3: pass a torchvision weights name"),
        (lambda: check_weights("resnet18", "DEFAULT", norm="group", norm_argument="--norm"),
         "^--norm='group': the pretrained weights 'DEFAULT' were trained with BatchNorm"),
        (lambda: backbone_from_name("resnet18", norm="group", weights="DEFAULT"),
         "^norm='group': the pretrained weights"),
        (lambda: backbone_from_name("conv4", weights="DEFAULT", argument_prefix="--"),
         "^--weights='DEFAULT': named weights"),
    ],
)  # fmt: skip
def test_bad_weights_are_named_before_anything_is_loaded(call, message, monkeypatch):
    from litekit.learners import pretrained

    monkeypatch.setattr(pretrained, "load_named", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(ValueError, match=message):
        call()
