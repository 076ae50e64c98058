"""python -m litekit.train: under torchrun (2 CPU processes, gloo) it equals one process, it
resumes a one-process checkpoint, and bad input stops it before any training or write."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import permissions_bind
from PIL import Image

from litekit import checkpoint as checkpoints
from litekit import paths
from litekit.train import _cli_checks, _cli_options, cli, loop

# A tiny run: 3 tasks per step split over 2 processes (2 + 1), LITE h=2 of N=6 with query
# batches, validation every step, SGD so that float32 differences stay at rounding level.
TINY_ANY_DEVICE = [
    "--backbone", "conv4", "--width", "8", "--image-size", "32",
    "--way", "3", "--shot", "2", "--query", "2", "--classes", "20", "--images-per-class", "8",
    "--h", "2", "--query-batch", "3", "--chunk-size", "4", "--tasks-per-step", "3",
    "--optimizer", "sgd", "--lr", "0.1", "--validation-tasks", "4", "--validate-every", "1",
    "--checkpoint-every", "1", "--quiet",
]  # fmt: skip
# On the CPU explicitly: on a machine with a GPU the default is CUDA, and torchrun's rank 1
# would ask for a second GPU (and one process on the GPU would not match two on the CPU).
TINY = [*TINY_ANY_DEVICE, "--device", "cpu"]


def torchrun(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 -m litekit.train ...`` on the CPU."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    environment["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    assert "--device" in arguments, "torchrun tests name the device (see TINY)"
    command += ["--nproc_per_node", "2", "-m", "litekit.train", *arguments]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=150, env=environment, cwd=cwd
    )


def in_process(arguments: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(arguments)
    out = capsys.readouterr()
    return code, out.out, out.err


def weights(path: Path) -> dict[str, torch.Tensor]:
    return checkpoints.load(path)["learner"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process for 2 steps; two processes for 2 steps; and a one-process checkpoint
    after 1 step resumed by two processes up to step 2."""
    folder = tmp_path_factory.mktemp("cli")
    single = cli.main([*TINY, "--steps", "2", "--checkpoint", str(folder / "one.pt"),
                       "--out", str(folder / "one.json")])  # fmt: skip
    first = cli.main([*TINY, "--steps", "1", "--checkpoint", str(folder / "resumed.pt")])
    assert single == 0 and first == 0
    two = torchrun([*TINY, "--steps", "2", "--checkpoint", "two.pt", "--out", "two.json"], folder)
    resumed = torchrun([*TINY, "--steps", "2", "--checkpoint", "resumed.pt"], folder)
    return folder, two, resumed


@pytest.mark.timeout(300)
def test_two_gloo_processes_under_torchrun_equal_one_process(runs):
    folder, two, _ = runs
    assert two.returncode == 0, two.stderr[-3000:]
    one_summary = json.loads((folder / "one.json").read_text())
    two_summary = json.loads((folder / "two.json").read_text())
    assert json.loads(two.stdout) == two_summary  # rank 0 prints it; rank 1 prints nothing
    assert (one_summary["processes"], two_summary["processes"]) == (1, 2)
    one, distributed = weights(folder / "one.pt"), weights(folder / "two.pt")
    for name, value in one.items():
        # float32: the gradient sums its tasks in another order (two partial means, summed
        # by gloo); a few units of rounding in the gradient, times lr, over two steps.
        torch.testing.assert_close(distributed[name], value, rtol=1e-5, atol=1e-6)
    history_one, history_two = one_summary["history"], two_summary["history"]
    assert history_two["step"] == history_one["step"] == [1, 2]
    assert history_two["val_accuracy"] == pytest.approx(history_one["val_accuracy"], abs=1e-6)
    assert history_two["loss"] == pytest.approx(history_one["loss"], rel=1e-5)
    assert checkpoints.load(folder / "two.pt")["metadata"]["options"]["tasks_per_step"] == 3


