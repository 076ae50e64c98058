"""Every bad input, one row each: the call, the error it raises, and what its message says.

A row is a `Case`: an id, the call (it gets a fresh folder, ``tmp``, made ready by the
row's ``setup``), the exception type, and phrases. The message must start with the first
phrase (the argument's name and ``=``: the house style is ``name=value: fix``) and contain
the others (the fix). A row that writes nothing (all of them, so far) is also checked to
leave ``tmp`` exactly as ``setup`` left it.

Command-line rows run ``main([...])`` in this process and expect exit status 2 with one
line on stderr, ``python -m litekit.train: error: <message>``; training is forbidden, so a
row whose check went missing fails instead of training.

To add rows: append `Case`s to the table of their part, or add a table and list it in
`CASES`. The lead's tables are marked below.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
from helpers import make_episode, make_learner, permissions_bind, tiny_backbone
from md_writer import example as md_example
from md_writer import write_source, write_task_folder
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from litekit import (
    Episode,
    EpisodeSampler,
    Lite,
    ProtoNets,
    VariableEpisodeSampler,
    episode_loader,
    evaluate,
    fit,
    lite_forward,
    meta_train_step,
)
from litekit import checkpoint as checkpoints
from litekit.data import ImageFolderDataset, ProceduralImages
from litekit.data.metadataset import MetaDatasetSource
from litekit.data.task_folder import TaskFolder, task_folders
from litekit.evaluate import cli as evaluate_cli
from litekit.evaluate.sources import folders as folders_source
from litekit.evaluate.sources import metadataset as metadataset_source
from litekit.evaluate.sources import orbit as orbit_source
from litekit.evaluate.sources import task as task_source
from litekit.learners.build import optimizer_from_name
from litekit.learners.record import learner_from_record, make_record
from litekit.md_episodes import MetaDatasetEpisodeSampler
from litekit.measure import StepConfig, measure_floor, plan_budget
from litekit.measure import cli as measure_cli
from litekit.orbit import frame_accuracy, protocol_named, write_orbit_tree
from litekit.paths import check_writable_file
from litekit.train import _cli_checks as cli_checks
from litekit.train import _cli_options as cli_options
from litekit.train import cli, loop
from litekit.train.metadataset import open_sources
from litekit.train.step import NonFiniteLossError


@dataclass(frozen=True)
class Case:
    """One bad input: ``call(tmp)`` raises ``error`` with a message that starts with
    ``phrases[0]`` and contains ``phrases[1:]``."""

    id: str
    call: Callable[[Path], Any]
    error: type[BaseException]
    phrases: tuple[str, ...]
    setup: Callable[[Path], None] | None = None
    writes_nothing: bool = True
    marks: tuple[Any, ...] = field(default=())


class CommandLineError(Exception):
    """What a command-line row raises: the message ``main`` printed after ``error: ``."""


PREFIX = "python -m litekit.train: error: "
# A tiny run on the CPU whose files would land in tmp (checked unchanged afterwards).
CLI_BASE = [
    "--backbone", "conv4", "--width", "4", "--image-size", "32", "--way", "3", "--shot", "2",
    "--query", "2", "--classes", "20", "--images-per-class", "8", "--steps", "1",
    "--tasks-per-step", "1", "--validation-tasks", "2", "--device", "cpu", "--quiet",
    "--checkpoint", "{tmp}/run.pt", "--out", "{tmp}/summary.json",
]  # fmt: skip


def command_line(*options: str) -> Callable[[Path], None]:
    """A row's call: ``main`` with the tiny run's options and then ``options`` (later ones
    win); ``{tmp}`` in an option stands for the row's folder."""

    def call(tmp: Path) -> None:
        argv = [o.replace("{tmp}", str(tmp)) for o in (*CLI_BASE, *options)]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
        lines = err.getvalue().strip().splitlines()
        assert code == 2 and out.getvalue() == "", (code, err.getvalue())
        assert len(lines) == 1 and lines[0].startswith(PREFIX), err.getvalue()
        raise CommandLineError(lines[0].removeprefix(PREFIX))

    return call


MEASURE_PREFIX = "python -m litekit.measure: error: "


def measure_command_line(*options: str) -> Callable[[Path], None]:
    """A row's call: ``python -m litekit.measure measure --device cpu`` and ``options``, in
    this process, with measuring and planning forbidden; expects exit status 2 and one line."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a measurement started: the bad input was not caught")

    def call(tmp: Path) -> None:
        argv = [o.replace("{tmp}", str(tmp)) for o in ("measure", "--device", "cpu", *options)]
        out, err = io.StringIO(), io.StringIO()
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            mock.patch.object(measure_cli, "measure_training_step", forbidden),
            mock.patch.object(measure_cli, "plan_budget", forbidden),
        ):
            try:
                code = measure_cli.main(argv)
            except SystemExit as stop:  # argparse's own errors (choices)
                code = stop.code
        lines = err.getvalue().strip().splitlines()
        assert code == 2 and out.getvalue() == "", (code, err.getvalue())
        assert len(lines) == 1 and lines[0].startswith(MEASURE_PREFIX), err.getvalue()
        raise CommandLineError(lines[0].removeprefix(MEASURE_PREFIX))

    return call


def a_state_dict(relative: str, module: nn.Module) -> Callable[[Path], None]:
    """A setup: ``module``'s state dict saved at ``tmp/<relative>``."""
    return lambda tmp: torch.save(module.state_dict(), tmp / relative)


def image_folder(classes: int = 4, images: int = 4, name: str = "images") -> Callable:
    """A setup: ``tmp/<name>/class<c>/<i>.png``, small images."""

    def setup(tmp: Path) -> None:
        for c in range(classes):
            (tmp / name / f"class{c}").mkdir(parents=True)
            for i in range(images):
                pixels = np.full((20, 20, 3), 30 * c + i, dtype=np.uint8)
                Image.fromarray(pixels).save(tmp / name / f"class{c}" / f"{i}.png")

    return setup


def then(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    """One setup that runs ``setups`` in order."""

    def setup(tmp: Path) -> None:
        for step in setups:
            step(tmp)

    return setup


def a_file(relative: str, data: bytes = b"mine") -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp / relative).write_bytes(data)

    return setup


def a_folder(relative: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / relative).mkdir(parents=True)


def read_only(relative: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / relative).chmod(0o555)


