"""fit under two gloo processes equals fit in one: sharded tasks (an uneven split), per-task
LITE subsets, gathered validation, a DDP-wrapped learner, rank-0 checkpoints, resume from a
checkpoint written by a one-process run, and errors raised on both ranks together."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import make_episode, make_learner

from litekit import Lite
from litekit import checkpoint as checkpoints
from litekit.distributed import CollectiveError
from litekit.train import evaluate, fit

TASKS = [make_episode(n_support=6, n_query=5, seed=s) for s in range(7)]
VALIDATION = [make_episode(n_support=6, n_query=5, seed=100 + s) for s in range(5)]
TASKS_PER_STEP = 3  # two ranks: 2 tasks on rank 0, 1 on rank 1, every step
STEPS, FIRST_SESSION = 4, 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session(learner, steps: int, checkpoint=None):
    """fit with Adam, LITE h=2 (seeded per task) and validation every step."""
    optimizer = torch.optim.Adam(learner.parameters(), lr=0.05)
    history = fit(
        learner,
        TASKS,
        optimizer,
        steps,
        Lite(2, chunk_size=4),
        query_batch=2,
        tasks_per_step=TASKS_PER_STEP,
        validation=VALIDATION,
        validate_every=1,
        checkpoint=checkpoint,
        progress=False,
        subset_seed=5,
    )
    return history, optimizer


def flat(learner) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in learner.parameters()])


def worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        results: dict = {"errors": {}}
        learner = make_learner("simple_cnaps", seed=rank)  # weights: from the checkpoint
        model = torch.nn.parallel.DistributedDataParallel(learner)  # fit unwraps it
        # Only rank 0's checkpoint path counts: rank 1's folder must never appear.
        path = os.path.join(out_dir, "run.pt") if rank == 0 else os.path.join(out_dir, "no", "x")
        history, optimizer = session(model, STEPS, checkpoint=path)
        results["parameters"] = flat(learner)
        results["history"] = history.as_dict()
        results["optimizer"] = str(optimizer.state_dict())
        results["evaluation"] = evaluate(learner, VALIDATION, across_ranks=True).accuracies
        for name, arguments in {
            "too_few_tasks": {"tasks_per_step": 1},
            "no_subset_seed": {"subset_seed": None},
        }.items():
            options = {"tasks_per_step": 2, "subset_seed": 1} | arguments
            try:
                fit(learner, TASKS, optimizer, 1, Lite(2), progress=False, **options)
            except CollectiveError as error:
                results["errors"][name] = str(error)
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()  # both ranks done before either tears the group down
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_two_processes_resume_a_one_process_checkpoint_and_match_one_process(tmp_path):
    # A first session of one process, then the two-process run resumes its checkpoint.
    session(make_learner("simple_cnaps"), FIRST_SESSION, checkpoint=tmp_path / "run.pt")
    mp.start_processes(
        worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True, start_method="spawn"
    )
    unbroken = make_learner("simple_cnaps")
    history, optimizer = session(unbroken, STEPS)
    expected = history.as_dict()
    saved = checkpoints.load(tmp_path / "run.pt")
    assert saved["step"] == STEPS
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        # float64 throughout: only summation order differs (gloo's sum of two partial means).
        torch.testing.assert_close(result["parameters"], flat(unbroken), rtol=1e-12, atol=1e-14)
        for key in ("step", "val_step", "val_accuracy", "val_ci95"):
            assert result["history"][key] == expected[key], key
        for key in ("loss", "accuracy"):
            assert result["history"][key] == pytest.approx(expected[key], rel=1e-12), key
        assert result["evaluation"] == evaluate(unbroken, VALIDATION).accuracies
        assert "tasks_per_step=1" in result["errors"]["too_few_tasks"]
        assert "subset_seed=None" in result["errors"]["no_subset_seed"]
    for name, value in unbroken.state_dict().items():
        torch.testing.assert_close(saved["learner"][name], value, rtol=1e-12, atol=1e-14)
    assert saved["history"]["val_accuracy"] == expected["val_accuracy"]
    assert not (tmp_path / "no").exists()
