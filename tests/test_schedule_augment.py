"""Learning-rate schedules (a pure function of the step) and task augmentation (seeded)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import make_episode

from litekit.data.augment import Augment, augment_episode
from litekit.seeding import seeded_generator
from litekit.train.schedule import Schedule


def test_warmup_rises_linearly_then_each_schedule_follows_its_curve():
    steps = 11
    constant = [Schedule("constant", warmup_steps=3).factor(s, steps) for s in range(steps)]
    assert constant[:3] == [0.25, 0.5, 0.75] and constant[3:] == [1.0] * 8
    cosine = [Schedule("cosine", warmup_steps=1).factor(s, steps) for s in range(steps)]
    assert cosine[0] == 0.5 and cosine[1] == 1.0 and cosine[-1] == pytest.approx(0.0, abs=1e-15)
    assert cosine[6] == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 9)))
    assert all(a >= b for a, b in zip(cosine[1:], cosine[2:], strict=False))
    stepped = [Schedule("step").factor(s, steps) for s in range(steps)]
    assert stepped == [1.0] * 5 + [pytest.approx(0.1)] * 3 + [pytest.approx(0.01)] * 3


def test_apply_sets_each_groups_rate_from_its_initial_rate():
    """Groups with different rates (a backbone at a fraction of the head's) keep their ratio,
    and setting step s again gives the same rates: nothing but s is needed to resume."""
    parameters = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
    optimizer = torch.optim.SGD([{"params": [parameters[0]], "lr": 1e-3},
                                 {"params": [parameters[1]], "lr": 1e-4}], lr=1e-3)  # fmt: skip
    schedule = Schedule("cosine", warmup_steps=2)
    for step in (0, 5, 3, 5):
        factor = schedule.apply(optimizer, step, 10)
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(
            [1e-3 * factor, 1e-4 * factor]
        )
    assert [g["initial_lr"] for g in optimizer.param_groups] == [1e-3, 1e-4]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"kind": "linear"}, r"^schedule='linear': choose one of 'constant', 'cosine', 'step'"),
        ({"warmup_steps": -1}, r"^warmup_steps=-1: pass an integer >= 0"),
        ({"milestones": (0.75, 0.5)}, r"^milestones=\(0.75, 0.5\): pass increasing fractions"),
        ({"gamma": 0}, r"^gamma=0: pass a factor in \(0, 1\]"),
    ],
)
def test_bad_schedules_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        Schedule(**arguments)


def test_a_schedule_needs_steps_to_decay_over_and_a_warmup_shorter_than_the_run():
    with pytest.raises(ValueError, match=r"^steps=0: a cosine schedule decays over the run's"):
        Schedule("cosine").check_steps(0)
    with pytest.raises(ValueError, match=r"^--warmup-steps=10: the warm-up must end before"):
        Schedule("cosine", warmup_steps=10).check_steps(10, prefix="--")
    Schedule("constant").check_steps(0)  # nothing to decay: fine
    Schedule("constant", warmup_steps=10).check_steps(5)  # to be resumed with more steps


def test_augmentation_is_a_function_of_the_generator_and_changes_the_images():
    episode = make_episode(n_support=6, way=3, n_query=4)
    augment = Augment()
    first = augment_episode(episode, augment, seeded_generator(0, 7))
    again = augment_episode(episode, augment, seeded_generator(0, 7))
    other = augment_episode(episode, augment, seeded_generator(0, 8))
    torch.testing.assert_close(first.support_images, again.support_images, rtol=0, atol=0)
    torch.testing.assert_close(first.query_images, again.query_images, rtol=0, atol=0)
    assert not torch.equal(first.support_images, other.support_images)
    assert not torch.equal(first.support_images, episode.support_images)
    assert first.support_images.shape == episode.support_images.shape
    assert first.support_images.dtype == torch.float64
    assert torch.equal(first.support_labels, episode.support_labels)


def test_the_identity_augmentation_keeps_every_image_and_a_flip_mirrors_it():
    episode = make_episode()
    images = episode.support_images
    keep = Augment(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=0.0)
    torch.testing.assert_close(keep(images, seeded_generator(1)), images, rtol=0, atol=0)
    mirror = Augment(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=1.0)
    torch.testing.assert_close(mirror(images, seeded_generator(1)), images.flip(-1), rtol=0, atol=0)


def test_a_crop_shows_part_of_the_image_enlarged():
    """A gradient image: a crop of a quarter of its area spans a narrower range of values."""
    ramp = torch.linspace(0, 1, 32).expand(1, 3, 32, 32).contiguous()
    crop = Augment(scale=(0.25, 0.25), ratio=(1.0, 1.0), flip=0.0)(ramp, seeded_generator(2))
    span = crop[0, 0, 0].max() - crop[0, 0, 0].min()
    assert 0.4 < span < 0.6


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"scale": (0.0, 1.0)}, r"^scale="), ({"ratio": (2.0, 1.0)}, r"^ratio="),
     ({"flip": 1.5}, r"^flip=1.5: pass a probability")],
)  # fmt: skip
def test_bad_augmentations_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        Augment(**arguments)


def _fit_run(tmp_path, steps, name="run.pt", **settings):
    from helpers import make_learner

    from litekit import Lite, fit

    torch.manual_seed(0)
    learner = make_learner("simple_cnaps")
    episodes = [make_episode(n_support=6, way=3, n_query=4, seed=k) for k in range(5)]
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.05)
    fit(learner, episodes, optimizer, steps, Lite(2), subset_seed=0, progress=False,
        checkpoint=tmp_path / name, **settings)  # fmt: skip
    return {k: v.clone() for k, v in learner.state_dict().items()}


def test_fit_with_a_warmup_augmentation_and_clipping_resumes_as_an_unbroken_run(tmp_path):
    settings = dict(schedule=Schedule("constant", warmup_steps=2), augment=Augment(seed=3),
                    clip_grad_norm=0.5)  # fmt: skip
    unbroken = _fit_run(tmp_path, 4, "unbroken.pt", **settings)
    _fit_run(tmp_path, 2, "resumed.pt", **settings)
    resumed = _fit_run(tmp_path, 4, "resumed.pt", **settings)
    for name in unbroken:
        torch.testing.assert_close(resumed[name], unbroken[name], rtol=0, atol=0, msg=name)
    plain = _fit_run(tmp_path, 4, "plain.pt")
    assert any(not torch.equal(plain[k], unbroken[k]) for k in plain)


def test_fit_records_the_schedule_augmentation_and_clipping_in_the_checkpoint(tmp_path):
    from litekit import checkpoint as checkpoints

    _fit_run(tmp_path, 2, schedule=Schedule("cosine"), augment=Augment(), clip_grad_norm=1.0)
    fingerprint = checkpoints.load(tmp_path / "run.pt")["fingerprint"]
    assert fingerprint["schedule"]["kind"] == "cosine" and fingerprint["schedule"]["steps"] == 2
    assert fingerprint["augment"]["seed"] == 0 and fingerprint["clip_grad_norm"] == 1.0
    with pytest.raises(ValueError, match=r"^checkpoint=.schedule: saved .*'steps': 2.*now"):
        _fit_run(tmp_path, 3, schedule=Schedule("cosine"), augment=Augment(), clip_grad_norm=1.0)
    with pytest.raises(ValueError, match=r"^checkpoint=.augment: saved"):
        _fit_run(tmp_path, 2, schedule=Schedule("cosine"), clip_grad_norm=1.0)


def test_fit_refuses_two_ways_to_set_the_rate_and_a_schedule_without_room(tmp_path):
    scheduler = torch.optim.lr_scheduler.StepLR(torch.optim.SGD([torch.zeros(1)], lr=1), 1)
    with pytest.raises(ValueError, match=r"^schedule=.*a scheduler is given too"):
        _fit_run(tmp_path, 2, schedule=Schedule("cosine"), scheduler=scheduler)
    with pytest.raises(ValueError, match=r"^warmup_steps=3: the warm-up must end before"):
        _fit_run(tmp_path, 3, schedule=Schedule("step", warmup_steps=3))
    with pytest.raises(ValueError, match=r"^augment='yes': pass a litekit.data.augment.Augment"):
        _fit_run(tmp_path, 1, augment="yes")
    assert not (tmp_path / "run.pt").exists()


def test_clipping_caps_the_gradient_norm_before_each_step_and_keeps_its_direction():
    from litekit.train.clipping import clip_before_step

    weight = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    handle = clip_before_step(optimizer, 2.0)
    weight.grad = torch.tensor([30.0, 40.0, 0.0], dtype=torch.float64)  # norm 50
    optimizer.step()
    torch.testing.assert_close(
        weight.detach(), -0.1 * torch.tensor([1.2, 1.6, 0.0], dtype=torch.float64)
    )
    weight.grad = torch.tensor([0.3, 0.4, 0.0], dtype=torch.float64)  # under the cap: as it is
    before = weight.detach().clone()
    optimizer.step()
    torch.testing.assert_close(weight.detach() - before, -0.1 * weight.grad)
    handle.remove()
    with pytest.raises(ValueError, match=r"^clip_grad_norm=0: pass a positive number"):
        clip_before_step(optimizer, 0)
