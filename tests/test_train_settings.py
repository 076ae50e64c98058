"""fit's settings objects: the grouped form and the plain keywords are the same call."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import make_episode, make_learner

from litekit import Lite
from litekit import checkpoint as checkpoints
from litekit.train import Reporting, Saving, Stepping, fit
from litekit.train.settings import SETTINGS, with_plain_keywords

TASKS = [make_episode(n_support=6, n_query=6, seed=s) for s in range(4)]
VALIDATION = [make_episode(n_support=6, n_query=6, seed=100 + s) for s in range(2)]


def train(path, **options):
    learner = make_learner("protonets")
    optimizer = torch.optim.Adam(learner.parameters(), lr=0.05)
    history = fit(learner, TASKS, optimizer, 4, Lite(2, chunk_size=4), **options)
    weights = [p.detach().clone() for p in learner.parameters()]
    saved = checkpoints.read(path)
    return history.as_dict() | {"seconds": None}, weights, saved["fingerprint"], saved["step"]


def test_grouped_settings_and_plain_keywords_train_the_same_run(tmp_path):
    plain = train(
        tmp_path / "plain.pt",
        query_batch=3, tasks_per_step=2, subset_seed=5, validation=VALIDATION, validate_every=1,
        checkpoint=tmp_path / "plain.pt", checkpoint_every=2, progress=False,
    )  # fmt: skip
    grouped = train(
        tmp_path / "grouped.pt",
        stepping=Stepping(query_batch=3, tasks_per_step=2, subset_seed=5),
        reporting=Reporting(VALIDATION, validate_every=1, progress=False),
        saving=Saving(tmp_path / "grouped.pt", checkpoint_every=2),
    )
    mixed = train(  # a group, with a plain keyword setting one of its fields
        tmp_path / "mixed.pt",
        stepping=Stepping(query_batch=3, tasks_per_step=2),
        subset_seed=5,
        reporting=Reporting(VALIDATION, validate_every=1, progress=False),
        checkpoint=tmp_path / "mixed.pt",
        checkpoint_every=2,
    )
    for other in (grouped, mixed):
        assert other[0] == plain[0] and other[2:] == plain[2:]
        assert all(torch.equal(a, b) for a, b in zip(other[1], plain[1], strict=True))


def test_every_plain_keyword_belongs_to_exactly_one_group():
    names = [f.name for kind in SETTINGS for f in dataclasses.fields(kind)]
    assert len(names) == len(set(names)) == 20
    stepping, reporting, saving = with_plain_keywords(
        None, None, None, {"query_batch": 2, "description": "x", "resume": False}
    )
    assert (stepping.query_batch, reporting.description, saving.resume) == (2, "x", False)


def test_settings_are_checked_when_made_and_unknown_keywords_are_refused():
    with pytest.raises(ValueError, match="^tasks_per_step=0: "):
        Stepping(tasks_per_step=0)
    with pytest.raises(ValueError, match="^validate_every=0: "):
        Reporting(validate_every=0)
    with pytest.raises(ValueError, match="^metadata=3: "):
        Saving(metadata=3)
    learner = make_learner("protonets")
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="'query_batches'"):
        fit(learner, TASKS, optimizer, 1, query_batches=2, progress=False)
    with pytest.raises(ValueError, match="^stepping="):
        fit(learner, TASKS, optimizer, 1, stepping=Reporting(), progress=False)
    assert Reporting().cadence(35) == 3 and Reporting(validate_every=5).cadence(35) == 5
    assert Saving().cadence(3) == 3 and Saving(checkpoint_every=7).cadence(3) == 7
