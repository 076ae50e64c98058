"""fit: history, validation, checkpoints (resume equals an unbroken run), atomic writes."""

from __future__ import annotations

import os

import pytest
import torch
from helpers import make_episode, make_learner

from litekit import EpisodeSampler, Lite, ProtoNets, episode_loader, evaluate
from litekit import checkpoint as checkpoints
from litekit.data import ProceduralImages
from litekit.learners import conv4
from litekit.train import History, confidence_interval, fit

TASKS = [make_episode(n_support=6, n_query=6, seed=s) for s in range(5)]
VALIDATION = [make_episode(n_support=6, n_query=6, seed=100 + s) for s in range(3)]


def run(kind="simple_cnaps", steps=6, checkpoint=None, episodes=TASKS, **options):
    """A fresh learner, optimiser and seeded Lite, trained by fit; returns all three."""
    learner = make_learner(kind)
    optimizer = torch.optim.Adam(learner.parameters(), lr=0.05)
    lite = Lite(2, chunk_size=4, generator=torch.Generator().manual_seed(7))
    options = {"validation": VALIDATION, "validate_every": 2, "progress": False} | options
    history = fit(
        learner, episodes, optimizer, steps, lite, query_batch=3, checkpoint=checkpoint, **options
    )
    return learner, optimizer, history


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def comparable(history: History) -> dict:
    values = history.as_dict()
    values.pop("seconds")  # wall time differs between runs
    return values


def test_history_records_every_step_and_each_validation():
    learner, _, history = run(steps=5)
    assert history.step == [1, 2, 3, 4, 5]
    assert len(history.loss) == len(history.accuracy) == len(history.seconds) == 5
    assert history.val_step == [0, 2, 4, 5]
    assert all(0.0 <= a <= 1.0 for a in history.val_accuracy)
    final = evaluate(learner, VALIDATION)
    assert history.val_accuracy[-1] == final.mean and history.val_ci95[-1] == final.ci95
    assert history.seconds == sorted(history.seconds)


@pytest.mark.parametrize("kind", ["protonets", "simple_cnaps"])
def test_resumed_run_equals_unbroken_run(tmp_path, kind):
    unbroken, unbroken_optimizer, unbroken_history = run(kind, steps=7)
    path = tmp_path / "run.pt"
    # A first session of 4 steps (it ends on a validation step, as the unbroken run
    # validates there too: a session always validates at its last step).
    run(kind, steps=4, checkpoint=path)
    resumed, resumed_optimizer, resumed_history = run(kind, steps=7, checkpoint=path)
    assert same_state(resumed, unbroken)
    assert str(resumed_optimizer.state_dict()) == str(unbroken_optimizer.state_dict())
    assert comparable(resumed_history) == comparable(unbroken_history)


class Crashing:
    """A list of episodes whose ``crash_at``-th read raises, once, like a killed process."""

    def __init__(self, episodes, crash_at):
        self.episodes, self.crash_at, self.reads = episodes, crash_at, 0

    def __len__(self):
        return len(self.episodes)

    def __getitem__(self, index):
        self.reads += 1
        if self.reads == self.crash_at + 1:
            raise RuntimeError("killed")
        return self.episodes[index]


def test_run_interrupted_mid_way_resumes_from_its_last_checkpoint(tmp_path):
    unbroken, _, unbroken_history = run(steps=8)
    path = tmp_path / "run.pt"
    episodes = Crashing(TASKS, crash_at=5)  # the 6th read: step 6 dies
    with pytest.raises(RuntimeError, match="killed"):
        run(steps=8, checkpoint=path, episodes=episodes, checkpoint_every=2)
    assert checkpoints.load(path)["step"] == 4
    resumed, _, resumed_history = run(steps=8, checkpoint=path, episodes=episodes)
    assert same_state(resumed, unbroken)
    assert comparable(resumed_history) == comparable(unbroken_history)


def test_resume_with_an_episode_loader_restarts_at_the_right_episode(tmp_path):
    data = ProceduralImages(num_classes=20, images_per_class=6, image_size=32, seed=3)
    loader = episode_loader(
        data, EpisodeSampler(data, way=3, shot=2, query_per_class=2, episodes=4, seed=1)
    )

    def session(steps, checkpoint=None):
        torch.manual_seed(0)
        learner = ProtoNets(conv4(width=4, depth=2, groups=2))
        optimizer = torch.optim.SGD(learner.parameters(), lr=0.1, momentum=0.9)
        lite = Lite(3, chunk_size=2, generator=torch.Generator().manual_seed(0))
        history = fit(
            learner, loader, optimizer, steps, lite, checkpoint=checkpoint, progress=False
        )
        return learner, history

    unbroken, unbroken_history = session(6)  # cycles through the 4 episodes
    path = tmp_path / "nested" / "run.pt"
    session(3, path)
    resumed, resumed_history = session(6, path)
    assert same_state(resumed, unbroken)
    assert comparable(resumed_history) == comparable(unbroken_history)


