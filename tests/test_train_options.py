"""The backbone's learning-rate fraction and ``--preset``: what they set, exactly."""

from __future__ import annotations

import pytest
import torch
from helpers import make_episode, make_learner

from litekit import Lite, meta_train_step
from litekit.learners.build import optimizer_from_name, parameter_groups
from litekit.train._cli_options import parse_options
from litekit.train.presets import PRESETS


def test_parameter_groups_split_the_backbone_from_the_rest():
    learner = make_learner("simple_cnaps")
    groups = parameter_groups(learner, 1e-3, 0.1)
    assert [g["name"] for g in groups] == ["backbone", "head"]
    assert groups[0]["lr"] == pytest.approx(1e-4) and groups[1]["lr"] == 1e-3
    backbone = {id(p) for p in learner.backbone.parameters()}
    assert {id(p) for p in groups[0]["params"]} == backbone
    everything = [id(p) for g in groups for p in g["params"]]
    assert sorted(everything) == sorted(id(p) for p in learner.parameters())
    assert [g["name"] for g in parameter_groups(make_learner("protonets"), 1e-3, 0.1)] == [
        "backbone"
    ]  # ProtoNets has nothing but its backbone


@pytest.mark.parametrize("kind", ["protonets", "simple_cnaps"])
def test_the_backbone_moves_by_the_fraction_of_the_step(kind):
    """Plain SGD: the same gradients, so each backbone weight moves scale times as far, and
    every other weight as far, as with one learning rate."""
    episode = make_episode(n_support=6, way=3, n_query=4)
    moved = {}
    for scale in (1.0, 0.1):
        torch.manual_seed(0)
        learner = make_learner(kind)
        before = {n: p.detach().clone() for n, p in learner.named_parameters()}
        optimizer = optimizer_from_name("sgd", learner, 0.5, backbone_lr_scale=scale)
        meta_train_step(learner, [episode], optimizer, lite=Lite(3, generator=torch.Generator()))
        moved[scale] = {n: p.detach() - before[n] for n, p in learner.named_parameters()}
    for name, step in moved[1.0].items():
        expected = 0.1 * step if name.startswith("backbone.") else step
        torch.testing.assert_close(moved[0.1][name], expected, rtol=1e-5, atol=1e-7)
    assert any(step.abs().sum() > 0 for step in moved[1.0].values())


def test_a_scale_of_one_keeps_one_group():
    optimizer = optimizer_from_name("adam", make_learner("simple_cnaps"), 1e-3)
    assert len(optimizer.param_groups) == 1  # as before: earlier optimiser states still load


def test_the_preset_fills_what_the_command_line_does_not_give():
    args = parse_options(["--preset", "orbit-neurips21", "--learner", "simple_cnaps",
                          "--lr=3e-4", "--image-s", "112"])  # fmt: skip
    assert (args.backbone, args.image_size, args.lr) == ("efficientnet_b0", 112, 3e-4)
    assert (args.h, args.query_batch, args.tasks_per_step, args.backbone_lr_scale) == (
        8, 8, 16, 0.1,
    )  # fmt: skip
    report = args.preset_report
    assert report["kept"] == {"lr": 3e-4, "image_size": 112}
    assert report["set"]["backbone"] == "efficientnet_b0" and "lr" not in report["set"]
    protonets = parse_options(["--preset", "orbit-neurips21"])
    assert (protonets.h, protonets.query_batch) == (16, 8)
    assert PRESETS["orbit-neurips21"].values("cnaps")["h"] == 8
    plain = parse_options([])
    assert plain.preset_report is None and (plain.lr, plain.backbone) == (1e-3, "conv4")