class Unlabelled(Dataset):
    """A dataset with neither ``.targets`` nor ``.labels``."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.zeros(3, 4, 4)


class Pictures(Dataset):
    """Items are PIL images (no ToTensor), labels are known."""

    targets = [0, 0, 1, 1]

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.new("RGB", (4, 4)), self.targets[index]


LABELS = np.repeat(np.arange(12), 10)  # 12 classes of 10 items
ONE_CLASS = [7] * 10

# --- samplers ----------------------------------------------------------------------------

SAMPLERS = [
    Case("fixed way 1", lambda t: EpisodeSampler(LABELS, 1, 1, 1, 1), ValueError,
         ("way=1: ", "needs at least 2")),
    Case("fixed way not an int", lambda t: EpisodeSampler(LABELS, 2.5, 1, 1, 1), ValueError,
         ("way=2.5: ", "pass an integer >= 2")),
    Case("fixed way above the classes", lambda t: EpisodeSampler(LABELS, 13, 1, 1, 1),
         ValueError, ("way=13: ", "hold only 12 classes", "use way <= 12")),
    Case("fixed shot 0", lambda t: EpisodeSampler(LABELS, 2, 0, 1, 1), ValueError,
         ("shot=0: ", "integer >= 1")),
    Case("fixed query 0", lambda t: EpisodeSampler(LABELS, 2, 1, 0, 1), ValueError,
         ("query_per_class=0: ", "integer >= 1")),
    Case("fixed episodes 0", lambda t: EpisodeSampler(LABELS, 2, 1, 1, 0), ValueError,
         ("episodes=0: ", "integer >= 1")),
    Case("fixed seed negative", lambda t: EpisodeSampler(LABELS, 2, 1, 1, 1, seed=-1),
         ValueError, ("seed=-1: ", "integer >= 0")),
    Case("fixed classes too small", lambda t: EpisodeSampler(LABELS, 2, 8, 3, 1), ValueError,
         ("shot + query_per_class=11: ", "lower shot or query_per_class",
          "skip_small_classes=True")),
    Case("fixed too few classes big enough",
         lambda t: EpisodeSampler([0] * 9 + [1] * 2 + [2] * 2, 2, 2, 2, 1,
                                  skip_small_classes=True),
         ValueError, ("way=2: ", "only 1 classes have shot + query_per_class = 4", "lower way")),
    Case("labels of one class", lambda t: EpisodeSampler(ONE_CLASS, 2, 1, 1, 1), ValueError,
         ("labels=", "needs at least 2 classes", "add items of other classes")),
    Case("labels are strings", lambda t: EpisodeSampler(["a", "b"], 2, 1, 1, 1), ValueError,
         ("labels=", "map class names to ids")),
    Case("labels are fractions", lambda t: EpisodeSampler([0.5, 1.5], 2, 1, 1, 1), ValueError,
         ("labels=", "labels must be integers")),
    Case("labels are 2-D", lambda t: EpisodeSampler([[0, 1], [1, 0]], 2, 1, 1, 1), ValueError,
         ("labels=", "flat (1-D)")),
    Case("labels are empty", lambda t: EpisodeSampler([], 2, 1, 1, 1), ValueError,
         ("labels=", "at least one label")),
    Case("a dataset without labels", lambda t: EpisodeSampler(Unlabelled(), 2, 1, 1, 1),
         ValueError, ("labels=", "a .targets or .labels attribute")),
    Case("variable min_way 1", lambda t: VariableEpisodeSampler(LABELS, 1, min_way=1),
         ValueError, ("min_way=1: ", "needs at least 2")),
    Case("variable max_way below min_way",
         lambda t: VariableEpisodeSampler(LABELS, 1, min_way=5, max_way=3), ValueError,
         ("max_way=3: ", "max_way >= min_way=5")),
    Case("variable max_support below max_way",
         lambda t: VariableEpisodeSampler(LABELS, 1, max_way=20, max_support=10), ValueError,
         ("max_support=10: ", "max_support >= max_way=20")),
    Case("variable max_query 0", lambda t: VariableEpisodeSampler(LABELS, 1, max_query=0),
         ValueError, ("max_query=0: ", "integer >= 1")),
    Case("variable episodes 0", lambda t: VariableEpisodeSampler(LABELS, 0), ValueError,
         ("episodes=0: ", "integer >= 1")),
    Case("variable seed negative", lambda t: VariableEpisodeSampler(LABELS, 1, seed=-1),
         ValueError, ("seed=-1: ", "integer >= 0")),
    Case("variable log weights crossed",
         lambda t: VariableEpisodeSampler(LABELS, 1, min_log_weight=1.0, max_log_weight=0.0),
         ValueError, ("min_log_weight=1.0: ", "must be <= max_log_weight")),
    Case("variable min_way above the classes",
         lambda t: VariableEpisodeSampler(LABELS, 1, min_way=13), ValueError,
         ("min_way=13: ", "only 12 classes have the 2 items", "lower min_way")),
    Case("variable labels of one class", lambda t: VariableEpisodeSampler(ONE_CLASS, 1),
         ValueError, ("labels=", "needs at least 2 classes")),
]  # fmt: skip

# --- episode_loader ----------------------------------------------------------------------

LOADER = [
    Case("loader workers negative",
         lambda t: episode_loader(Pictures(), EpisodeSampler(Pictures(), 2, 1, 1, 1),
                                  num_workers=-1),
         ValueError, ("num_workers=-1: ", "integer >= 0")),
    Case("loader episode id out of range",
         lambda t: episode_loader(Pictures(), EpisodeSampler(Pictures(), 2, 1, 1, 2),
                                  episode_ids=[0, 5]),
         ValueError, ("episode_ids=5: ", "run from 0 to 1")),
    Case("loader items that are not tensors",
         lambda t: next(iter(episode_loader(Pictures(), EpisodeSampler(Pictures(), 2, 1, 1, 1)))),
         ValueError, ("dataset='Image': ", "transform=torchvision.transforms.ToTensor()")),
]  # fmt: skip

# --- data readers ------------------------------------------------------------------------

DATA = [
    Case("procedural size below 32", lambda t: ProceduralImages(image_size=16), ValueError,
         ("image_size=16: ", "from 32 to 512 pixels")),
    Case("procedural size above 512", lambda t: ProceduralImages(image_size=1024), ValueError,
         ("image_size=1024: ", "from 32 to 512 pixels")),
    Case("procedural no classes", lambda t: ProceduralImages(num_classes=0), ValueError,
         ("num_classes=0: ", "integer >= 1")),
    Case("procedural more classes than codes", lambda t: ProceduralImages(num_classes=3000),
         ValueError, ("num_classes=3000: ", "only 2048 codes exist", "lower num_classes")),
    Case("procedural held-out range past the codes",
         lambda t: ProceduralImages(num_classes=1000, first_class=1500), ValueError,
         ("num_classes=1000: ", "first_class=1500", "lower num_classes or first_class")),
    Case("procedural no images per class", lambda t: ProceduralImages(images_per_class=0),
         ValueError, ("images_per_class=0: ", "integer >= 1")),
    Case("procedural seed negative", lambda t: ProceduralImages(seed=-1), ValueError,
         ("seed=-1: ", "integer >= 0")),
    Case("procedural orientations not a list", lambda t: ProceduralImages(orientations=4),
         ValueError, ("orientations=4: ", "one symbol count per level")),
    Case("procedural noise negative", lambda t: ProceduralImages(noise=-1.0), ValueError,
         ("noise=-1.0: ", "non-negative")),
    Case("procedural frequency 0", lambda t: ProceduralImages(min_cycles=0), ValueError,
         ("min_cycles=0: ", "0 < min_cycles <= max_cycles")),
    Case("folder missing", lambda t: ImageFolderDataset(t / "missing"), ValueError,
         ("root=", "missing': no such folder", "data/README.md")),
    Case("folder without class folders", lambda t: ImageFolderDataset(t / "empty"), ValueError,
         ("root=", "found no class folders 1 level(s) down", "<folder>/<class>/<image>.jpg"),
         setup=a_folder("empty")),
    Case("folder with an empty class folder", lambda t: ImageFolderDataset(t / "images"),
         ValueError, ("root=", "the class folder", "class9' holds no", "add images"),
         setup=then(image_folder(), a_file("images/class9/notes.txt"))),
    Case("folder class depth 0", lambda t: ImageFolderDataset(t / "images", class_depth=0),
         ValueError, ("class_depth=0: ", "integer >= 1"), setup=image_folder()),
    Case("folder image size 0", lambda t: ImageFolderDataset(t / "images", image_size=0),
         ValueError, ("image_size=0: ", "integer >= 1"), setup=image_folder()),
    Case("folder with a corrupt image, verified",
         lambda t: ImageFolderDataset(t / "images", verify=True), ValueError,
         ("image file=", "class1/9.png", "cannot be read as an image", "remove or replace"),
         setup=then(image_folder(), a_file("images/class1/9.png", b"not a png"))),
    Case("folder errors under the caller's name",
         lambda t: ImageFolderDataset(t / "missing", argument="--data"), ValueError,
         ("--data=", "no such folder")),
    Case("folder of one class, sampled",
         lambda t: EpisodeSampler(ImageFolderDataset(t / "images"), 2, 1, 1, 1), ValueError,
         ("labels=", "needs at least 2 classes"), setup=image_folder(classes=1)),
]  # fmt: skip

# --- the command line --------------------------------------------------------------------

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible here")

COMMAND_LINE = [
    Case("cli steps 0", command_line("--steps", "0"), CommandLineError,
         ("--steps=0: ", "pass an integer >= 1.")),
    Case("cli steps not a number", command_line("--steps", "ten"), CommandLineError,
         ("--steps='ten': ", "pass an integer >= 1.")),
    Case("cli steps without a value", command_line("--steps"), CommandLineError,
         ("argument --steps: expected one argument", "--help")),
    Case("cli unknown option", command_line("--shots", "3"), CommandLineError,
         ("unrecognized arguments: --shots 3", "--help")),
    Case("cli way 1", command_line("--way", "1"), CommandLineError,
         ("--way=1: ", "needs at least 2")),
    Case("cli lr 0", command_line("--lr", "0"), CommandLineError,
         ("--lr=0.0: ", "pass a positive number")),
    Case("cli lr nan", command_line("--lr", "nan"), CommandLineError,
         ("--lr=nan: ", "pass a positive number")),
    Case("cli unknown learner", command_line("--learner", "maml"), CommandLineError,
         ("--learner='maml': ", "choose one of 'protonets', 'simple_cnaps', 'cnaps'")),
    Case("cli unknown norm", command_line("--norm", "layer"), CommandLineError,
         ("--norm='layer': ", "choose one of 'model', 'group', 'batch'")),
    Case("cli unknown backbone", command_line("--backbone", "resnet81"), CommandLineError,
         ("--backbone='resnet81': ", "not a torchvision", "'resnet18'", "'conv4'")),
    Case("cli unknown device", command_line("--device", "tpu"), CommandLineError,
         ("--device='tpu': ", "pass 'cpu'")),
    Case("cli cuda without a GPU", command_line("--device", "cuda"), CommandLineError,
         ("--device='cuda': ", "no CUDA GPU is visible; pass --device cpu"), marks=(no_gpu,)),
    Case("cli h negative", command_line("--h", "-1"), CommandLineError,
         ("--h=-1: ", "leave --h out for full back-propagation")),
    Case("cli seed negative", command_line("--seed", "-1"), CommandLineError,
         ("--seed=-1: ", "integer >= 0")),
    Case("cli one class", command_line("--classes", "1"), CommandLineError,
         ("--classes=1: ", "needs at least 2")),
    Case("cli one image per class", command_line("--images-per-class", "1"), CommandLineError,
         ("--images-per-class=1: ", "pass 2 or more")),
    Case("cli data missing", command_line("--data", "{tmp}/missing"), CommandLineError,
         ("--data=", "missing': no such folder", "data/README.md")),
    Case("cli validation data missing",
         command_line("--data", "{tmp}/images", "--validation-data", "{tmp}/missing"),
         CommandLineError, ("--validation-data=", "no such folder"), setup=image_folder()),
    Case("cli validation data without data",
         command_line("--validation-data", "{tmp}/images"), CommandLineError,
         ("--validation-data=", "pass --data too"), setup=image_folder()),
    Case("cli embedded size below 32", command_line("--image-size", "16"), CommandLineError,
         ("--image-size=16: ", "the embedded dataset renders 32 to 512 px")),
    Case("cli embedded size above 512", command_line("--image-size", "600"), CommandLineError,
         ("--image-size=600: ", "the embedded dataset renders 32 to 512 px")),
    Case("cli embedded classes", command_line("--classes", "2000"), CommandLineError,
         ("--classes=2000: ", "pass --classes <= 1024")),
    Case("cli way above the embedded classes", command_line("--way", "30"), CommandLineError,
         ("--way=30: ", "--classes 20 training classes", "pass --way <= 20")),
    Case("cli min way above the embedded classes",
         command_line("--variable", "--min-way", "30", "--max-way", "30"), CommandLineError,
         ("--min-way=30: ", "pass --min-way <= 20")),
    Case("cli tasks larger than the embedded classes", command_line("--shot", "7"),
         CommandLineError, ("--images-per-class=8: ", "shot + query = 9",
                            "lower --shot or --query")),
    Case("cli max way below min way", command_line("--variable", "--max-way", "3"),
         CommandLineError, ("--max-way=3: ", "pass --max-way >= --min-way (5)")),
    Case("cli max support below max way", command_line("--variable", "--max-support", "10"),
         CommandLineError, ("--max-support=10: ", "--max-support >= --max-way (20)")),
    Case("cli out is the checkpoint", command_line("--out", "{tmp}/run.pt"), CommandLineError,
         ("--out=", "this is the --checkpoint file too")),
    Case("cli backbone too small for the images",
         command_line("--data", "{tmp}/images", "--image-size", "8"), CommandLineError,
         ("--image-size=8: ", "conv4 cannot embed 8x8", "pass --image-size >= 16"),
         setup=image_folder()),
    Case("cli folder of one class", command_line("--data", "{tmp}/images"), CommandLineError,
         ("--data=", "holds 1 class folder", "add class folders, or check --class-depth"),
         setup=image_folder(classes=1)),
    Case("cli folder class depth too deep",
         command_line("--data", "{tmp}/images", "--class-depth", "2"), CommandLineError,
         ("--data=", "found no class folders 2 level(s) down"), setup=image_folder()),
    Case("cli folder with an empty class folder", command_line("--data", "{tmp}/images"),
         CommandLineError, ("--data=", "the class folder", "class9' holds no"),
         setup=then(image_folder(), a_folder("images/class9"))),
    Case("cli folder classes too small", command_line("--data", "{tmp}/images", "--shot", "3"),
         CommandLineError, ("--data=", "have fewer than shot + query = 5 images",
                            "pass --skip-small-classes"), setup=image_folder()),
    Case("cli folder way above its classes",
         command_line("--data", "{tmp}/images", "--way", "5"), CommandLineError,
         ("--data=", "holds 4 classes, and --way is 5", "lower --way"), setup=image_folder()),
    Case("cli folder min way above its classes",
         command_line("--data", "{tmp}/images", "--variable"), CommandLineError,
         ("--data=", "only 4 of its classes have the 2 images", "lower --min-way (5)"),
         setup=image_folder()),
    Case("cli validation folder of one class",
         command_line("--data", "{tmp}/images", "--validation-data", "{tmp}/held"),
         CommandLineError, ("--validation-data=", "holds 1 class folder"),
         setup=then(image_folder(), image_folder(classes=1, name="held"))),
    Case("cli out below a file", command_line("--out", "{tmp}/notes.txt/summary.json"),
         CommandLineError, ("--out=", "notes.txt' is a file, not a folder"),
         setup=a_file("notes.txt")),
    Case("cli checkpoint is a folder", command_line("--checkpoint", "{tmp}/runs"),
         CommandLineError, ("--checkpoint=", "this is a folder; pass a file path"),
         setup=a_folder("runs")),
    Case("cli checkpoint in a read-only folder",
         command_line("--checkpoint", "{tmp}/locked/run.pt"), CommandLineError,
         ("--checkpoint=", "locked' is not writable"),
         setup=then(a_folder("locked"), read_only("locked")),
         marks=(pytest.mark.skipif(not permissions_bind(), reason="permissions do not bind"),)),
    Case("cli out is someone's file", command_line("--out", "{tmp}/notes.json"),
         CommandLineError, ("--out=", "not a litekit.train summary", "will not overwrite"),
         setup=a_file("notes.json", b'{"my": "notes"}')),
    Case("cli checkpoint is someone's file", command_line("--checkpoint", "{tmp}/notes.pt"),
         CommandLineError, ("--checkpoint=", "not a litekit checkpoint", "will not overwrite"),
         setup=a_file("notes.pt", b"PK not a checkpoint")),
    Case("cli unknown precision", command_line("--precision", "fp8"), CommandLineError,
         ("--precision='fp8': ", "choose one of 'fp32', 'bf16', 'fp16'")),
    Case("cli weights file missing", command_line("--weights", "{tmp}/absent.pt"),
         CommandLineError, ("--weights=", "absent.pt': no such file")),
    Case("cli weights name unknown to the backbone",
         command_line("--backbone", "resnet18", "--weights", "IMAGENET9K"), CommandLineError,
         ("--weights='IMAGENET9K': ", "resnet18 has weights ['DEFAULT', 'IMAGENET1K_V1']")),
    Case("cli named weights for conv4", command_line("--weights", "DEFAULT"), CommandLineError,
         ("--weights='DEFAULT': ", "named weights come with a torchvision model name")),
    Case("cli group norm with named weights",
         command_line("--backbone", "resnet18", "--weights", "DEFAULT", "--norm", "group"),
         CommandLineError, ("--norm='group': ", "trained with BatchNorm", "('model')")),
    Case("cli weights of another architecture", command_line("--weights", "{tmp}/other.pt"),
         CommandLineError, ("--weights=", "do not fit the backbone"),
         setup=a_state_dict("other.pt", nn.Conv2d(3, 4, 3))),
]  # fmt: skip

# --- python -m litekit.measure, the planner, the floor ----------------------------------------

TINY_STEP = StepConfig(image_size=16, n_support=6, way=3, n_query=4, width=4, h=2, repeats=1)

MEASURE = [
    Case("measure unknown precision", measure_command_line("--precision", "fp8"),
         CommandLineError, ("argument --precision: invalid choice: 'fp8'", "--help")),
    Case("measure weights file missing", measure_command_line("--weights", "{tmp}/absent.pt"),
         CommandLineError, ("--weights=", "absent.pt': no such file")),
    Case("measure named weights for conv4", measure_command_line("--weights", "DEFAULT"),
         CommandLineError, ("--weights='DEFAULT': ", "named weights come with")),
    Case("measure weights of another architecture",
         measure_command_line("--weights", "{tmp}/other.pt"), CommandLineError,
         ("--weights=", "do not fit the backbone"),
         setup=a_state_dict("other.pt", nn.Conv2d(3, 4, 3))),
    Case("plan in an unknown precision",
         lambda t: plan_budget("1GiB", StepConfig(precision="fp8"), measure=_no_measure),
         ValueError, ("precision='fp8': ", "choose one of 'fp32', 'bf16', 'fp16'")),
    Case("plan with channels_last not a bool",
         lambda t: plan_budget("1GiB", StepConfig(channels_last="yes"), measure=_no_measure),
         ValueError, ("channels_last='yes': ", "pass True or False")),
    Case("step config with a missing weights file",
         lambda t: StepConfig(weights=str(t / "absent.pt")), ValueError,
         ("weights=", "no such file")),
    Case("step config with an unknown compile mode", lambda t: StepConfig(compile="fast"),
         ValueError, ("compile='fast': ", "choose one of 'default', 'reduce-overhead'")),
    Case("step config compiling a FiLM learner",
         lambda t: StepConfig(learner="simple_cnaps", compile="default"), ValueError,
         ("compile='default': ", "learner='protonets' only")),
    Case("floor of full back-propagation", lambda t: measure_floor(StepConfig()), ValueError,
         ("config='conv4 64px N=50 full': ", "the floor is that of a LITE step")),
    Case("floor over 3 repeats", lambda t: measure_floor(TINY_STEP, repeats=3), ValueError,
         ("repeats=3: ", "pass at least 10")),
]  # fmt: skip


def _no_measure(config: StepConfig) -> Any:
    raise AssertionError("the planner measured: the bad input was not caught")


# --- litekit.paths -----------------------------------------------------------------------

PATHS = [
    Case("path is a folder", lambda t: check_writable_file("out", t), ValueError,
         ("out=", "this is a folder; pass a file path")),
    Case("path below a file", lambda t: check_writable_file("out", t / "notes.txt" / "a.json"),
         ValueError, ("out=", "notes.txt' is a file, not a folder"), setup=a_file("notes.txt")),
    Case("path below a broken link",
         lambda t: check_writable_file("out", t / "link" / "a.json"), ValueError,
         ("out=", "link' is a broken symbolic link"),
         setup=lambda t: (t / "link").symlink_to(t / "gone")),
    Case("path in a read-only folder",
         lambda t: check_writable_file("out", t / "locked" / "new" / "a.json"), ValueError,
         ("out=", "locked' is not writable", "the missing folders cannot be created"),
         setup=then(a_folder("locked"), read_only("locked")),
         marks=(pytest.mark.skipif(not permissions_bind(), reason="permissions do not bind"),)),
]  # fmt: skip

# --- Lite, learners, steps, fit/evaluate, checkpoints ----------------------------------------


def on_a_learner(
    action: Callable[..., Any], kind: str = "protonets", *, found_mid_step: bool = False
) -> Callable[[Path], Any]:
    """A row's call: ``action(learner, optimizer, tmp)`` on a fresh learner whose Adam
    optimiser has taken one step; when it raises, the learner's weights and gradients, the
    optimiser's state and torch's random stream must be as they were. A fault that can only
    be found mid-step (a non-finite loss) leaves the weights and the optimiser as they were,
    but ``.grad`` cleared and the random stream advanced by the work done."""

    def call(tmp: Path) -> Any:
        learner = make_learner(kind)
        optimizer = torch.optim.Adam(learner.parameters(), lr=0.01)
        meta_train_step(learner, GOOD, optimizer, Lite(2))
        before = snapshot(learner, optimizer, not found_mid_step)
        try:
            return action(learner, optimizer, tmp)
        finally:
            after = snapshot(learner, optimizer, not found_mid_step)
            assert after == before, "a bad input changed the run"

    return call


def snapshot(learner: torch.nn.Module, optimizer: torch.optim.Optimizer, all_=True) -> tuple:
    weights = [v.tolist() for v in learner.state_dict().values()]
    if not all_:
        return weights, str(optimizer.state_dict())
    grads = [None if p.grad is None else p.grad.tolist() for p in learner.parameters()]
    return weights, str(optimizer.state_dict()), grads, torch.get_rng_state().tolist()


def with_(episode: Episode, **changes: Any) -> Episode:
    """``episode`` with some tensors replaced (built without Episode's own checks)."""
    values = {name: getattr(episode, name) for name in episode.__dataclass_fields__}
    task = object.__new__(Episode)
    for name, value in (values | changes).items():
        object.__setattr__(task, name, value)
    return task


def nan_pixel(episode: Episode) -> Episode:
    support = episode.support_images.clone()
    support[3, 0, 1, 1] = float("nan")
    return with_(episode, support_images=support)


def a_checkpoint(relative: str = "run.pt", cut: int = 0) -> Callable[[Path], None]:
    """A setup: a sound one-step checkpoint of a ProtoNets run (``cut`` bytes cut off)."""

    def setup(tmp: Path) -> None:
        learner = make_learner("protonets")
        fit(
            learner,
            [GOOD],
            torch.optim.Adam(learner.parameters(), lr=0.01),
            1,
            checkpoint=tmp / relative,
            progress=False,
        )
        if cut:
            data = (tmp / relative).read_bytes()
            (tmp / relative).write_bytes(data[:-cut])

    return setup


def fit_run(tmp: Path, learner=None, optimizer=None, **options: Any) -> Any:
    learner = learner if learner is not None else make_learner("protonets")
    optimizer = optimizer or torch.optim.Adam(learner.parameters(), lr=0.01)
    settings = {"steps": 2, "progress": False} | options
    episodes = settings.pop("episodes", [GOOD])
    return fit(learner, episodes, optimizer, lite=Lite(2), **settings)


GOOD = make_episode(n_support=6, way=3, n_query=4)
ENCODER = tiny_backbone().double()
IMAGES = GOOD.support_images
BATCH_STATISTICS = nn.Sequential(
    nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False), nn.Flatten()
)


