"""timm backbones (``"timm:NAME"``): built offline, weights from .safetensors files, LITE exact.

Models are built with random weights (timm never downloads here), at tiny image sizes and in
float64 for the exact checks: LITE's expectation over every subset equals the full gradient
to rounding (relative error below 1e-8, as in test_unbiased.py), which holds only when every
image is embedded on its own.
"""

from __future__ import annotations

import pytest
import torch
from helpers import gradient, relative_error, subsets
from safetensors.torch import save_file
from torch import nn

from litekit import Episode, Lite, ProtoNets, SimpleCNAPs
from litekit.data import IMAGENET_NORMALIZATION
from litekit.learners import pretrained, timm_backbones
from litekit.learners.build import backbone_from_name, check_backbone_name, learner_from_name

pytest.importorskip("timm")

# (name, image size, norm): EfficientNet-B0 itself, a small ResNet and a small ViT. A
# randomly initialised BatchNorm model in eval mode maps every image to nearly zero (its
# running statistics normalise nothing), so EfficientNet-B0 gets GroupNorm, as a model
# trained from scratch does on the command line.
MODELS = [
    ("timm:efficientnet_b0", 16, "group"),
    ("timm:test_resnet", 16, "model"),
    ("timm:test_vit", 32, "model"),
]


def _episode(size: int, n: int = 3) -> Episode:
    g = torch.Generator().manual_seed(0)
    return Episode(
        support_images=torch.randn(n, 3, size, size, generator=g, dtype=torch.float64),
        support_labels=torch.arange(n) % 2,
        query_images=torch.randn(2, 3, size, size, generator=g, dtype=torch.float64),
        query_labels=torch.tensor([0, 1]),
        class_ids=torch.arange(2),
    )


def _learner(kind: str, name: str, norm: str) -> nn.Module:
    torch.manual_seed(0)
    backbone = backbone_from_name(name, norm=norm)
    sizes = dict(set_dim=4, set_width=4, set_depth=2, film_hidden=4)
    learner = learner_from_name(kind, backbone, image_size=16, **sizes).double()
    if kind != "protonets":  # a FiLM strong enough that the set path matters
        for head in learner.film.heads:
            nn.init.normal_(head.weight, std=0.5)
    return learner


def _exact_mean(learner: nn.Module, episode: Episode, pairs: list[dict]) -> torch.Tensor:
    total = sum(gradient(learner, episode, Lite(1, subsets=pair)) for pair in pairs)
    return total / len(pairs)


@pytest.mark.parametrize(("name", "size", "norm"), MODELS)
def test_lite_is_exact_by_enumeration_on_timm_backbones(name, size, norm):
    learner, episode = _learner("protonets", name, norm), _episode(size)
    full = gradient(learner, episode)
    assert full.norm() > 1e-3  # a backbone that embeds images, not one that maps them to 0
    pairs = [{"features": s} for s in subsets(3, 1)]
    assert relative_error(_exact_mean(learner, episode, pairs), full) < 1e-8


@pytest.mark.parametrize(
    ("name", "size"),
    [("timm:test_efficientnet", 16), ("timm:test_resnet", 16), ("timm:test_vit", 32)],
)
def test_simple_cnaps_film_is_exact_on_timm_backbones(name, size):
    """FiLM modulates timm's normalisation layers (BatchNormAct2d, a ViT's layer norms), and
    LITE stays exact with a subset for each support path (every pair enumerated)."""
    learner, episode = _learner("simple_cnaps", name, "model"), _episode(size)
    assert learner.film_layers
    modules = dict(learner.backbone.named_modules())
    if "vit" in name:
        assert all(isinstance(modules[n], nn.LayerNorm) for n in learner.film_layers)
    else:
        assert all(isinstance(modules[n], nn.BatchNorm2d) for n in learner.film_layers)
    full = gradient(learner, episode)
    pairs = [{"set": s, "features": t} for s in subsets(3, 1) for t in subsets(3, 1)]
    assert relative_error(_exact_mean(learner, episode, pairs), full) < 1e-8
    film = torch.cat([p.grad.flatten() for p in learner.film.parameters()])
    assert film.norm() > 0  # the task's FiLM parameters are trained too


def test_film_on_efficientnet_b0_from_timm_and_torchvision():
    """Simple CNAPs' FiLM works on EfficientNet-B0 from either library: one FiLM layer per
    batch norm (49), trained by a LITE step, and changing the embedding."""
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 0, 1])
    for name in ("timm:efficientnet_b0", "efficientnet_b0"):
        torch.manual_seed(0)
        learner = SimpleCNAPs(backbone_from_name(name, norm="group"))
        assert len(learner.film_layers) == 49, name
        logits = learner(images, labels, images[:2], lite=Lite(2, chunk_size=2))
        logits.sum().backward()
        assert all(
            torch.isfinite(p.grad).all() for p in learner.film.parameters() if p.grad is not None
        )
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in learner.film.parameters())


