"""Mixed precision and channels-last: values exact, expectation unbiased up to rounding."""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import (
    IMAGE_SHAPE,
    gradient,
    make_episode,
    make_learner,
    relative_error,
    subsets,
    tiny_backbone,
)

from litekit import Episode, Lite, lite_forward, meta_train_step
from litekit import checkpoint as checkpoints
from litekit.determinism import _deterministic_kernels_in_use
from litekit.lite import embed_without_grad
from litekit.train import fit

#: bfloat16 keeps 8 significant bits: unit roundoff u = 2^-8 relative to a value's size.
BF16_ROUNDOFF = 2.0**-8


def float32_task(n_support: int = 5, n_query: int = 6, seed: int = 0) -> Episode:
    task = make_episode(n_support=n_support, n_query=n_query, seed=seed)
    return Episode(
        task.support_images.float(),
        task.support_labels,
        task.query_images.float(),
        task.query_labels,
        task.class_ids,
    )


def test_lite_under_bf16_adds_exactly_zero_to_the_values():
    """The returned embeddings are the no-grad pass's, bit for bit: the sampled rows add
    (e - stop_gradient(e)) · N/h, which is exactly zero in bfloat16 too."""
    encoder = tiny_backbone().float()
    images = torch.randn(9, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(1))
    cached = embed_without_grad(encoder, images, 4, precision="bf16")
    assert cached.dtype == torch.float32  # embeddings come back in the images' dtype
    out = lite_forward(encoder, images, 3, cached=cached, precision="bf16")
    assert torch.equal(out, cached)
    drawn = lite_forward(encoder, images, 3, chunk_size=4, precision="bf16")
    assert torch.equal(drawn, cached)
    assert not torch.equal(cached, embed_without_grad(encoder, images, 4))  # bf16 did run


@pytest.mark.parametrize("kind", ["protonets", "simple_cnaps"])
def test_lite_expectation_under_bf16_autocast_is_the_task_gradient_up_to_rounding(kind):
    """Exact enumeration of every subset (pair of subsets for Simple CNAPs), each gradient
    under CPU bfloat16 autocast, against the float32 full gradient g.

    Tolerance. bfloat16 rounds every backbone operation to u = 2^-8 relative, so even full
    back-propagation in bf16 misses g by ε = ||g_bf16 - g|| / ||g||, a few per cent for this
    tiny model (measured 1.8-2.0%, about 5u). Each LITE gradient is one more bf16 computation
    of the same terms, with rounding of the same size but in other batch compositions, so an
    unbiased estimator's exact mean lies within about 2ε of g: we assert <= 2ε (and ε < 0.05,
    13u, so that bf16 itself is sane). A real bias is larger: the VTAB+MD convention (no
    N/h) misses by 15-17% here, over three times the bound, which the test checks too.
    """
    learner = make_learner(kind).float()
    task = float32_task()
    full = gradient(learner, task)
    epsilon = relative_error(gradient(learner, task, Lite.full(precision="bf16")), full)
    assert epsilon < 13 * BF16_ROUNDOFF
    paths = learner.support_paths
    pairs = list(itertools.product(subsets(5, 2), repeat=len(paths)))

    def mean(scaling: str) -> torch.Tensor:
        lites = [
            Lite(2, subsets=dict(zip(paths, p, strict=True)), precision="bf16", scaling=scaling)
            for p in pairs
        ]
        return sum(gradient(learner, task, lite) for lite in lites) / len(pairs)

    assert relative_error(mean("unbiased"), full) <= 2 * epsilon
    assert relative_error(mean("none"), full) > 3 * (2 * epsilon)


def record_encoder_calls(learner) -> list[tuple[str, bool, bool, torch.dtype]]:
    """Hooks on the backbone's first and last layers (and the set encoder's first, where
    there is one) that record, per call: the layer, grad mode, whether CPU autocast is on,
    and the dtype of the layer's output (bfloat16 when the layer ran under bf16 autocast)."""
    seen: list[tuple[str, bool, bool, torch.dtype]] = []
    layers = {"backbone conv": learner.backbone[0], "backbone linear": learner.backbone[-1]}
    if hasattr(learner, "set_encoder"):
        layers["set encoder conv"] = learner.set_encoder.net[0]
    for name, layer in layers.items():

        def hook(_module, _inputs, output, name=name):
            autocast_on = torch.is_autocast_enabled("cpu")
            seen.append((name, torch.is_grad_enabled(), autocast_on, output.dtype))

        layer.register_forward_hook(hook)
    return seen


STEP_LITES = {
    "lite": lambda: Lite(2, chunk_size=2),
    "lite bf16": lambda: Lite(2, chunk_size=2, precision="bf16"),
    "full": lambda: None,
}


