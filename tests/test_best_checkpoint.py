"""The best checkpoint: the run at its best validation score, kept beside the last one.

A scripted `Scorer` makes the scores known in advance, so the tests know which step must
be kept, and it records the weights it scored, so the kept weights can be compared with
the ones that earned the score."""

from __future__ import annotations

import pytest
import torch
from helpers import make_episode, make_learner

from litekit import Lite, fit
from litekit import checkpoint as checkpoints
from litekit.train.best import best_so_far, improved
from litekit.train.settings import Scorer

EPISODES = [make_episode(n_support=6, way=3, n_query=4, seed=k) for k in range(3)]


class Scripted:
    """Scores ``scores[i]`` at its i-th call, and keeps the weights it was shown."""

    def __init__(self, scores: list[float]) -> None:
        self.scores, self.seen = scores, []

    def score(self, learner, lite) -> tuple[float, float]:
        self.seen.append({k: v.detach().clone() for k, v in learner.state_dict().items()})
        return self.scores[len(self.seen) - 1], 0.05


def run(tmp, scorer, steps, **options):
    torch.manual_seed(0)
    learner = make_learner("protonets")
    optimizer = torch.optim.Adam(learner.parameters(), lr=0.05)
    lite = Lite(3, generator=torch.Generator().manual_seed(0))
    settings = dict(validation=scorer, validate_every=1, progress=False,
                    checkpoint=tmp / "run.pt", best_checkpoint=tmp / "run.best.pt")  # fmt: skip
    return fit(learner, EPISODES, optimizer, steps, lite, **(settings | options))


def test_improved_and_best_so_far():
    assert improved([0.5]) and improved([0.5, 0.6]) and not improved([0.6, 0.6])
    assert not improved([]) and not improved([0.7, 0.6])
    assert best_so_far([0, 5, 10, 15], [0.5, 0.7, 0.6, 0.7]) == (5, 0.7)  # a tie: the first
    assert best_so_far([], []) is None
    assert isinstance(Scripted([]), Scorer)


def test_the_best_validation_is_kept_with_its_weights(tmp_path):
    scorer = Scripted([0.5, 0.7, 0.6, 0.7, 0.4])  # steps 0..4: the best is step 1
    history = run(tmp_path, scorer, 4)
    assert history.val_step == [0, 1, 2, 3, 4] and history.val_accuracy == scorer.scores
    kept = checkpoints.read(tmp_path / "run.best.pt")
    assert kept["step"] == 1 and kept["metadata"]["best"] == {"step": 1, "score": 0.7}
    for name, value in kept["learner"].items():
        assert torch.equal(value, scorer.seen[1][name])  # the weights that scored 0.7
    last = checkpoints.read(tmp_path / "run.pt")
    assert last["step"] == 4
    assert any(not torch.equal(last["learner"][k], v) for k, v in kept["learner"].items())


def test_a_resumed_run_compares_with_the_best_of_its_history(tmp_path):
    run(tmp_path, Scripted([0.5, 0.9, 0.6]), 2)  # best: step 1, 0.9
    resumed = Scripted([0.8, 0.95])  # steps 3 and 4: only step 4 beats 0.9
    history = run(tmp_path, resumed, 4)
    assert history.val_accuracy == [0.5, 0.9, 0.6, 0.8, 0.95]
    kept = checkpoints.read(tmp_path / "run.best.pt")
    assert kept["step"] == 4 and kept["metadata"]["best"]["score"] == 0.95


def test_a_best_checkpoint_resumes_like_any_other(tmp_path):
    run(tmp_path, Scripted([0.5, 0.9, 0.6]), 2)
    (tmp_path / "run.pt").unlink()
    (tmp_path / "run.best.pt").rename(tmp_path / "run.pt")  # continue from the best
    history = run(tmp_path, Scripted([0.1, 0.2]), 3, best_checkpoint=None)
    assert history.val_step == [0, 1, 2, 3] and history.step[-1] == 3


@pytest.mark.parametrize(
    ("setup", "options", "message"),
    [
        (None, {"validation": None}, "best checkpoint is the one of the best validation"),
        ("run.best.pt", {}, "a best checkpoint is already there and this run resumes nothing"),
        (None, {"best_checkpoint": "run.pt"}, "this is the checkpoint file too"),
    ],
)
def test_bad_best_checkpoints_are_refused_before_any_work(tmp_path, setup, options, message):
    if setup:
        (tmp_path / "first").mkdir()
        run(tmp_path / "first", Scripted([0.1, 0.2]), 1)
        (tmp_path / "first" / "run.best.pt").rename(tmp_path / setup)
    if options.get("best_checkpoint") == "run.pt":
        options = {"best_checkpoint": tmp_path / "run.pt"}
    before = sorted(p.name for p in tmp_path.iterdir())
    scorer = Scripted([0.5, 0.6])
    with pytest.raises(ValueError, match=r"^best_checkpoint=") as raised:
        run(tmp_path, scorer, 1, **options)
    assert message in str(raised.value)
    assert scorer.seen == [] and sorted(p.name for p in tmp_path.iterdir()) == before