@pytest.mark.timeout(300)
def test_two_processes_resume_a_one_process_checkpoint(runs):
    folder, _, resumed = runs
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    saved = checkpoints.load(folder / "resumed.pt")
    assert saved["step"] == 2
    for name, value in weights(folder / "one.pt").items():
        torch.testing.assert_close(saved["learner"][name], value, rtol=1e-5, atol=1e-6)


@pytest.mark.timeout(300)
def test_under_torchrun_a_checkpoint_of_another_learner_stops_every_rank(runs, tmp_path):
    folder, _, _ = runs
    path = tmp_path / "one.pt"
    path.write_bytes((folder / "one.pt").read_bytes())
    before = path.read_bytes()
    result = torchrun([*TINY, "--steps", "3", "--learner", "simple_cnaps",
                       "--checkpoint", str(path), "--out", "x.json"], tmp_path)  # fmt: skip
    assert result.returncode != 0
    message = "--learner='simple_cnaps': the checkpoint '[^']*' was made with --learner 'protonets'"
    for rank in (0, 1):  # the two ranks share stderr, so their lines may interleave
        assert f"python -m litekit.train: error (rank {rank}): " in result.stderr, result.stderr[
            -3000:
        ]
    assert len(re.findall(message, result.stderr)) == 2, result.stderr[-3000:]
    assert path.read_bytes() == before and not (tmp_path / "x.json").exists()


@pytest.fixture
def no_training(monkeypatch):
    """Make any call of fit a test failure: errors must come before training."""

    def forbidden(*args, **kwargs):
        raise AssertionError("fit was called")

    monkeypatch.setattr(loop, "fit", forbidden)


def write_image_folder(root: Path, classes: int = 4, images: int = 4, size: int = 20) -> Path:
    """``root/class<c>/<i>.png``: small images, a different grey per class."""
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(images):
            pixels = np.full((size, size, 3), 40 * c + i, dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("images") / "train")


