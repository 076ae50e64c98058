"""Faults during training: non-finite inputs, interrupts, and what lands on disk."""

from __future__ import annotations

import os
import signal
import stat

import pytest
import torch
from helpers import make_episode, make_learner

from litekit import Episode, Lite, meta_train_step
from litekit import checkpoint as checkpoints
from litekit.train import fit
from litekit.train.step import NonFiniteLossError

TASKS = [make_episode(n_support=6, n_query=6, seed=s) for s in range(4)]


def with_nan_pixel(episode: Episode, image: int = 3) -> Episode:
    support = episode.support_images.clone()
    support[image, 0, 2, 2] = float("nan")
    return Episode(
        support,
        episode.support_labels,
        episode.query_images,
        episode.query_labels,
        episode.class_ids,
    )


def state(learner, optimizer) -> tuple:
    """Weights and optimiser state as plain lists and text, comparable with ``==``."""
    return (
        [v.tolist() for v in learner.state_dict().values()],
        str(optimizer.state_dict()),
    )


@pytest.mark.parametrize("kind", ["protonets", "cnaps"])
def test_a_nan_pixel_stops_the_step_naming_the_task_and_image_with_nothing_changed(kind):
    learner = make_learner(kind)
    optimizer = torch.optim.Adam(learner.parameters(), lr=0.1)
    meta_train_step(learner, TASKS[0], optimizer)  # optimiser state exists
    before = state(learner, optimizer)
    tasks = [TASKS[0], with_nan_pixel(TASKS[1]), TASKS[2]]
    with pytest.raises(NonFiniteLossError, match=r"episodes\[1\].*support_images\[3\] holds 1 non"):
        meta_train_step(learner, tasks, optimizer, lite=Lite(2))
    assert state(learner, optimizer) == before
    assert all(p.grad is None for p in learner.parameters())
    assert all(torch.isfinite(p).all() for p in learner.parameters())


def test_skip_leaves_the_bad_task_out_and_averages_over_the_others():
    """With on_nonfinite="skip" the update is exactly that of a step on the finite tasks."""
    reference, skipping = make_learner("simple_cnaps"), make_learner("simple_cnaps")
    sgd = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (reference, skipping)]
    lites = [Lite(2, subsets={"set": [0, 1], "features": [2, 4]}) for _ in range(3)]
    expected = meta_train_step(reference, [TASKS[0], TASKS[2]], sgd[0], lite=lites[:2])
    got = meta_train_step(
        skipping,
        [TASKS[0], with_nan_pixel(TASKS[1]), TASKS[2]],
        sgd[1],
        lite=lites,
        on_nonfinite="skip",
    )
    assert got.skipped == 1 and expected.skipped == 0
    assert got.loss == pytest.approx(expected.loss, rel=1e-12)
    for a, b in zip(reference.parameters(), skipping.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_a_step_whose_every_task_is_skipped_changes_nothing():
    learner = make_learner("protonets")
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.5)
    before = state(learner, optimizer)
    result = meta_train_step(learner, with_nan_pixel(TASKS[0]), optimizer, on_nonfinite="skip")
    assert result.skipped == 1 and result.loss != result.loss  # NaN
    assert state(learner, optimizer) == before


def test_fit_stops_on_a_nan_task_and_keeps_the_good_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    learner = make_learner("protonets")
    optimizer = torch.optim.Adam(learner.parameters(), lr=0.05)
    tasks = TASKS[:2] + [with_nan_pixel(TASKS[2])]
    fit(learner, tasks, optimizer, 2, checkpoint=path, progress=False)  # tasks 0 and 1
    good = path.read_bytes()
    with pytest.raises(NonFiniteLossError, match="support_images"):
        fit(learner, tasks, optimizer, 4, checkpoint=path, checkpoint_every=1, progress=False)
    assert path.read_bytes() == good
    assert all(torch.isfinite(p).all() for p in learner.parameters())


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    learner = make_learner("protonets")
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    with torch.no_grad():
        next(learner.parameters())[0] = float("inf")
    fingerprint = checkpoints.fingerprint(learner, None, None, 1, 4, None)
    with pytest.raises(ValueError, match=r"^checkpoint='step 3': the weights are not finite"):
        checkpoints.payload(3, fingerprint, learner, optimizer, None, None, {}, None)


class InterruptAt:
    """A list of tasks that sends this process SIGINT (Ctrl-C) when task ``at`` is read."""

    def __init__(self, tasks, at: int) -> None:
        self.tasks, self.at = tasks, at

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, index: int):
        if index == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return self.tasks[index]


def test_ctrl_c_checkpoints_the_last_completed_step_and_the_run_resumes(tmp_path, capsys):
    """The default cadence (steps // 10 = 5) has not saved anything at step 3; the interrupt
    arrives while step 3 loads its task, step 3 finishes, is saved, and fit stops."""
    path = tmp_path / "run.pt"
    learner = make_learner("protonets")
    optimizer = torch.optim.Adam(learner.parameters(), lr=0.05)
    lite = Lite(2, generator=torch.Generator().manual_seed(1))
    with pytest.raises(KeyboardInterrupt):
        fit(learner, InterruptAt(TASKS, at=2), optimizer, 50, lite, checkpoint=path, progress=False)
    assert checkpoints.load(path)["step"] == 3
    assert f"step 3 is saved in {str(path)!r}" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    resumed = make_learner("protonets")
    resumed_optimizer = torch.optim.Adam(resumed.parameters(), lr=0.05)
    resumed_lite = Lite(2, generator=torch.Generator())
    fit(resumed, TASKS, resumed_optimizer, 6, resumed_lite, checkpoint=path, progress=False)
    unbroken = make_learner("protonets")
    unbroken_optimizer = torch.optim.Adam(unbroken.parameters(), lr=0.05)
    fit(
        unbroken,
        TASKS,
        unbroken_optimizer,
        6,
        Lite(2, generator=torch.Generator().manual_seed(1)),
        progress=False,
    )
    for a, b in zip(resumed.parameters(), unbroken.parameters(), strict=True):
        assert torch.equal(a, b)


def test_checkpoints_get_the_permissions_of_a_plain_write(tmp_path):
    path = tmp_path / "run.pt"
    umask = os.umask(0o022)
    try:
        learner = make_learner("protonets")
        fit(
            learner,
            TASKS[:1],
            torch.optim.SGD(learner.parameters(), lr=0.1),
            1,
            checkpoint=path,
            progress=False,
        )
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        path.chmod(0o640)
        fit(
            learner,
            TASKS[:1],
            torch.optim.SGD(learner.parameters(), lr=0.1),
            2,
            checkpoint=path,
            progress=False,
        )
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(umask)
