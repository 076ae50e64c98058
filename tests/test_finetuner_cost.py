"""FineTuner (never touches the caller's backbone) and the cost-to-personalise measures."""

from __future__ import annotations

import pytest
import torch
from helpers import make_episode, tiny_backbone
from torch import nn

from litekit import FineTuner, Lite, ProtoNets, evaluate
from litekit.cost import count_flops, peak_memory_of, personalisation_cost

OPTIONS = [
    {},
    {"tune": ["0"]},
    {"tune": "all", "optimizer": "sgd", "batch_size": 4},
    {"tune_film": True, "batch_size": 3},
]


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("options", OPTIONS)
def test_finetuner_leaves_the_backbone_untouched(options):
    backbone = tiny_backbone().double()
    before = snapshot(backbone)
    learner = FineTuner(backbone, steps=5, lr=0.5, **options)
    episode = make_episode()
    logits = learner(episode.support_images, episode.support_labels, episode.query_images)
    assert logits.shape == (episode.n_query, episode.way)
    after = snapshot(backbone)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in backbone.parameters())
    assert all(not m._forward_hooks for m in backbone.modules())


def wide_backbone() -> nn.Module:
    """16-dimensional features: nine generic points in 16 dimensions are linearly separable."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.GroupNorm(4, 16),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).double()


@pytest.mark.parametrize("options", OPTIONS)
def test_finetuning_really_trains(options):
    """With queries = support images, a tuned head fits its own training set."""
    learner = FineTuner(wide_backbone(), steps=150, lr=0.05, **options)
    episode = make_episode(n_support=9, way=3)
    logits = learner(episode.support_images, episode.support_labels, episode.support_images)
    accuracy = (logits.argmax(1) == episode.support_labels).double().mean()
    assert accuracy >= 8 / 9


def test_tuning_changes_the_features_it_uses():
    """Tuning the first conv gives other logits than training the head alone."""
    episode = make_episode()
    args = (episode.support_images, episode.support_labels, episode.query_images)
    head = FineTuner(tiny_backbone().double(), steps=20, lr=0.1)(*args)
    tuned = FineTuner(tiny_backbone().double(), steps=20, lr=0.1, tune=["0"])(*args)
    assert not torch.allclose(head, tuned)


def test_same_seed_same_logits_and_works_under_no_grad():
    episode = make_episode()
    args = (episode.support_images, episode.support_labels, episode.query_images)
    learner = FineTuner(tiny_backbone().double(), steps=10, batch_size=3, tune=["0"], seed=4)
    first = learner(*args)
    with torch.no_grad():
        second = learner(*args)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    other = FineTuner(tiny_backbone().double(), steps=10, batch_size=3, tune=["0"], seed=5)(*args)
    assert not torch.equal(first, other)


def test_backbone_learning_rate_is_separate_from_the_head():
    """A vanishing backbone rate gives the head-only result; the head's rate still trains."""
    episode = make_episode()
    args = (episode.support_images, episode.support_labels, episode.query_images)
    head = FineTuner(wide_backbone(), steps=15, lr=0.1)(*args)
    frozen = FineTuner(wide_backbone(), steps=15, lr=0.1, backbone_lr=1e-30, tune="all")(*args)
    torch.testing.assert_close(frozen, head, rtol=1e-9, atol=1e-9)
    tuned = FineTuner(wide_backbone(), steps=15, lr=0.1, backbone_lr=0.1, tune="all")(*args)
    same = FineTuner(wide_backbone(), steps=15, lr=0.1, tune="all")(*args)
    torch.testing.assert_close(tuned, same, rtol=0, atol=0)  # None means lr
    assert not torch.allclose(tuned, head)
    for optimizer in ("adam", "sgd"):
        learner = FineTuner(tiny_backbone(), lr=0.1, backbone_lr=0.01, optimizer=optimizer)
        groups = learner._make_optimizer([torch.zeros(1)], [torch.zeros(1)]).param_groups
        assert [g["lr"] for g in groups] == [0.1, 0.01]


def test_finetuner_is_evaluated_like_any_learner():
    learner = FineTuner(tiny_backbone().double(), steps=5)
    result = evaluate(learner, [make_episode(seed=s) for s in range(3)])
    assert len(result.accuracies) == 3


@pytest.mark.parametrize(
    ("kwargs", "starts"),
    [
        ({"tune": ["layer9"]}, "tune="),
        ({"lr": 0.0}, "lr=0.0"),
        ({"backbone_lr": -1.0}, "backbone_lr=-1.0"),
        ({"steps": 0}, "steps=0"),
        ({"optimizer": "lbfgs"}, "optimizer='lbfgs'"),
        ({"batch_size": 0}, "batch_size=0"),
    ],
)
def test_bad_finetuner_arguments(kwargs, starts):
    with pytest.raises(ValueError, match=f"^{starts}"):
        FineTuner(tiny_backbone(), **kwargs)


def test_counted_conv_flops_match_the_formula():
    """FLOPs of a convolution = 2 · B · C_out · H_out · W_out · C_in · k_h · k_w."""
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False)
    images = torch.randn(2, 3, 16, 16)
    _, flops = count_flops(conv, images)
    assert flops == 2 * 2 * 8 * 16 * 16 * 3 * 3 * 3
    strided = nn.Conv2d(4, 6, kernel_size=5, stride=2, bias=False)
    _, flops = count_flops(strided, torch.randn(1, 4, 21, 21))
    assert flops == 2 * 1 * 6 * 9 * 9 * 4 * 5 * 5