def test_validation_does_not_change_training():
    with_validation, _, _ = run(steps=4, validation=VALIDATION, validate_every=1)
    without, _, _ = run(steps=4, validation=None)
    assert same_state(with_validation, without)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    run(steps=2, checkpoint=path)
    before = path.read_bytes()

    def failing_save(payload, file):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(ValueError, match=r"^checkpoint=.*could not be written \(disk full\)"):
        run(steps=4, checkpoint=path)
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert os.listdir(tmp_path) == ["run.pt"]  # and no temporary file is left behind


def test_never_overwrites_a_users_file_or_an_unasked_checkpoint(tmp_path):
    notes = tmp_path / "notes.pt"
    notes.write_text("my notes")
    learner = make_learner("protonets")
    before = [p.detach().clone() for p in learner.parameters()]
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="^checkpoint=.*not a litekit checkpoint"):
        fit(learner, TASKS, optimizer, 2, checkpoint=notes, progress=False)
    assert notes.read_text() == "my notes"
    with pytest.raises(ValueError, match="^checkpoint=.*folder"):
        fit(learner, TASKS, optimizer, 2, checkpoint=tmp_path, progress=False)
    path = tmp_path / "run.pt"
    other = make_learner("protonets")
    fit(
        other,
        TASKS,
        torch.optim.SGD(other.parameters(), lr=0.1),
        1,
        checkpoint=path,
        progress=False,
    )
    saved = path.read_bytes()
    with pytest.raises(ValueError, match="^checkpoint=.*resume=True"):
        fit(learner, TASKS, optimizer, 2, checkpoint=path, resume=False, progress=False)
    assert path.read_bytes() == saved
    assert all(torch.equal(a, b) for a, b in zip(before, learner.parameters(), strict=True))


def test_checkpoint_of_another_set_up_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    run(steps=2, checkpoint=path)
    learner = make_learner("simple_cnaps")
    optimizer = torch.optim.Adam(learner.parameters(), lr=0.05)
    with pytest.raises(ValueError, match="^checkpoint=.*lite: saved"):
        fit(learner, TASKS, optimizer, 4, Lite(3), query_batch=3, checkpoint=path, progress=False)


def test_bad_arguments_are_rejected_before_any_work(tmp_path):
    learner = make_learner("protonets")
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    cases = [
        ({"steps": 0}, "^steps=0"),
        ({"tasks_per_step": 0}, "^tasks_per_step=0"),
        ({"query_batch": 0}, "^query_batch=0"),
        ({"validate_every": 0}, "^validate_every=0"),
        ({"checkpoint_every": -1}, "^checkpoint_every=-1"),
        ({"lite": 3}, "^lite=3"),
        ({"episodes": 5}, "^episodes='int'"),
        ({"episodes": []}, "^episodes="),
        ({"validation": 7}, "^validation='int'"),
        ({"validation": []}, "^validation="),
    ]
    for change, message in cases:
        arguments = {"episodes": TASKS, "steps": 2, "lite": None} | change
        with pytest.raises(ValueError, match=message):
            fit(
                learner,
                arguments.pop("episodes"),
                optimizer,
                arguments.pop("steps"),
                arguments.pop("lite"),
                progress=False,
                checkpoint=tmp_path / "x.pt",
                **arguments,
            )
    assert not (tmp_path / "x.pt").exists()


def test_evaluate_without_episodes_names_them():
    with pytest.raises(ValueError, match="^episodes=.*pass at least one episode"):
        evaluate(make_learner("protonets"), [])


def test_a_plain_iterable_that_runs_out_is_an_error_naming_the_fix():
    learner = make_learner("protonets")
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="ran out after 5, and episode 5"):
        fit(learner, iter(TASKS), optimizer, 6, progress=False)


def test_evaluate_reports_per_task_accuracies_and_the_stated_interval():
    learner = make_learner("protonets")
    result = evaluate(learner, VALIDATION)
    assert len(result.accuracies) == len(VALIDATION)
    n = len(result.accuracies)
    mean = sum(result.accuracies) / n
    s = (sum((a - mean) ** 2 for a in result.accuracies) / (n - 1)) ** 0.5
    assert result.mean == pytest.approx(mean) and result.ci95 == pytest.approx(1.96 * s / n**0.5)
    assert confidence_interval([0.5, 0.7]) == pytest.approx((0.6, 1.96 * 0.1414213562 / 2**0.5))


def test_evaluate_leaves_the_global_random_stream_alone():
    learner = make_learner("protonets")
    state = torch.get_rng_state()
    evaluate(learner, VALIDATION, Lite(2, chunk_size=2))
    assert torch.equal(torch.get_rng_state(), state)
