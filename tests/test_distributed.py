"""Two processes on the CPU (gloo): the averaged gradient equals one process on all tasks."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import gradient, make_episode, make_learner, relative_error

import litekit.distributed
import litekit.train.step
from litekit import Lite, meta_train_step
from litekit.distributed import StepSums, shard, task_share

TASKS = 4
CASES = {
    "protonets-full": ("protonets", None),
    "simple_cnaps-lite": ("simple_cnaps", {"set": [0, 4], "features": [1, 2]}),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_step(kind: str, subsets: dict | None, task_ids: list[int]):
    """One SGD step of a freshly built learner on the given tasks: (gradient, parameters)."""
    learner = make_learner(kind)
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    lite = None if subsets is None else Lite(2, subsets=subsets)
    tasks = [make_episode(n_support=6, n_query=4, seed=10 + k) for k in task_ids]
    meta_train_step(learner, tasks, optimizer, lite=lite, query_batch=3)
    gradient = torch.cat([p.grad.flatten() for p in learner.parameters()])
    parameters = torch.cat([p.detach().flatten() for p in learner.parameters()])
    return gradient, parameters


def worker(rank: int, world: int, port: int, kind: str, subsets, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        result = one_step(kind, subsets, shard(range(TASKS), rank, world))
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()  # both ranks done before either tears the group down
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_gloo_processes_match_one_process(case, tmp_path):
    kind, subsets = CASES[case]
    mp.start_processes(
        worker,
        args=(2, free_port(), kind, subsets, str(tmp_path)),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    single_gradient, single_parameters = one_step(kind, subsets, list(range(TASKS)))
    for rank in range(2):
        gradient, parameters = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(gradient, single_gradient, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(parameters, single_parameters, rtol=1e-12, atol=1e-15)


def test_shards_cover_every_task_once():
    shards = [shard(range(10), rank, 3) for rank in range(3)]
    assert sorted(sum(shards, [])) == list(range(10))
    assert shards[1] == [1, 4, 7]


def fake_world(monkeypatch: pytest.MonkeyPatch, rank: int, world: int) -> None:
    """This one process answers as rank ``rank`` of ``world`` (no process group is made)."""
    monkeypatch.setattr(litekit.distributed, "rank_and_world", lambda: (rank, world))
    monkeypatch.setattr(litekit.distributed, "is_distributed", lambda: world > 1)


@pytest.mark.parametrize(("world", "total"), [(1, 3), (2, 4), (2, 5), (3, 7), (4, 4)])
def test_task_share_weights_each_task_world_over_total(monkeypatch, world, total):
    """Under a faked world of W processes, each rank's share of a T-task step (its
    `shard`) carries the weight W/T per task, equal shares or not; `finish_step` then
    averages over the W ranks, so every task's gradient ends with weight (W/T)/W = 1/T:
    Σ_r mine_r · weight_r / W = 1. Left out, ``total_tasks`` is this rank's count times W."""
    shares = []
    for rank in range(world):
        fake_world(monkeypatch, rank, world)
        mine = len(shard(range(total), rank, world))
        share = task_share(mine, total)
        assert (share.mine, share.total, share.world) == (mine, total, world)
        assert share.weight == world / total
        shares.append(share)
    assert sum(s.mine for s in shares) == total
    assert sum(s.mine * s.weight for s in shares) / world == pytest.approx(1.0, rel=1e-15)
    fake_world(monkeypatch, 0, world)
    default = task_share(2, None)
    assert default.total == 2 * world and default.weight == pytest.approx(1 / 2, rel=1e-15)


def test_one_process_per_rank_simulation_gives_the_mean_over_all_tasks(monkeypatch):
    """The weights `meta_train_step` applies under torchrun, in one process: for each rank r
    of a faked world of W = 2, a step on its shard of T = 5 tasks (3 and 2: W does not divide
    T), with the two collectives stood in for (checks run locally; the step's task counts
    summed as the all-reduce would); each rank's accumulated gradient is kept, and their
    average (what `finish_step` averages) is the mean of the five tasks' gradients, each
    computed on its own, to float64 round-off. A weight of 1/T instead of W/T would
    give half of it, and 1/(tasks on the rank) a different mix."""
    kind, world, total = "simple_cnaps", 2, 5
    tasks = [make_episode(n_support=6, n_query=4, seed=30 + k) for k in range(total)]
    lite = Lite(2, subsets={"set": [0, 3], "features": [1, 5]})
    expected = sum(gradient(make_learner(kind), t, lite) for t in tasks) / total

    def local(check, **_):
        return check()

    def summed_counts(parameters, share, sums):
        assert (sums.counted, sums.skipped, sums.failed) == (share.mine, 0, 0)
        return StepSums(sums.loss_sum, sums.accuracy_sum, share.total, 0, 0)

    monkeypatch.setattr(litekit.train.step, "same_outcome_on_every_rank", local)
    monkeypatch.setattr(litekit.train.step, "finish_step", summed_counts)
    per_rank = []
    for rank in range(world):
        fake_world(monkeypatch, rank, world)
        learner = make_learner(kind)
        mine = [tasks[k] for k in shard(range(total), rank, world)]
        optimizer = torch.optim.SGD(learner.parameters(), lr=0.0)
        meta_train_step(learner, mine, optimizer, lite=lite, total_tasks=total)
        per_rank.append(torch.cat([p.grad.flatten() for p in learner.parameters()]))
    assert relative_error(sum(per_rank) / world, expected) < 1e-12


def faulty_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    """Rank 1 alone holds a bad task (a query label outside its classes) in the first step,
    and a NaN pixel in the second; rank 0's tasks are sound. Each rank records what it
    raised, and whether a flag raised on rank 1 alone reached rank 0."""
    from litekit.distributed import on_any_rank

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    outcomes = []
    try:
        torch.set_num_threads(1)
        learner = make_learner("protonets")
        optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
        task = make_episode(n_support=6, way=3, n_query=4, seed=rank)
        bad_labels = make_episode(n_support=6, way=3, n_query=4, seed=5)
        bad_labels.query_labels[0] = 7
        nan_pixel = make_episode(n_support=6, way=3, n_query=4, seed=6)
        nan_pixel.support_images[2, 0, 0, 0] = float("nan")
        for bad in (bad_labels, nan_pixel):
            try:
                meta_train_step(learner, bad if rank == 1 else task, optimizer)
                outcomes.append("no error")
            except ValueError as error:
                outcomes.append(f"{type(error).__name__}: {error}")
        outcomes.append(f"flag {on_any_rank(rank == 1)}")
        torch.save(outcomes, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_a_bad_task_on_one_rank_raises_on_every_rank(tmp_path):
    """No rank is left waiting in a collective: both ranks raise the same error, and a
    non-finite loss is still a NonFiniteLossError under torchrun."""
    from litekit.train.step import CollectiveNonFiniteLossError, NonFiniteLossError

    mp.start_processes(
        faulty_worker,
        args=(2, free_port(), str(tmp_path)),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for labels, nan, flag in ranks:
        assert labels.startswith("CollectiveError: query_labels=[7]")
        assert nan.startswith("CollectiveNonFiniteLossError: episodes[0]=support_images[2]")
        assert flag == "flag True"
    assert issubclass(CollectiveNonFiniteLossError, NonFiniteLossError)
