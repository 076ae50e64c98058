"""Damaged checkpoints are detected before anything is applied, and never overwritten."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from helpers import make_episode, make_learner

from litekit import checkpoint as checkpoints
from litekit.train import fit

TASKS = [make_episode(n_support=6, n_query=6, seed=s) for s in range(3)]


def session(steps: int, path, kind: str = "protonets"):
    """A fresh learner and Adam optimiser, trained by fit with a checkpoint at ``path``."""
    learner = make_learner(kind)
    optimizer = torch.optim.Adam(learner.parameters(), lr=0.05)
    fit(learner, TASKS, optimizer, steps, checkpoint=path, progress=False)
    return learner, optimizer


def snapshot(learner, optimizer) -> tuple:
    return (
        {k: v.clone() for k, v in learner.state_dict().items()},
        copy.deepcopy(optimizer.state_dict()),
        torch.get_rng_state(),
    )


def unchanged(before: tuple, learner, optimizer) -> bool:
    weights, optimizer_state, rng = before
    now = learner.state_dict()
    return (
        all(torch.equal(weights[k], now[k]) for k in weights)
        and str(optimizer.state_dict()) == str(optimizer_state)
        and torch.equal(torch.get_rng_state(), rng)
    )


@pytest.fixture
def saved(tmp_path):
    """A sound 2-step checkpoint and its bytes."""
    path = tmp_path / "run.pt"
    session(2, path)
    return path, path.read_bytes()


def resume_fails(path, match: str) -> None:
    """Resuming from ``path`` fails with ``match``; a trained run's state stays as it was,
    and the file is neither loaded nor overwritten."""
    learner, optimizer = session(1, None)  # optimiser state exists, so it could be clobbered
    before = snapshot(learner, optimizer)
    data = path.read_bytes()
    with pytest.raises(ValueError, match=match):
        fit(learner, TASKS, optimizer, 4, checkpoint=path, progress=False)
    assert unchanged(before, learner, optimizer)
    assert path.read_bytes() == data
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_sound_checkpoint_round_trips_with_its_header(saved):
    path, data = saved
    assert data.startswith(checkpoints.MAGIC)
    payload = checkpoints.load(path)
    assert payload["step"] == 2 and payload["version"] == checkpoints.VERSION
    assert checkpoints._is_checkpoint(path)


@pytest.mark.parametrize("keep", [0.999, 0.5, 0.01])
def test_a_truncated_checkpoint_is_reported_and_not_loaded(saved, keep):
    path, data = saved
    path.write_bytes(data[: int(len(data) * keep)])
    assert not checkpoints._is_checkpoint(path)
    resume_fails(path, r"^checkpoint=.*(truncated|header is damaged)")


def test_a_checkpoint_cut_inside_its_header_is_reported(saved):
    path, data = saved
    path.write_bytes(data[: len(checkpoints.MAGIC) + 10])
    resume_fails(path, r"^checkpoint=.*header is damaged")


def test_flipped_bits_in_the_payload_are_caught_by_the_checksum(saved):
    path, data = saved
    header_end = data.index(b"\n", len(checkpoints.MAGIC)) + 1
    rng = random.Random(0)
    for _ in range(5):
        damaged = bytearray(data)
        position = rng.randrange(header_end, len(data))
        damaged[position] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(damaged))
        resume_fails(path, r"^checkpoint=.*SHA-256 does not match")


def test_flipped_bits_in_the_header_are_caught(saved):
    path, data = saved
    header = data[len(checkpoints.MAGIC) : data.index(b"\n", len(checkpoints.MAGIC))]
    # A digit of the recorded length, then one of the recorded digest.
    for offset in (header.index(b'"bytes": ') + 9, header.index(b'"sha256": "') + 12):
        damaged = bytearray(data)
        damaged[len(checkpoints.MAGIC) + offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        resume_fails(path, r"^checkpoint=.*(header is damaged|bytes, the header says|SHA-256)")


def test_bytes_appended_to_a_checkpoint_are_caught(saved):
    path, data = saved
    path.write_bytes(data + b"\0")
    resume_fails(path, r"^checkpoint=.*longer than written")


def test_a_damaged_magic_line_makes_it_a_file_litekit_will_not_touch(saved):
    path, data = saved
    path.write_bytes(b"X" + data[1:])
    resume_fails(path, r"^checkpoint=.*not a litekit checkpoint.*will not overwrite")


def test_a_bare_torch_save_file_is_not_a_checkpoint_and_is_left_alone(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": checkpoints.FORMAT, "version": 1, "step": 3}, path)
    resume_fails(path, r"^checkpoint=.*not a litekit checkpoint.*will not overwrite")


def test_a_checkpoint_that_does_not_apply_leaves_everything_as_it_was(saved):
    """Sound bytes whose optimiser state does not fit: the learner's weights were already
    loaded when the optimiser failed, and are put back."""
    path, _ = saved
    payload = checkpoints.load(path)
    payload["optimizer"]["param_groups"][0]["params"] = [0]  # one parameter instead of all
    learner, optimizer = session(1, None)
    before = snapshot(learner, optimizer)
    assert not torch.equal(payload["learner"]["backbone.0.weight"], before[0]["backbone.0.weight"])
    with pytest.raises(ValueError, match=r"^checkpoint='step 2': could not be applied"):
        checkpoints.restore(payload, learner, optimizer)
    assert unchanged(before, learner, optimizer)


def test_a_damaged_checkpoint_is_never_overwritten_by_a_new_run(saved):
    path, data = saved
    path.write_bytes(data[:-7])
    learner = make_learner("protonets")
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="neither loads nor overwrites a damaged checkpoint"):
        fit(learner, TASKS, optimizer, 2, checkpoint=path, resume=False, progress=False)
    assert path.read_bytes() == data[:-7]