class Squeezing(nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(1, 2, 3))


LITE = [
    Case("Lite negative h", lambda t: Lite(-1), ValueError, ("h=-1", "use 0 for none")),
    Case("Lite chunk 0", lambda t: Lite(2, chunk_size=0), ValueError,
         ("chunk_size=0", "chunk_size >= 1")),
    Case("Lite unknown scaling", lambda t: Lite(2, scaling="orbit"), ValueError,
         ("scaling='orbit'", "choose one of 'unbiased', 'none', 'loss'")),
    Case("Lite unknown precision", lambda t: Lite(2, precision="fp8"), ValueError,
         ("precision='fp8'", "'bf16'")),
    Case("Lite repeated fixed subset",
         lambda t: Lite(2, subsets={"features": [0, 0]}).draw(5, ("features",)), ValueError,
         ("subsets['features']=", "distinct indices in 0..4")),
    Case("Lite missing path subset",
         lambda t: Lite(2, subsets={"features": [0]}).draw(5, ("set", "features")), ValueError,
         ("subsets=", "every path")),
    Case("lite_forward no images", lambda t: lite_forward(ENCODER, IMAGES[:0], 2), ValueError,
         ("images=(0,", "at least one image")),
    Case("lite_forward subset of another size",
         lambda t: lite_forward(ENCODER, IMAGES, 2, subset=[0, 1, 2]), ValueError,
         ("subset=", "must hold h=2")),
    Case("lite_forward cached rows",
         lambda t: lite_forward(ENCODER, IMAGES, 2, cached=torch.zeros(2, 3)), ValueError,
         ("cached=(2, 3)", "one embedding per image (6)")),
]  # fmt: skip

