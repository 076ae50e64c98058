"""--schedule, --warmup-steps and --augment on the command line: recorded with the run, and a
run interrupted mid-way and resumed equals one unbroken run, weight for weight."""

from __future__ import annotations

import json
import signal

import pytest
import torch

from litekit import checkpoint as checkpoints
from litekit.train import cli, loop

TINY = [
    "--backbone", "conv4", "--width", "4", "--image-size", "32", "--way", "3", "--shot", "2",
    "--query", "2", "--classes", "20", "--images-per-class", "8", "--h", "2",
    "--tasks-per-step", "1", "--validation-tasks", "2", "--validate-every", "2",
    "--device", "cpu", "--quiet", "--threads", "1", "--steps", "4", "--lr", "0.05",
]  # fmt: skip
OPTIONS = ["--schedule", "cosine", "--warmup-steps", "1", "--augment", "--clip-grad-norm", "0.5"]


def _weights(path) -> dict[str, torch.Tensor]:
    return checkpoints.load(path)["learner"]


def _interrupt_at_step(monkeypatch, step: int) -> None:
    """SIGINT during the step ``step`` (1-based; one task per step): fit finishes that step,
    saves it and stops, as on Ctrl-C."""
    real = loop.meta_train_step
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "meta_train_step", counting)


@pytest.mark.parametrize("deterministic", [False, True])
def test_an_interrupted_run_resumed_equals_an_unbroken_one(
    tmp_path, monkeypatch, capsys, deterministic
):
    """Cosine schedule with warm-up and augmentation: the learning rate and the crops are
    functions of the step and the task, so the resumed run makes the same updates (with
    --deterministic too: augmentation is seeded, not nondeterministic)."""
    extra = [*OPTIONS, *(["--deterministic"] if deterministic else [])]
    unbroken = tmp_path / "unbroken.pt"
    assert cli.main([*TINY, *extra, "--checkpoint", str(unbroken)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["options"]["schedule"] == "cosine" and summary["options"]["augment"] is True
    resumed = tmp_path / "resumed.pt"
    with monkeypatch.context() as patch:
        _interrupt_at_step(patch, 2)
        assert cli.main([*TINY, *extra, "--checkpoint", str(resumed)]) == 130
    assert checkpoints.load(resumed)["step"] == 2
    assert cli.main([*TINY, *extra, "--checkpoint", str(resumed)]) == 0
    first, second = _weights(unbroken), _weights(resumed)
    for name in first:
        torch.testing.assert_close(second[name], first[name], rtol=0, atol=0, msg=name)


def test_the_schedule_and_augmentation_change_the_run(tmp_path, capsys):
    runs = {}
    for name, extra in (
        ("plain", []),
        ("cosine", OPTIONS[:4]),
        ("augment", ["--augment"]),
        ("clip", ["--clip-grad-norm", "1e-3"]),
    ):
        path = tmp_path / f"{name}.pt"
        assert cli.main([*TINY, *extra, "--checkpoint", str(path)]) == 0
        runs[name] = _weights(path)
        capsys.readouterr()
    for name in ("cosine", "augment", "clip"):
        assert any(not torch.equal(runs[name][k], runs["plain"][k]) for k in runs["plain"]), name


def test_a_scheduled_checkpoint_resumes_only_over_its_own_steps(tmp_path, capsys):
    path = tmp_path / "run.pt"
    assert cli.main([*TINY, *OPTIONS, "--checkpoint", str(path)]) == 0
    capsys.readouterr()
    longer = [*TINY[:-4], "--steps", "6", "--lr", "0.05", *OPTIONS, "--checkpoint", str(path)]
    assert cli.main(longer) == 2
    err = capsys.readouterr().err
    assert "--steps=6: the checkpoint" in err and "cosine schedule laid out over --steps 4" in err
    assert cli.main([*TINY, "--checkpoint", str(path)]) == 2  # no --schedule: another run
    assert "--schedule='constant': the checkpoint" in capsys.readouterr().err
