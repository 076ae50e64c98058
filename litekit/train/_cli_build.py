"""What ``python -m litekit.train`` trains with: data, task samplers, learner, optimiser.

`build` makes the `FitInputs` from checked options. The checks that need what is built run
here and name the option to change: the backbone's smallest image size (one dry forward), and
whether the folders of ``--data`` / ``--validation-data`` hold tasks of the asked shape.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from litekit.data import ImageFolderDataset, ProceduralImages
from litekit.data.folders import bad_path
from litekit.episodes import EpisodeSampler, VariableEpisodeSampler, episode_loader, labels_of
from litekit.learners.backbones import check_image_size
from litekit.learners.base import Learner
from litekit.learners.build import backbone_from_name, learner_from_name, optimizer_from_name
from litekit.learners.pretrained import normalization
from litekit.lite import Lite
from litekit.train._cli_metadataset import metadataset_data
from litekit.train._cli_orbit import orbit_data

# How many episodes the training sampler numbers. Episode k is a function of the seed and k
# alone, and step s takes the tasks after those of step s - 1, so a run of S steps of T tasks
# uses episodes 0 .. S·T - 1: 2**31 - 1 of them is more than any run needs.
TRAINING_SAMPLER_EPISODES = 2**31 - 1


@dataclass
class FitInputs:
    """What `build` makes: the learner and the other arguments of `litekit.train.fit`."""

    learner: Learner
    optimizer: torch.optim.Optimizer
    episodes: DataLoader
    validation: Any
    lite: Lite | None


def _backbone(args: argparse.Namespace) -> torch.nn.Module:
    """The backbone (pretrained with ``--weights``), with its image size checked by a dry
    forward (on the CPU)."""
    backbone = backbone_from_name(
        args.backbone, width=args.width, norm=args.norm, weights=args.weights,
        argument_prefix="--",
    )  # fmt: skip
    check_image_size(backbone, args.image_size, name="--image-size", backbone_name=args.backbone)
    return backbone


def _check_folder_tasks(
    option: str, folder: str, labels: np.ndarray, args: argparse.Namespace
) -> None:
    """The classes under ``folder`` can make the tasks the options ask for.

    The same conditions as the samplers' own checks, said in options: a task needs two
    classes, ``--way`` (or ``--min-way``) of them with enough images each.
    """
    _, sizes = np.unique(labels, return_counts=True)
    if len(sizes) < 2:
        raise bad_path(
            option,
            folder,
            "holds 1 class folder, and a task needs at least 2 classes; add class folders, or "
            f"check --class-depth ({args.class_depth}: classes are the folders that many "
            "levels down).",
        )
    if args.variable:
        usable = int((sizes >= 2).sum())
        if usable < args.min_way:
            raise bad_path(
                option,
                folder,
                f"only {usable} of its classes have the 2 images a task needs (a support and "
                f"a query image); lower --min-way ({args.min_way}) or add images.",
            )
        return
    if len(sizes) < args.way:
        raise bad_path(
            option,
            folder,
            f"holds {len(sizes)} classes, and --way is {args.way}; lower --way, or add class "
            "folders.",
        )
    need = args.shot + args.query
    small = int((sizes < need).sum())
    if small and not args.skip_small_classes:
        raise bad_path(
            option,
            folder,
            f"{small} of its {len(sizes)} classes have fewer than shot + query = {need} "
            f"images (the smallest has {int(sizes.min())}); lower --shot or --query, or pass "
            "--skip-small-classes to leave such classes out.",
        )
    if len(sizes) - small < args.way:
        raise bad_path(
            option,
            folder,
            f"only {len(sizes) - small} of its classes have shot + query = {need} images, and "
            f"--way is {args.way}; lower --way, --shot or --query, or add classes.",
        )


def _folder(option: str, folder: str, args: argparse.Namespace) -> ImageFolderDataset:
    dataset = ImageFolderDataset(
        folder, args.image_size, class_depth=args.class_depth, argument=option,
        normalization=normalization(args.weights, args.backbone),
    )  # fmt: skip
    _check_folder_tasks(option, folder, labels_of(dataset), args)
    return dataset


def _datasets(args: argparse.Namespace) -> tuple[Any, Any]:
    """Training data and held-out data (None: a folder run without --validation-data), in
    the normalisation ``--weights`` expect (none without)."""
    if args.data is None:
        embedded = {
            "num_classes": args.classes,
            "images_per_class": args.images_per_class,
            "image_size": args.image_size,
            "seed": args.seed,
            "normalization": normalization(args.weights, args.backbone),
        }
        # The held-out classes are the next codes: classes training never sees.
        return ProceduralImages(**embedded), ProceduralImages(**embedded, first_class=args.classes)
    train = _folder("--data", args.data, args)
    held_out = None
    if args.validation_data is not None:
        held_out = _folder("--validation-data", args.validation_data, args)
    return train, held_out


def _sampler(args: argparse.Namespace, data: Any, episodes: int, seed: int):
    if args.variable:
        return VariableEpisodeSampler(
            data,
            episodes,
            seed,
            min_way=args.min_way,
            max_way=args.max_way,
            max_query=args.max_query,
            max_support=args.max_support,
        )
    return EpisodeSampler(
        data,
        args.way,
        args.shot,
        args.query,
        episodes,
        seed,
        skip_small_classes=args.skip_small_classes,
    )


def build(args: argparse.Namespace, device: torch.device) -> FitInputs:
    """Data, samplers, learner and optimiser; every check that needs them runs here."""
    torch.manual_seed(args.seed)  # the same initial weights on every process
    backbone = _backbone(args)
    if args.metadataset is not None:
        md = metadataset_data(args, TRAINING_SAMPLER_EPISODES)
        train, sampler, validation, held_out = md.train, md.sampler, md.validation, None
    elif args.orbit is not None:
        orbit = orbit_data(args, TRAINING_SAMPLER_EPISODES)
        train, sampler, validation = orbit.frames, orbit.sampler, orbit.validation
        held_out = None
    else:
        train, held_out = _datasets(args)
        sampler, validation = _sampler(args, train, TRAINING_SAMPLER_EPISODES, args.seed), None
    episodes = episode_loader(
        train, sampler, num_workers=args.workers, pin_memory=device.type == "cuda"
    )
    if held_out is not None and args.validation_tasks > 0:
        validation = episode_loader(
            held_out,
            _sampler(args, held_out, args.validation_tasks, args.seed + 1),
            num_workers=args.workers,
        )
    learner = learner_from_name(args.learner, backbone, image_size=args.image_size).to(device)
    optimizer = optimizer_from_name(
        args.optimizer, learner, args.lr, backbone_lr_scale=args.backbone_lr_scale
    )
    lite = None
    if args.h is not None:
        lite = Lite(args.h, chunk_size=args.chunk_size, scaling=args.scaling)
    return FitInputs(learner, optimizer, episodes, validation, lite)