LEARNERS = [
    Case("backbone that squeezes the batch", lambda t: ProtoNets(Squeezing()), ValueError,
         ("backbone='output shape", "one row per image")),
    Case("backbone of another type", lambda t: ProtoNets(42), ValueError,
         ("backbone=42", "nn.Module or a model name")),
    Case("backbone mode", lambda t: ProtoNets(ENCODER, backbone_mode="frozen"), ValueError,
         ("backbone_mode='frozen'", "'eval', 'train'")),
    Case("grey images into an RGB backbone",
         on_a_learner(lambda m, o, t: m(IMAGES[:, :1], GOOD.support_labels,
                                       GOOD.query_images[:, :1])),
         ValueError, ("support_images=(6, 1, 6, 6)", "takes 3")),
    Case("float support labels",
         on_a_learner(lambda m, o, t: m(IMAGES, GOOD.support_labels.float(), GOOD.query_images)),
         ValueError, ("support_labels=torch.float32", "integer tensor")),
    Case("a class without support images",
         on_a_learner(lambda m, o, t: m(IMAGES, torch.tensor([0, 0, 2, 2, 0, 2]),
                                       GOOD.query_images)),
         ValueError, ("support_labels=", "classes [1] have no support image")),
    Case("LITE through batch statistics",
         lambda t: ProtoNets(BATCH_STATISTICS.double())(
             IMAGES, GOOD.support_labels, GOOD.query_images, Lite(2)),
         ValueError, ("lite=", "track_running_stats=False", "GroupNorm")),
]  # fmt: skip

