"""Pretrained weights: a state-dict file loads offline; a named weight that is not cached and
cannot be downloaded says where to put it."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision

from litekit import FineTuner, ProtoNets, SimpleCNAPs
from litekit.learners import pretrained, torchvision_backbone


def test_a_state_dict_file_gives_the_saved_embeddings(tmp_path):
    torch.manual_seed(0)
    source = torchvision.models.resnet18()  # a whole model's state dict, classifier included
    path = tmp_path / "resnet18.pt"
    torch.save(source.state_dict(), path)
    images = torch.randn(2, 3, 64, 64)
    source.fc = torch.nn.Identity()
    source.eval()
    with torch.no_grad():
        expected = source(images)
    for learner in (ProtoNets("resnet18", weights=str(path)), FineTuner("resnet18", weights=path)):
        learner.eval()
        with torch.no_grad():
            torch.testing.assert_close(learner.backbone(images), expected, rtol=0, atol=0)
    simple = SimpleCNAPs(torchvision_backbone("resnet18", weights=str(path)))
    with torch.no_grad():
        torch.testing.assert_close(simple.eval().embed(images), expected, rtol=0, atol=0)


def test_a_state_dict_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "conv4.pt"
    torch.save(torch.nn.Conv2d(3, 4, 3).state_dict(), path)
    with pytest.raises(ValueError, match=r"^weights=.*do not fit the backbone.*missing"):
        ProtoNets("resnet18", weights=str(path))
    with pytest.raises(ValueError, match=r"^weights=.*no such file"):
        ProtoNets("conv4", weights=str(tmp_path / "absent.pt"))


def test_a_named_weight_missing_offline_names_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    folder = str(tmp_path / "hub" / "checkpoints")
    with pytest.raises(
        ValueError, match=r"^weights='ResNet18_Weights.IMAGENET1K_V1': its file"
    ) as error:
        ProtoNets("resnet18", weights="DEFAULT")
    assert folder in str(error.value) and "resnet18-f37072fd.pth" in str(error.value)
    assert not (tmp_path / "hub").exists()  # nothing written


def test_unknown_weight_names_list_the_choices():
    with pytest.raises(ValueError, match=r"^weights='IMAGENET9K': .*'DEFAULT', 'IMAGENET1K_V1'"):
        ProtoNets("resnet18", weights="IMAGENET9K")
    with pytest.raises(ValueError, match=r"^weights='DEFAULT': named weights come with"):
        ProtoNets("conv4", weights="DEFAULT")


def test_pretrained_weights_expect_imagenet_normalisation():
    assert pretrained.normalization(None) is None
    mean, std = pretrained.normalization("DEFAULT")
    named = pretrained.named_weights("resnet18", "DEFAULT").transforms()
    assert list(mean) == list(named.mean) and list(std) == list(named.std)


def test_datasets_apply_the_normalisation_pretrained_weights_expect(tmp_path):
    from PIL import Image

    from litekit.data import IMAGENET_NORMALIZATION, ImageFolderDataset, ProceduralImages

    mean, std = (torch.tensor(v).view(-1, 1, 1) for v in IMAGENET_NORMALIZATION)
    plain = ProceduralImages(num_classes=2, images_per_class=2, image_size=32)
    normalised = ProceduralImages(
        num_classes=2, images_per_class=2, image_size=32, normalization=IMAGENET_NORMALIZATION
    )
    torch.testing.assert_close(normalised[3][0], (plain[3][0] - mean) / std)
    for c in range(2):
        (tmp_path / f"c{c}").mkdir()
        Image.new("RGB", (8, 8), (40 * c, 200, 10)).save(tmp_path / f"c{c}" / "a.png")
    raw = ImageFolderDataset(tmp_path, 8)[1][0]
    scaled = ImageFolderDataset(tmp_path, 8, normalization=IMAGENET_NORMALIZATION)[1][0]
    torch.testing.assert_close(scaled, (raw - mean) / std)
    with pytest.raises(ValueError, match=r"^normalization=.*one value per channel"):
        ProceduralImages(normalization=((0.5, 0.5), (0.1,)))