def test_the_feature_dimension_is_read_from_the_model():
    backbone = backbone_from_name("timm:test_vit")
    learner = ProtoNets(backbone)
    assert learner.embed(torch.randn(2, 3, 32, 32)).shape == (2, backbone.num_features)
    assert not any(isinstance(m, nn.Linear) and m.out_features == 1000 for m in backbone.modules())


def test_random_weights_saved_to_safetensors_load_back(tmp_path):
    torch.manual_seed(1)
    source = backbone_from_name("timm:test_resnet").eval()
    path = tmp_path / "test_resnet.safetensors"
    save_file(source.state_dict(), path)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = source(images)
    torch.manual_seed(2)  # other random weights, replaced by the file's
    loaded = backbone_from_name("timm:test_resnet", weights=str(path)).eval()
    learner = ProtoNets("timm:test_resnet", weights=str(path)).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), expected, rtol=0, atol=0)
        torch.testing.assert_close(learner.backbone(images), expected, rtol=0, atol=0)


def test_normalisation_comes_from_the_pretrained_configuration(tmp_path):
    weights = str(tmp_path / "w.safetensors")
    assert pretrained.normalization(None, "timm:test_vit") is None
    assert pretrained.normalization(weights, "timm:test_vit") == ((0.5,) * 3, (0.5,) * 3)
    assert pretrained.normalization(weights, "timm:efficientnet_b0") == IMAGENET_NORMALIZATION
    # Tags of one architecture can differ: this one was trained on images scaled to [-1, 1].
    tagged = pretrained.normalization(weights, "timm:efficientnet_b0.ra4_e3600_r224_in1k")
    assert tagged == ((0.5,) * 3, (0.5,) * 3)
    assert pretrained.normalization(weights, "resnet18") == IMAGENET_NORMALIZATION


def test_weights_default_reads_timms_cache_and_never_downloads(tmp_path, monkeypatch):
    """``weights="DEFAULT"``: the cached file when it is there; otherwise an error that says
    where it was looked for, with nothing written."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(ValueError, match=r"^weights='DEFAULT': timm's pretrained weights for "):
        backbone_from_name("timm:test_resnet", weights="DEFAULT")
    assert not (tmp_path / "hf").exists() and not (tmp_path / "hub").exists()
    # The layout the hub client writes: a snapshot folder holding the file.
    config = timm_backbones.pretrained_config("timm:test_resnet")
    repo = config.hf_hub_id.replace("/", "--")
    snapshot = tmp_path / "hf" / f"models--{repo}" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (tmp_path / "hf" / f"models--{repo}" / "refs").mkdir()
    (tmp_path / "hf" / f"models--{repo}" / "refs" / "main").write_text("0" * 40)
    torch.manual_seed(3)
    source = backbone_from_name("timm:test_resnet").eval()
    save_file(source.state_dict(), snapshot / "model.safetensors")
    assert timm_backbones.cached_weights_file("timm:test_resnet") == snapshot / "model.safetensors"
    loaded = backbone_from_name("timm:test_resnet", weights="DEFAULT").eval()
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), source(images), rtol=0, atol=0)


def test_batch_norms_stay_in_eval_mode_and_batch_coupled_layers_are_refused():
    learner = ProtoNets("timm:test_efficientnet").train()
    norms = [m for m in learner.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)  # held in eval mode while training
    coupled = norms[0]
    coupled.track_running_stats, coupled.running_mean, coupled.running_var = False, None, None
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"^lite='h with backbone\..*BatchNormAct2d"):
        learner(images, labels, images, lite=Lite(2))


def test_group_norm_keeps_timms_fused_activation():
    """timm's BatchNormAct2d (batch norm, then an activation) becomes GroupNormAct with the
    same activation, not a bare GroupNorm that would drop it."""
    from timm.layers import GroupNormAct

    backbone = backbone_from_name("timm:test_efficientnet", norm="group")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules())
    fused = [m for m in backbone.modules() if isinstance(m, GroupNormAct)]
    assert fused and any(isinstance(m.act, nn.SiLU) for m in fused)


def test_unknown_names_get_close_names():
    with pytest.raises(ValueError, match=r"^backbone='timm:efficientnet_bo': not a timm model"):
        check_backbone_name("timm:efficientnet_bo")
    with pytest.raises(ValueError, match=r"timm:efficientnet_b0"):
        check_backbone_name("timm:efficientnet_bo")
    with pytest.raises(ValueError, match=r"no pretrained tag 'nope'.*efficientnet_b0.ra_in1k"):
        check_backbone_name("timm:efficientnet_b0.nope")
    assert check_backbone_name("timm:efficientnet_b0.ra_in1k") == "timm:efficientnet_b0.ra_in1k"