STEPS = [
    Case("query label out of range",
         on_a_learner(lambda m, o, t: meta_train_step(
             m, [GOOD, with_(GOOD, query_labels=torch.tensor([0, 1, 2, 7]))], o, Lite(2))),
         ValueError, ("query_labels=[7]", "not in the support set")),
    Case("float query labels",
         on_a_learner(lambda m, o, t: meta_train_step(
             m, with_(GOOD, query_labels=GOOD.query_labels.double()), o)),
         ValueError, ("query_labels=torch.float64", "labels.long()")),
    Case("NaN pixel",
         on_a_learner(lambda m, o, t: meta_train_step(m, [GOOD, nan_pixel(GOOD)], o, Lite(2)),
                      "simple_cnaps", found_mid_step=True),
         NonFiniteLossError, ("episodes[1]=support_images[3] holds 1 non-finite",
                              "on_nonfinite='skip'", "nothing was changed")),
    Case("query batch 0", on_a_learner(lambda m, o, t: meta_train_step(m, GOOD, o,
                                                                      query_batch=0)),
         ValueError, ("query_batch=0", ">= 1")),
    Case("unknown non-finite policy",
         on_a_learner(lambda m, o, t: meta_train_step(m, GOOD, o, on_nonfinite="ignore")),
         ValueError, ("on_nonfinite='ignore'", "'raise', 'skip'")),
    Case("lite of another type", on_a_learner(lambda m, o, t: meta_train_step(m, GOOD, o, "8")),
         ValueError, ("lite='8'", "Lite(h, ...)")),
    Case("no episodes", on_a_learner(lambda m, o, t: meta_train_step(m, [], o)), ValueError,
         ("episodes=[]", "non-empty list")),
    Case("float16 without a scaler",
         on_a_learner(lambda m, o, t: meta_train_step(m, GOOD, o, precision="fp16")),
         ValueError, ("scaler=None", "GradScaler")),
    Case("total tasks in one process",
         on_a_learner(lambda m, o, t: meta_train_step(m, GOOD, o, total_tasks=5)), ValueError,
         ("total_tasks=5", "total_tasks=1")),
]  # fmt: skip

FIT = [
    Case("fit zero steps", on_a_learner(lambda m, o, t: fit_run(t, m, o, steps=0)), ValueError,
         ("steps=0", ">= 1")),
    Case("fit checkpoint below a file",
         on_a_learner(lambda m, o, t: fit_run(t, m, o, checkpoint=t / "notes.txt" / "run.pt")),
         ValueError, ("checkpoint=", "notes.txt' is a file, not a folder"),
         setup=a_file("notes.txt")),
    Case("fit checkpoint is a folder",
         on_a_learner(lambda m, o, t: fit_run(t, m, o, checkpoint=t)), ValueError,
         ("checkpoint=", "folder")),
    Case("fit optimizer by name",
         lambda t: fit_run(t, make_learner("protonets"), "adam"), ValueError,
         ("optimizer='adam'", "torch.optim optimiser")),
    Case("fit validate every 0",
         on_a_learner(lambda m, o, t: fit_run(t, m, o, validate_every=0)), ValueError,
         ("validate_every=0", ">= 1")),
    Case("fit unknown precision",
         on_a_learner(lambda m, o, t: fit_run(t, m, o, precision="fp8")), ValueError,
         ("precision='fp8'", "'fp32'")),
    Case("fit no episodes", on_a_learner(lambda m, o, t: fit_run(t, m, o, episodes=[])),
         ValueError, ("episodes=[]", "at least one episode")),
    Case("fit NaN task stops with the checkpoint as it was",
         on_a_learner(lambda m, o, t: fit_run(t, m, o, episodes=[nan_pixel(GOOD)],
                                              checkpoint=t / "run.pt", resume=True),
                      found_mid_step=True),
         NonFiniteLossError, ("episodes[0]=support_images[3]", "nothing was changed")),
    Case("fit damaged checkpoint",
         on_a_learner(lambda m, o, t: fit_run(t, m, o, checkpoint=t / "run.pt")),
         ValueError, ("checkpoint=", "truncated", "neither loads nor overwrites"),
         setup=a_checkpoint(cut=9)),
    Case("fit existing checkpoint without resume",
         on_a_learner(lambda m, o, t: fit_run(t, m, o, checkpoint=t / "run.pt", resume=False)),
         ValueError, ("checkpoint=", "resume=True"), setup=a_checkpoint()),
    Case("fit checkpoint of another learner",
         on_a_learner(lambda m, o, t: fit_run(t, m, o, checkpoint=t / "run.pt"), "cnaps"),
         ValueError, ("checkpoint=", "set up differently"), setup=a_checkpoint()),
    Case("evaluate no episodes", lambda t: evaluate(make_learner("protonets"), []), ValueError,
         ("episodes=[]", "at least one episode")),
    Case("evaluate query label out of range",
         lambda t: evaluate(make_learner("protonets"),
                            [with_(GOOD, query_labels=torch.tensor([0, 1, 2, 3]))]),
         ValueError, ("query_labels=[3]", "not in the support set")),
    Case("read a missing checkpoint", lambda t: checkpoints.read(t / "none.pt"), ValueError,
         ("checkpoint=", "no such file")),
]  # fmt: skip


# --- ORBIT, python -m litekit.evaluate, ORBIT training ----------------------------------------

EVALUATE_PREFIX = "python -m litekit.evaluate: error: "


def evaluate_command_line(*options: str) -> Callable[[Path], None]:
    """A row's call: ``python -m litekit.evaluate`` with ``options`` (``{tmp}`` is the row's
    folder), in this process, with scoring forbidden; expects exit status 2 and one line."""

    def forbidden(*args, **kwargs):
        raise AssertionError("scoring started: the bad input was not caught")

    def call(tmp: Path) -> None:
        argv = [o.replace("{tmp}", str(tmp)) for o in options]
        out, err = io.StringIO(), io.StringIO()
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            mock.patch.object(orbit_source, "evaluate_orbit", forbidden),
            mock.patch.object(folders_source, "evaluate", forbidden),
            mock.patch.object(metadataset_source, "evaluate", forbidden),
            mock.patch.object(task_source, "evaluate_task", forbidden),
        ):
            code = evaluate_cli.main(argv)
        lines = err.getvalue().strip().splitlines()
        assert code == 2 and out.getvalue() == "", (code, err.getvalue())
        assert len(lines) == 1 and lines[0].startswith(EVALUATE_PREFIX), err.getvalue()
        raise CommandLineError(lines[0].removeprefix(EVALUATE_PREFIX))

    return call


_TREES: dict[tuple, Path] = {}  # each tree written once per session, then copied


def an_orbit_tree(edit: Callable[[Path], None] | None = None, **sizes: Any) -> Callable:
    """A setup: a miniature ORBIT tree at ``tmp/orbit`` (`litekit.orbit.write_orbit_tree`,
    tiny), then ``edit(tmp/orbit)``."""

    def setup(tmp: Path) -> None:
        spec = dict(users=(2, 1, 2), objects=2, clean_videos=2, clutter_videos=1,
                    clean_frames=8, clutter_frames=8, not_present=2, image_size=32)  # fmt: skip
        spec |= sizes
        key = tuple(sorted(spec.items()))
        if key not in _TREES:
            folder = Path(tempfile.mkdtemp(prefix="litekit-orbit-"))
            atexit.register(shutil.rmtree, folder, True)
            write_orbit_tree(folder / "orbit", **spec)
            _TREES[key] = folder / "orbit"
        shutil.copytree(_TREES[key], tmp / "orbit")
        if edit is not None:
            edit(tmp / "orbit")

    return setup