@pytest.mark.parametrize(
    "change, message",
    [
        (["--backbone", "resnet81"], r"--backbone='resnet81': not a torchvision .*'resnet18'"),
        (
            ["--image-size", "8"],
            r"--image-size=8: conv4 cannot embed 8x8 images .*its smallest size is 16 px: "
            r"pass --image-size >= 16\.",
        ),
        (
            ["--backbone", "squeezenet1_1", "--image-size", "16"],
            r"--image-size=16: squeezenet1_1 cannot embed 16x16 .*smallest size is 17 px",
        ),
        (["--way", "5"], r"--data='.*train': holds 4 classes, and --way is 5; lower --way"),
        (
            ["--shot", "3"],
            r"--data='.*train': 4 of its 4 classes have fewer than shot \+ query "
            r"= 5 images \(the smallest has 4\); lower --shot or --query, or pass "
            r"--skip-small-classes",
        ),
    ],
)
def test_what_the_backbone_and_the_folder_cannot_do_stops_before_training(
    change, message, image_folder, tmp_path, capsys, no_training
):
    arguments = [*TINY, "--data", str(image_folder), "--steps", "2", *change]
    arguments += ["--checkpoint", str(tmp_path / "run.pt"), "--out", str(tmp_path / "s.json")]
    code, out, err = in_process(arguments, capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("python -m litekit.train: error: --"), err
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []


def _read_only(folder: Path) -> Path:
    folder.mkdir()
    folder.chmod(0o555)
    return folder / "run" / "file"


@pytest.mark.parametrize("option", ["--checkpoint", "--out"])
@pytest.mark.parametrize(
    "where, message",
    [
        ("below a file", r"'.*notes\.txt' is a file, not a folder, so nothing can be written"),
        ("a folder", r"this is a folder; pass a file path"),
        ("not writable", r"the folder '.*locked' is not writable .* so the missing folders"),
        pytest.param(
            "read-only",
            r"the folder '.*read-only' is not writable",
            marks=pytest.mark.skipif(not permissions_bind(), reason="root ignores them"),
        ),
    ],
)
def test_unwritable_output_paths_stop_before_training(
    option, where, message, tmp_path, capsys, no_training, monkeypatch
):
    """Found before training, not in a traceback at the end naming a temporary file."""
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "locked").mkdir()
    path = {
        "below a file": tmp_path / "notes.txt" / "summary.json",
        "a folder": tmp_path,
        "not writable": tmp_path / "locked" / "run" / "file",
        "read-only": tmp_path / "read-only" / "run" / "file",
    }[where]
    if where == "read-only":
        _read_only(tmp_path / "read-only")
    # What a read-only mount looks like, for any user (root included), simulated:
    real_access = os.access
    monkeypatch.setattr(
        paths.os, "access", lambda p, mode: Path(p).name != "locked" and real_access(p, mode)
    )
    before = sorted(tmp_path.rglob("*"))
    code, _, err = in_process([*TINY, "--steps", "1", option, str(path)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"error: {option}={str(path)!r}: " in err, err
    assert re.search(message, err), err
    assert sorted(tmp_path.rglob("*")) == before and (tmp_path / "notes.txt").read_text() == "mine"


def test_out_and_checkpoint_must_differ(tmp_path, capsys, no_training):
    same = str(tmp_path / "run")
    code, _, err = in_process([*TINY, "--checkpoint", same, "--out", same], capsys)
    assert code == 2 and "--out=" in err and "this is the --checkpoint file too" in err, err


def test_the_help_points_to_a_readme_section_and_files_that_exist():
    root = Path(__file__).resolve().parents[1]
    text = " ".join(_cli_options.build_parser().format_help().split())  # unwrapped
    sections = re.findall(r"the README's '([^']+)' section", text)
    files = set(re.findall(r"\b[\w/]+\.(?:md|py)\b", text))
    assert sections and {"README.md", "data/README.md"} <= files, text
    headings = re.findall(r"^#+ (.+)$", (root / "README.md").read_text(), flags=re.M)
    assert set(sections) <= set(headings), (sections, headings)
    assert all((root / name).is_file() for name in files), files


def test_every_option_names_itself_in_its_errors():
    """Each option's type callable is made with its option's name: a copy-paste slip would
    report another option."""
    parser = _cli_options.build_parser()
    checked = [a for a in parser._actions if a.option_strings and a.type is not None]
    assert len(checked) > 25
    for action in checked:
        with pytest.raises(argparse.ArgumentTypeError) as error:
            action.type("not-a-value")
        assert str(error.value).startswith(f"{action.option_strings[0]}='not-a-value': ")


@pytest.fixture
def one_gpu(monkeypatch):
    """This process sees one GPU (there is none here), and joining a process group is a test
    failure: the device check must come first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("init_from_environment was called")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(cli, "init_from_environment", forbidden)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "environment",
    [
        {"LOCAL_RANK": "1", "RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"},
        {"LOCAL_RANK": "0", "RANK": "0", "WORLD_SIZE": "2"},  # no LOCAL_WORLD_SIZE
        {"LOCAL_RANK": "0", "RANK": "2", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"},
    ],
)
@pytest.mark.parametrize("device", [["--device", "cuda"], []])  # [] : the default, cuda here
def test_more_processes_than_gpus_on_a_machine_stop_before_training(
    environment, device, one_gpu, monkeypatch, tmp_path, capsys, no_training
):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    arguments = [*TINY_ANY_DEVICE, *device, "--tasks-per-step", "4"]
    code, out, err = in_process([*arguments, "--out", str(tmp_path / "s.json")], capsys)
    assert code == 2 and out == "", err
    default = "the default when a GPU is visible; " if device == [] else ""
    assert f"error: --device='cuda': {default}2 processes on this machine each need a GPU" in err
    assert "but 1 GPU(s) are visible; pass --device cpu, or start at most 1 process" in err
    assert list(tmp_path.iterdir()) == []


def test_one_process_per_gpu_is_accepted(one_gpu, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert _cli_checks.resolve_device(None) == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert _cli_checks.resolve_device("cuda") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    with pytest.raises(ValueError, match=r"^--device='cuda:1': 1 GPU\(s\) are visible"):
        _cli_checks.resolve_device("cuda:1")


def test_fewer_tasks_per_step_than_processes_stop_before_joining(monkeypatch, capsys, no_training):
    monkeypatch.setattr(cli, "init_from_environment", lambda *a: pytest.fail("joined a group"))
    monkeypatch.setenv("WORLD_SIZE", "4")
    code, _, err = in_process([*TINY, "--tasks-per-step", "3"], capsys)
    assert code == 2 and "--tasks-per-step=3: 4 processes share each step's tasks" in err, err


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A one-step checkpoint of the tiny run, and its bytes."""
    path = tmp_path_factory.mktemp("made") / "run.pt"
    assert cli.main([*TINY, "--steps", "1", "--checkpoint", str(path)]) == 0
    return path, path.read_bytes()


def copy_of(made, tmp_path: Path, data: bytes | None = None) -> Path:
    path = tmp_path / "run.pt"
    path.write_bytes(made[1] if data is None else data)
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (["--learner", "simple_cnaps"], r"--learner='simple_cnaps': the checkpoint .* was made "
         r"with --learner 'protonets'; pass that value to resume it"),
        (["--h", "3"], r"--h=3: the checkpoint .* was made with --h 2"),
        (["--backbone", "resnet18"], r"--backbone='resnet18': the checkpoint .* with --backbone"),
        (["--seed", "1"], r"--seed=1: the checkpoint .* was made with --seed 0"),
        (["--no-resume"], r"--checkpoint=.*a checkpoint is already there"),
    ],
)  # fmt: skip
def test_a_checkpoint_made_with_other_options_is_refused_before_training(
    change, message, made, tmp_path, capsys, no_training
):
    path = copy_of(made, tmp_path)
    arguments = [*TINY, "--steps", "2", "--checkpoint", str(path), "--out", str(tmp_path / "s")]
    code, _, err = in_process([*arguments, *change], capsys)
    assert code == 2 and re.search(message, err), err
    assert path.read_bytes() == made[1] and sorted(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[:-100], r"--checkpoint=.*truncated: the payload has"),
        (lambda data: data[:-9] + bytes([data[-9] ^ 4]) + data[-8:], r"--checkpoint=.*SHA-256"),
        (lambda data: b"PK" + data, r"--checkpoint=.*not a litekit checkpoint"),
    ],
)
def test_a_damaged_checkpoint_is_reported_not_loaded_not_overwritten(
    damage, message, made, tmp_path, capsys, no_training
):
    path = copy_of(made, tmp_path, damage(made[1]))
    code, _, err = in_process([*TINY, "--steps", "2", "--checkpoint", str(path)], capsys)
    assert code == 2 and re.search(message, err), err
    assert path.read_bytes() == damage(made[1])


def test_a_checkpoint_of_fit_in_python_is_refused(tmp_path, capsys, no_training):
    from helpers import make_episode, make_learner

    from litekit.train import fit

    learner = make_learner("protonets")
    path = tmp_path / "run.pt"
    fit(learner, [make_episode()], torch.optim.SGD(learner.parameters(), lr=0.1), 1,
        checkpoint=path, progress=False)  # fmt: skip
    code, _, err = in_process([*TINY, "--steps", "2", "--checkpoint", str(path)], capsys)
    assert code == 2 and "made by fit() in Python" in err, err


def test_out_never_overwrites_a_users_file(tmp_path, capsys, no_training):
    notes = tmp_path / "notes.json"
    notes.write_text('{"my": "notes"}')
    code, _, err = in_process([*TINY, "--steps", "1", "--out", str(notes)], capsys)
    assert code == 2 and "--out=" in err and "not a litekit.train summary" in err, err
    assert notes.read_text() == '{"my": "notes"}'


def test_the_module_runs_as_a_script_without_warnings():
    result = subprocess.run(
        [sys.executable, "-m", "litekit.train", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "--tasks-per-step" in result.stdout
    assert "Warning" not in result.stderr, result.stderr