@pytest.mark.parametrize("which", STEP_LITES)
@pytest.mark.parametrize("kind", ["protonets", "simple_cnaps"])
def test_every_backbone_pass_of_a_bf16_step_runs_under_autocast(kind, which):
    """A bf16 training step (``precision="bf16"`` on the step, or on the `Lite`): every call
    of an image encoder, the gradient passes (sampled rows and query batch; the whole support
    set under full back-propagation) as well as the no-grad pass, runs with CPU autocast on,
    and its layers compute in bfloat16. The same step with ``precision="fp32"`` runs none under
    autocast, so the observation can tell the two apart."""
    learner = make_learner(kind).float()
    seen = record_encoder_calls(learner)
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    lite = STEP_LITES[which]()
    precision = None if lite is not None and lite.precision == "bf16" else "bf16"
    meta_train_step(learner, float32_task(), optimizer, lite, query_batch=3, precision=precision)
    with_grad = [call for call in seen if call[1]]
    assert {name for name, *_ in with_grad} == {name for name, *_ in seen}
    if lite is not None:
        assert any(not call[1] for call in seen), "the step made no no-grad pass"
    off = [call for call in seen if not call[2] or call[3] != torch.bfloat16]
    assert not off, f"encoder calls outside bf16 autocast: {off}"

    seen.clear()
    meta_train_step(learner, float32_task(), optimizer, lite, query_batch=3, precision="fp32")
    assert seen and not any(autocast_on for _, _, autocast_on, _ in seen)
    assert {dtype for *_, dtype in seen} == {torch.float32}


def test_float16_steps_need_a_scaler_and_train_with_one():
    learner = make_learner("protonets").float()
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"^scaler=None: float16 gradients need a gradient scaler"):
        meta_train_step(learner, float32_task(), optimizer, precision="fp16")
    assert all(p.grad is None for p in learner.parameters())
    before = [p.detach().clone() for p in learner.parameters()]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    result = meta_train_step(
        learner, float32_task(), optimizer, Lite(2), scaler=scaler, precision="fp16"
    )
    assert result.loss == result.loss  # finite
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.parameters(), strict=True))
    assert all(p.dtype == torch.float32 for p in learner.parameters())


def test_fit_in_float16_keeps_its_scaler_in_the_checkpoint_and_resumes_exactly(tmp_path):
    tasks = [float32_task(seed=s) for s in range(4)]

    def run(steps, path):
        learner = make_learner("protonets").float()
        optimizer = torch.optim.Adam(learner.parameters(), lr=0.01)
        lite = Lite(2, generator=torch.Generator().manual_seed(3))
        fit(
            learner,
            tasks,
            optimizer,
            steps,
            lite,
            checkpoint=path,
            progress=False,
            precision="fp16",
        )
        return learner

    path = tmp_path / "run.pt"
    run(2, path)
    assert checkpoints.load(path)["scaler"]["scale"] > 0
    assert checkpoints.load(path)["fingerprint"]["lite"][4] == "fp16"
    resumed = run(4, path)
    unbroken = run(4, None)
    assert all(
        torch.equal(a, b) for a, b in zip(resumed.parameters(), unbroken.parameters(), strict=True)
    )


def test_channels_last_changes_the_layout_not_the_values():
    encoder = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()).double()
    images = torch.randn(5, *IMAGE_SHAPE, dtype=torch.float64)
    seen = []
    encoder.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    plain = lite_forward(encoder, images, 2, chunk_size=2)
    fast = lite_forward(encoder, images, 2, chunk_size=2, channels_last=True)
    torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12)
    assert seen[-1].is_contiguous(memory_format=torch.channels_last)
    assert not seen[0].is_contiguous(memory_format=torch.channels_last)


def test_fit_converts_the_learner_to_channels_last_and_trains():
    learner = make_learner("protonets")
    fit(
        learner,
        [make_episode()],
        torch.optim.SGD(learner.parameters(), lr=0.1),
        1,
        Lite(2),
        progress=False,
        channels_last=True,
    )
    assert learner.backbone[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_fit_deterministic_turns_on_deterministic_kernels():
    learner = make_learner("protonets")
    assert not _deterministic_kernels_in_use()
    try:
        fit(
            learner,
            [make_episode()],
            torch.optim.SGD(learner.parameters(), lr=0.1),
            1,
            progress=False,
            deterministic=True,
        )
        assert _deterministic_kernels_in_use()
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


def test_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"^precision='fp8': choose one of 'fp32', 'bf16', 'fp16'"):
        Lite(2, precision="fp8")
    learner = make_learner("protonets")
    with pytest.raises(ValueError, match=r"^precision='half'"):
        meta_train_step(
            learner, make_episode(), torch.optim.SGD(learner.parameters(), lr=0.1), precision="half"
        )