def cut_video(split: str, user: str, frames: int) -> Callable[[Path], None]:
    """Keep the first ``frames`` frames of ``user``'s first clean video of their first object."""

    def edit(root: Path) -> None:
        video = sorted((root / split / user).glob("*/clean/*"))[0]
        for frame in sorted(video.iterdir())[frames:]:
            frame.unlink()

    return edit


def drop_objects(split: str, user: str, keep: int = 1) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        for folder in sorted((root / split / user).iterdir())[keep:]:
            shutil.rmtree(folder)

    return edit


def drop_clutter(split: str, user: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        for folder in (root / split / user).glob("*/clutter"):
            shutil.rmtree(folder)

    return edit


def a_model_checkpoint(learner: str = "protonets", relative: str = "run.pt") -> Callable:
    """A setup: a checkpoint as python -m litekit.train writes it (with its model record),
    made without training."""

    def setup(tmp: Path) -> None:
        record = make_record(learner=learner, backbone="conv4", image_size=32, width=4,
                             norm="group")  # fmt: skip
        torch.manual_seed(0)
        model = learner_from_record(record)
        optimizer = torch.optim.Adam(model.parameters())
        metadata = {"options": {"learner": learner}, "model": record}
        payload = checkpoints.payload(1, {}, model, optimizer, None, None, {}, metadata)
        checkpoints.save_atomic(payload, tmp / relative)

    return setup


ORBIT_EVALUATE = ("orbit", "--checkpoint", "{tmp}/run.pt", "--root", "{tmp}/orbit", "--device",
                  "cpu", "--quiet")  # fmt: skip
# A train user of the tree below is P100; test users are P103 and P104.
ORBIT_TRAIN = ("--orbit", "{tmp}/orbit", "--orbit-clips", "1")

ORBIT = [
    Case("orbit video shorter than one clip", evaluate_command_line(*ORBIT_EVALUATE),
         CommandLineError, ("video folder=", "P103--", "has 5 frame(s), fewer than one clip (8",
                            "remove the video"),
         setup=then(a_model_checkpoint(), an_orbit_tree(cut_video("test", "P103", 5)))),
    Case("orbit user with one object", evaluate_command_line(*ORBIT_EVALUATE),
         CommandLineError, ("user folder=", "test/P104'", "holds 1 object folder",
                            "needs at least 2", "Add object folders, or remove the user"),
         setup=then(a_model_checkpoint(), an_orbit_tree(drop_objects("test", "P104")))),
    Case("orbit test user without clutter videos", evaluate_command_line(*ORBIT_EVALUATE),
         CommandLineError, ("user folder=", "test/P103'", "has no clutter target videos",
                            "add videos under <object>/clutter/"),
         setup=then(a_model_checkpoint(), an_orbit_tree(drop_clutter("test", "P103")))),
    Case("orbit2022 without annotations",
         evaluate_command_line(*ORBIT_EVALUATE, "--protocol", "orbit2022"), CommandLineError,
         ("annotations=", "annotations/test': no such folder", "object_not_present_issue",
          "orbit_extra_annotations.zip", "data/README.md", "--annotations"),
         setup=then(a_model_checkpoint(), an_orbit_tree(annotations=None))),
    Case("orbit2022 annotation file missing",
         evaluate_command_line(*ORBIT_EVALUATE, "--protocol", "orbit2022"), CommandLineError,
         ("annotation file=", "P104--wallet--clutter--v0.json': missing",
          "orbit_extra_annotations"),
         setup=then(a_model_checkpoint(), an_orbit_tree(
             lambda r: (r / "annotations/test/P104--wallet--clutter--v0.json").unlink()))),
    Case("orbit protocol misspelt",
         evaluate_command_line(*ORBIT_EVALUATE, "--protocol", "neurips2021"), CommandLineError,
         ("--protocol='neurips2021': ", "did you mean 'neurips21'?", "'orbit2022'"),
         setup=a_folder("orbit")),
    Case("orbit setting misspelt",
         evaluate_command_line(*ORBIT_EVALUATE, "--setting", "cluttered"), CommandLineError,
         ("--setting='cluttered': ", "choose one of 'clutter', 'clean'"),
         setup=a_folder("orbit")),
    Case("orbit root without a test split", evaluate_command_line(*ORBIT_EVALUATE),
         CommandLineError, ("--root=", "holds no test/ folder", "data/README.md"),
         setup=then(a_model_checkpoint(), a_folder("orbit"))),
    Case("orbit root is the validation split",
         evaluate_command_line(*ORBIT_EVALUATE[:4], "{tmp}/orbit/validation"), CommandLineError,
         ("--root=", "this is ORBIT's validation split", "pass --split validation"),
         setup=then(a_model_checkpoint(), an_orbit_tree())),
    Case("evaluate checkpoint learner contradicts the command line",
         evaluate_command_line(*ORBIT_EVALUATE, "--learner", "simple_cnaps"), CommandLineError,
         ("--learner='simple_cnaps': ", "holds a model with --learner 'protonets'",
          "leave --learner out"),
         setup=then(a_model_checkpoint(), an_orbit_tree())),
    Case("evaluate checkpoint image size contradicts the command line",
         evaluate_command_line(*ORBIT_EVALUATE, "--image-size", "64"), CommandLineError,
         ("--image-size=64: ", "holds a model with --image-size 32"),
         setup=then(a_model_checkpoint(), an_orbit_tree())),
    Case("evaluate checkpoint missing", evaluate_command_line(*ORBIT_EVALUATE), CommandLineError,
         ("--checkpoint=", "run.pt': no such file"), setup=an_orbit_tree()),
    Case("evaluate checkpoint of fit in Python", evaluate_command_line(*ORBIT_EVALUATE),
         CommandLineError, ("--checkpoint=", "does not record its model", "made by fit()"),
         setup=then(a_checkpoint(), an_orbit_tree())),
    Case("evaluate out is someone's file",
         evaluate_command_line(*ORBIT_EVALUATE, "--out", "{tmp}/notes.json"), CommandLineError,
         ("--out=", "not a litekit evaluation", "will not overwrite"),
         setup=then(a_model_checkpoint(), an_orbit_tree(), a_file("notes.json", b"{}"))),
    Case("evaluate without a source", evaluate_command_line("--checkpoint", "x.pt"),
         CommandLineError, ("argument SOURCE: invalid choice", "--help")),
    Case("evaluate folders of one class",
         evaluate_command_line("folders", "--checkpoint", "{tmp}/run.pt", "--data",
                               "{tmp}/images", "--device", "cpu"), CommandLineError,
         ("--data=", "holds 1 class folder"),
         setup=then(a_model_checkpoint(), image_folder(classes=1))),
    Case("train orbit video shorter than one clip", command_line(*ORBIT_TRAIN),
         CommandLineError, ("video folder=", "train/P100/", "fewer than one clip (8"),
         setup=an_orbit_tree(cut_video("train", "P100", 3))),
    Case("train orbit user with one object", command_line(*ORBIT_TRAIN), CommandLineError,
         ("user folder=", "train/P101'", "holds 1 object folder"),
         setup=an_orbit_tree(drop_objects("train", "P101"))),
    Case("train orbit validation user without clutter videos", command_line(*ORBIT_TRAIN),
         CommandLineError, ("user folder=", "validation/P102'", "has no clutter target videos"),
         setup=an_orbit_tree(drop_clutter("validation", "P102"))),
    Case("train orbit without a validation split", command_line(*ORBIT_TRAIN),
         CommandLineError, ("--orbit=", "holds no validation/ folder",
                            "--orbit-validation-tasks 0 for no validation"),
         setup=an_orbit_tree(lambda r: shutil.rmtree(r / "validation"))),
    Case("train orbit with folder data", command_line(*ORBIT_TRAIN, "--data", "{tmp}/images"),
         CommandLineError, ("--orbit=", "pass --orbit or --data, not both"),
         setup=then(an_orbit_tree(), image_folder())),
    Case("train best checkpoint without validation",
         command_line("--best-checkpoint", "{tmp}/best.pt", "--validation-tasks", "0"),
         CommandLineError, ("--best-checkpoint=", "this run has no validation")),
    Case("train best checkpoint is the checkpoint",
         command_line("--best-checkpoint", "{tmp}/run.pt"), CommandLineError,
         ("--best-checkpoint=", "this is the --checkpoint file too")),
    Case("train best checkpoint already there for a new run", command_line(), CommandLineError,
         ("--best-checkpoint=", "run.best.pt", "a best checkpoint is already there",
          "resumes nothing"), setup=a_checkpoint("run.best.pt")),
    Case("train best checkpoint is someone's file", command_line(), CommandLineError,
         ("--best-checkpoint=", "run.best.pt", "not a litekit checkpoint", "will not overwrite"),
         setup=a_file("run.best.pt", b"PK mine")),
    Case("train unknown preset", command_line("--preset", "orbit"), CommandLineError,
         ("--preset='orbit': ", "choose one of 'orbit-neurips21'")),
    Case("train backbone lr scale 0", command_line("--backbone-lr-scale", "0"),
         CommandLineError, ("--backbone-lr-scale=0.0: ", "pass a positive number, e.g. 0.1")),
    Case("orbit tree over a folder", lambda t: write_orbit_tree(t / "orbit"), ValueError,
         ("root=", "exists already", "nothing is overwritten"), setup=a_folder("orbit")),
    Case("orbit protocol misspelt in Python", lambda t: protocol_named("orbit2021"), ValueError,
         ("protocol='orbit2021': ", "did you mean 'orbit2022'?")),
    Case("orbit metrics of no frames", lambda t: frame_accuracy([], 0), ValueError,
         ("predictions=[]: ", "the predicted class of each frame")),
    Case("optimizer lr scale with bare parameters",
         lambda t: optimizer_from_name("adam", make_learner("protonets").parameters(), 0.1,
                                       backbone_lr_scale=0.1), ValueError,
         ("backbone_lr_scale=0.1: ", "pass the learner itself")),
]  # fmt: skip


# --- your own images: timm backbones, weights files, one vocabulary for a task's size ------


def a_safetensors_file(relative: str, backbone: str, prefix: str = "") -> Callable[[Path], None]:
    """A setup: the state dict of the backbone ``backbone`` names, each key with ``prefix``
    in front (weights saved from a wrapper), as ``tmp/<relative>``."""

    def setup(tmp: Path) -> None:
        from safetensors.torch import save_file

        from litekit.learners.build import backbone_from_name

        state = backbone_from_name(backbone).state_dict()
        save_file({prefix + k: v.contiguous() for k, v in state.items()}, tmp / relative)

    return setup


TIMM = ["--backbone", "timm:test_resnet"]

YOUR_IMAGES = [
    Case("cli unknown timm model", command_line("--backbone", "timm:not_a_model"),
         CommandLineError, ("--backbone='timm:not_a_model': ", "not a timm model; try one of",
                            "timm.list_models()")),
    Case("cli timm model misspelt", command_line("--backbone", "timm:efficientnet_bo"),
         CommandLineError, ("--backbone='timm:efficientnet_bo': ", "'timm:efficientnet_b0'")),
    Case("measure unknown timm model", measure_command_line("--backbone", "timm:not_a_model"),
         CommandLineError, ("--backbone='timm:not_a_model': ", "not a timm model")),
    Case("learner with an unknown timm model", lambda t: ProtoNets("timm:not_a_model"),
         ValueError, ("backbone='timm:not_a_model': ", "not a timm model")),
    Case("cli weights with a wrapper's keys",
         command_line(*TIMM, "--weights", "{tmp}/wrapped.safetensors"), CommandLineError,
         ("--weights=", "do not fit the backbone", "missing, the first 'conv1.0.weight'",
          "unexpected, the first 'module.", "strip it"),
         setup=a_safetensors_file("wrapped.safetensors", "timm:test_resnet", "module.")),
    Case("cli weights of another timm model",
         command_line(*TIMM, "--weights", "{tmp}/vit.safetensors"), CommandLineError,
         ("--weights=", "do not fit the backbone", "missing, the first ", "unexpected, the first"),
         setup=a_safetensors_file("vit.safetensors", "timm:test_vit")),
    Case("cli damaged safetensors file",
         command_line(*TIMM, "--weights", "{tmp}/broken.safetensors"), CommandLineError,
         ("--weights=", "broken.safetensors': not a readable .safetensors file",
          "damaged or truncated"),
         setup=a_file("broken.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")),
    Case("learner with a damaged safetensors file",
         lambda t: ProtoNets("resnet18", weights=str(t / "cut.safetensors")), ValueError,
         ("weights=", "cut.safetensors': not a readable .safetensors file"),
         setup=a_file("cut.safetensors", b"\xff" * 64)),
    Case("cli timm weights file missing",
         command_line(*TIMM, "--weights", "{tmp}/absent.safetensors"), CommandLineError,
         ("--weights=", "absent.safetensors': no such file", "'DEFAULT' for timm's own")),
    Case("cli shot and n-support contradict", command_line("--shot", "2", "--n-support", "7"),
         CommandLineError, ("--n-support=7: ", "with --way 3 and --shot 2 a task has 6 support "
                            "images, not 7", "pass one of --shot (per class) and --n-support")),
    Case("cli n-query not a multiple of way",
         lambda t: cli_checks.check_options(cli_options.parse_options(["--way", "3",
                                                                        "--n-query", "7"])),
         ValueError, ("--n-query=7: ", "pass a multiple of 3, or --query (per class)")),
    Case("measure shot and n-support contradict",
         measure_command_line("--shot", "3", "--n-support", "20"), CommandLineError,
         ("--n-support=20: ", "with --way 5 and --shot 3 a task has 15 support images")),
    Case("cli cosine schedule without steps", command_line("--schedule", "cosine", "--steps", "0"),
         CommandLineError, ("--steps=0: ", "pass an integer >= 1")),
    Case("cli warm-up as long as the run",
         command_line("--schedule", "cosine", "--warmup-steps", "1", "--steps", "1"),
         CommandLineError, ("--warmup-steps=1: ", "the warm-up must end before the run's 1 steps")),
    Case("cli clip-grad-norm not positive", command_line("--clip-grad-norm", "0"),
         CommandLineError, ("--clip-grad-norm=0.0: ", "pass a positive number, e.g. 1.0")),
    Case("cli unknown schedule", command_line("--schedule", "linear"), CommandLineError,
         ("--schedule='linear': ", "choose one of 'constant', 'cosine', 'step'")),
    Case("cli memory budget smaller than any set-up", command_line("--memory-budget", "512KiB"),
         CommandLineError, ("--memory-budget='512KiB': ", "too little for any training step")),
    Case("measure train command for uneven classes",
         measure_command_line("--n-support", "21", "--print-train-command"), CommandLineError,
         ("--n-support=21: ", "python -m litekit.train gives each of the 5 classes")),
]  # fmt: skip

LIBRARY: list[Case] = [*LITE, *LEARNERS, *STEPS, *FIT]

# --- Meta-Dataset records and one large task ------------------------------------------------


def md_source(record: Callable[[bytes, int], bytes] | None = None) -> Callable[[Path], None]:
    """A setup: ``tmp/md/s``, a converted source of 5 classes of 2 images (md_writer)."""
    options = {} if record is None else {"record": record}
    return lambda tmp: write_source(tmp / "md", "s", {"TRAIN": [2] * 5}, **options)


def edited(relative: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / relative).write_bytes(change((tmp / relative).read_bytes()))

    return setup


def spec_count(tmp: Path) -> None:
    spec = json.loads((tmp / "md/s/dataset_spec.json").read_text())
    spec["images_per_class"]["0"] = 3
    (tmp / "md/s/dataset_spec.json").write_text(json.dumps(spec))


def open_md(tmp: Path, split: str = "TRAIN", **options: Any) -> Any:
    options = {"normalization": "metadataset", **options}
    return MetaDatasetSource(tmp / "md", "s", split, 32, **options)


def relabel(image: bytes, label: int) -> bytes:
    return md_example(image, 99 if label == 1 else label)


def garbage_image(image: bytes, label: int) -> bytes:
    return md_example(b"not an image at all" if label == 4 else image, label)


def task(tmp: Path) -> None:
    write_task_folder(tmp / "task", classes=3, per_class=5, test_per_class=2)


def task_folder(relative: str, **options: Any) -> Callable[[Path], Any]:
    return lambda tmp: TaskFolder(tmp / relative, 32, **{"normalization": "metadataset", **options})


METADATASET = [
    Case("md record with a bad CRC", open_md, ValueError,
         ("record file=", "s/2.tfrecords': record 0 (byte 0): the CRC of its data does not match",
          "copy or convert this file again"),
         setup=then(md_source(), edited("md/s/2.tfrecords", lambda b: b[:30] + b"x" + b[31:]))),
    Case("md record cut short", open_md, ValueError,
         ("record file=", "s/3.tfrecords': the file ends inside record 1",
          "copy or convert this file again"),
         setup=then(md_source(), edited("md/s/3.tfrecords", lambda b: b[:-10]))),
    Case("md spec names a class whose file is missing", open_md, ValueError,
         ("record file=", "s/3.tfrecords': missing", "lists class 3", "restore the file"),
         setup=then(md_source(), lambda t: (t / "md/s/3.tfrecords").unlink())),
    Case("md label outside the spec", open_md, ValueError,
         ("record file=", "s/1.tfrecords': record 0: its label 99 is not a class of",
          "convert the source again"),
         setup=md_source(relabel)),
    Case("md image that cannot be decoded", open_md, ValueError,
         ("record file=", "s/4.tfrecords': record 0: its image cannot be decoded",
          "replace the image"),
         setup=md_source(garbage_image)),
    Case("md spec count disagrees with the records", open_md, ValueError,
         ("record file=", "class 0 has 2 records, but", "says 3", "fix the spec's count"),
         setup=then(md_source(), spec_count)),
    Case("md source not under the root",
         lambda t: open_sources(t / "md", "s,nope", "TRAIN", 32, normalization="metadataset",
                                argument="--sources"),
         ValueError,
         ("--sources=", "md/nope': no source 'nope' under", "the sources there are ['s']"),
         setup=md_source()),
    Case("md source name that is not a folder name",
         lambda t: open_sources(t / "md", "s;rm", "TRAIN", 32, normalization="metadataset"),
         ValueError, ("sources='s;rm': ", "is not a source's folder name")),
    Case("md source named twice",
         lambda t: open_sources(t / "md", "s,s", "TRAIN", 32, normalization="metadataset"),
         ValueError, ("sources='s,s': ", "named twice")),
    Case("md folder without a spec",
         lambda t: MetaDatasetSource(t, "md", "TRAIN", 32, normalization="metadataset"),
         ValueError, ("source=", "holds no dataset_spec.json", "data/README.md"),
         setup=a_folder("md")),
    Case("md normalization not named", lambda t: open_md(t, normalization=None), ValueError,
         ("normalization=None: ", "name one: 'metadataset'"), setup=md_source()),
    Case("md split without classes", lambda t: open_md(t, "TEST"), ValueError,
         ("split='TEST': ", "has no TEST classes", "pick a split"), setup=md_source()),
    Case("md sampler superclass too small",
         lambda t: MetaDatasetEpisodeSampler(LABELS, 1, superclasses=[[0, 1, 2]]), ValueError,
         ("superclasses='superclass 0 of 3 classes': ", "needs min_way=5")),
    Case("md sampler class of one item",
         lambda t: MetaDatasetEpisodeSampler([*LABELS, 40], 1), ValueError,
         ("labels='classes [40] with 1 item': ", "every class needs 2 items")),
    Case("task support folder over the limit",
         task_folder("task/train800val200", max_images=10, argument="--support"), ValueError,
         ("--support=", "holds 15 images, over the limit of 10", "--first 10", "raise the limit"),
         setup=task),
    Case("task query class the support lacks",
         task_folder("task/test", classes=["class_0", "class_1"], argument="--query"),
         ValueError, ("--query=", "holds classes ['class_2'] that the support set does not have"),
         setup=task),
    Case("task layout without the split", lambda t: task_folders(t / "task", "train"),
         ValueError, ("root=", "has no train/ folder"), setup=task),
    # the command lines
    Case("md train source not under the root",
         command_line("--metadataset", "{tmp}/md", "--sources", "s,nope"), CommandLineError,
         ("--sources=", "md/nope': no source 'nope' under", "the sources there are ['s']"),
         setup=md_source()),
    Case("md train record cut short", command_line("--metadataset", "{tmp}/md", "--sources", "s"),
         CommandLineError, ("record file=", "s/3.tfrecords': the file ends inside record 1"),
         setup=then(md_source(), edited("md/s/3.tfrecords", lambda b: b[:-10]))),
    Case("md train sources without the root", command_line("--sources", "s"), CommandLineError,
         ("--sources='s': ", "pass --metadataset ROOT too")),
    Case("md train with folder data too",
         command_line("--metadataset", "{tmp}/md", "--data", "{tmp}/md"), CommandLineError,
         ("--metadataset=", "pass --metadataset or --data, not both"), setup=md_source()),
    Case("md train weights normalisation without weights",
         command_line("--metadataset", "{tmp}/md", "--md-normalization", "weights"),
         CommandLineError, ("--md-normalization='weights': ", "pass --weights too"),
         setup=md_source()),
    Case("md train sources named twice",
         command_line("--metadataset", "{tmp}/md", "--sources", "s,s"), CommandLineError,
         ("--sources='s,s': ", "named twice"), setup=md_source()),
    Case("md evaluate source not under the root",
         evaluate_command_line("metadataset", "--checkpoint", "{tmp}/run.pt", "--root",
                               "{tmp}/md", "--sources", "nope", "--device", "cpu", "--quiet"),
         CommandLineError, ("--sources=", "md/nope': no source 'nope' under"),
         setup=then(a_model_checkpoint(), md_source())),
    Case("md evaluate record with a bad CRC",
         evaluate_command_line("metadataset", "--checkpoint", "{tmp}/run.pt", "--root",
                               "{tmp}/md", "--sources", "s", "--split", "TRAIN", "--device",
                               "cpu", "--quiet"),
         CommandLineError, ("record file=", "s/2.tfrecords': record 0 (byte 0): the CRC"),
         setup=then(a_model_checkpoint(), md_source(),
                    edited("md/s/2.tfrecords", lambda b: b[:30] + b"x" + b[31:]))),
    Case("task evaluate support folder over the limit",
         evaluate_command_line("task", "--checkpoint", "{tmp}/run.pt", "--support",
                               "{tmp}/task/train800val200", "--query", "{tmp}/task/test",
                               "--max-support", "10", "--device", "cpu", "--quiet"),
         CommandLineError, ("--support=", "holds 15 images, over the limit of 10", "--first 10"),
         setup=then(a_model_checkpoint(), task)),
    Case("task evaluate first leaves out a class",
         evaluate_command_line("task", "--checkpoint", "{tmp}/run.pt", "--support",
                               "{tmp}/task/train800val200", "--query", "{tmp}/task/test",
                               "--first", "2", "--device", "cpu", "--quiet"),
         CommandLineError, ("first=2: ", "leave out classes ['class_2']"),
         setup=then(a_model_checkpoint(), task)),
]  # fmt: skip

CASES = [
    *SAMPLERS,
    *LOADER,
    *DATA,
    *COMMAND_LINE,
    *MEASURE,
    *PATHS,
    *ORBIT,
    *LIBRARY,
    *METADATASET,
    *YOUR_IMAGES,
]


def state_of(folder: Path) -> list[tuple[str, int, str]]:
    """Every entry under ``folder``: its path, mode, and its content's hash (files)."""
    entries = []
    for path in sorted(folder.rglob("*")):
        content = ""
        if path.is_file() and not path.is_symlink():
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        entries.append((str(path.relative_to(folder)), path.lstat().st_mode, content))
    return entries


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    """A command-line row whose check went missing would train: make that a failure."""

    def forbidden(*args, **kwargs):
        raise AssertionError("training started: the bad input was not caught")

    monkeypatch.setattr(loop, "fit", forbidden)


def test_the_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=case.id, marks=case.marks) for case in CASES]
)
def test_bad_input(case: Case, tmp_path: Path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    if case.setup is not None:
        case.setup(folder)
    before = state_of(folder)
    try:
        with pytest.raises(case.error) as raised:
            case.call(folder)
        message = str(raised.value)
        assert message.startswith(case.phrases[0]), message
        for phrase in case.phrases[1:]:
            assert phrase in message, f"{phrase!r} is not in {message!r}"
        if case.writes_nothing:
            assert state_of(folder) == before
    finally:
        for path in [folder, *folder.rglob("*")]:  # let pytest remove read-only folders
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