def test_backward_flops_are_counted_too():
    """A linear layer's backward (grad input + grad weight) costs twice its forward."""
    layer = nn.Linear(10, 7, bias=False)
    x = torch.randn(5, 10, requires_grad=True)
    _, forward = count_flops(layer, x)
    _, both = count_flops(lambda: layer(x).sum().backward())
    assert forward == 2 * 5 * 10 * 7 and both == 3 * forward


def test_personalisation_cost_of_finetuning_dwarfs_one_forward_pass():
    episode = make_episode(n_support=9)
    proto = personalisation_cost(ProtoNets(tiny_backbone().double()), episode, repeats=1)
    tuner = FineTuner(tiny_backbone().double(), steps=20, tune="all")
    tuned = personalisation_cost(tuner, episode, repeats=1, lite=Lite(0, chunk_size=4))
    assert proto.tuned_per_task == 0 and proto.flops > 0
    backbone_size = sum(p.numel() for p in tuner.backbone.parameters())
    assert tuned.tuned_per_task == backbone_size + 3 * 3 + 3
    assert tuned.flops > 20 * proto.flops
    assert tuned.parameters == proto.parameters
    assert tuned.seconds > 0 and proto.seconds > 0
    for cost in (tuned, proto):  # the median of the timed calls, inside their range
        assert 0 < cost.seconds_min <= cost.seconds <= cost.seconds_max
    assert tuned.peak_memory_mib > proto.peak_memory_mib > 0


def test_minibatches_sweep_each_epoch_without_repeats():
    """Every step takes the next unseen rows of the current random order, epoch by epoch."""
    learner = FineTuner(tiny_backbone(), steps=6, batch_size=4)
    batches = [b.tolist() for b in learner._batches(10, torch.Generator().manual_seed(0))]
    assert [len(b) for b in batches] == [4] * 6
    for first, second in zip(batches[::2], batches[1::2], strict=True):  # one epoch each
        assert not set(first) & set(second)
    whole = FineTuner(tiny_backbone(), steps=3)._batches(10, torch.Generator().manual_seed(0))
    assert all(sorted(b.tolist()) == list(range(10)) for b in whole)


MIB = 2**20


def test_peak_memory_off_cuda_is_the_peak_of_the_tensors_the_call_creates():
    """Read by `litekit.measure.CreatedTensorMemory` (tested in tests/test_measure_step.py)."""

    def work():
        a = torch.empty(MIB, dtype=torch.uint8)
        b = torch.empty(2 * MIB, dtype=torch.uint8)
        del a
        return b

    result, mib, how = peak_memory_of(work, torch.device("cpu"))
    assert mib == 3.0 and "tensors" in how and result.numel() == 2 * MIB


def test_memory_measure_does_not_depend_on_what_ran_before():
    """The resident set of a process hides reused memory; counted tensors do not."""
    episode = make_episode(n_support=9)
    proto = ProtoNets(tiny_backbone().double())
    first = personalisation_cost(proto, episode, repeats=1)
    personalisation_cost(FineTuner(tiny_backbone().double(), steps=5, tune="all"), episode)
    again = personalisation_cost(proto, episode, repeats=1)
    assert again.peak_memory_mib == first.peak_memory_mib > 0
    assert again.flops == first.flops


# --- the cost in a precision and memory layout ---------------------------------------------


def float32_episode(n_support: int = 8) -> object:
    episode = make_episode(n_support=n_support)
    return type(episode)(
        episode.support_images.float(), episode.support_labels,
        episode.query_images.float(), episode.query_labels, episode.class_ids,
    )  # fmt: skip


def dtypes_seen(module: nn.Module) -> list[tuple[torch.dtype, bool]]:
    """Output dtype of the first convolution, and whether its kernel was channels-last, for
    every call on more than one image (one-image calls probe the embedding size)."""
    seen = []

    def hook(conv: nn.Conv2d, inputs, output) -> None:
        if inputs[0].shape[0] > 1:
            seen.append(
                (output.dtype, conv.weight.is_contiguous(memory_format=torch.channels_last))
            )

    next(m for m in module.modules() if isinstance(m, nn.Conv2d)).register_forward_hook(hook)
    return seen


def test_a_meta_learners_cost_is_measured_in_its_lites_precision():
    episode = float32_episode()
    proto = ProtoNets(tiny_backbone().float())
    seen = dtypes_seen(proto)
    cost = personalisation_cost(proto, episode, repeats=1, precision="bf16", channels_last=True)
    assert (cost.precision, cost.channels_last) == ("bf16", True)
    assert seen and set(seen) == {(torch.bfloat16, True)}
    assert proto.backbone[0].weight.is_contiguous()  # the kernels as they were
    seen.clear()
    default = personalisation_cost(proto, episode, repeats=1, lite=Lite(0, precision="fp16"))
    assert default.precision == "fp16" and set(seen) == {(torch.float16, False)}
    assert cost.as_dict()["precision"] == "bf16"


def test_a_finetuners_cost_uses_its_own_fields_set_for_the_measurement():
    episode = float32_episode()
    tuner = FineTuner(tiny_backbone().float(), steps=2, tune="all")
    seen = dtypes_seen(tuner.backbone)
    cost = personalisation_cost(tuner, episode, repeats=1, precision="fp16", channels_last=True)
    assert (cost.precision, cost.channels_last) == ("fp16", True)
    assert seen and set(seen) == {(torch.float16, True)}
    assert (tuner.precision, tuner.channels_last) == ("fp32", False)  # restored
    seen.clear()
    own = personalisation_cost(FineTuner(tuner.backbone, steps=2, precision="bf16"), episode,
                               repeats=1)  # fmt: skip
    assert own.precision == "bf16" and set(seen) == {(torch.bfloat16, False)}
    with pytest.raises(ValueError, match="^precision='fp8'"):
        personalisation_cost(tuner, episode, precision="fp8")
