"""lite_forward and Lite: exact values, edge cases of h, scaling and bad inputs."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F
from helpers import IMAGE_SHAPE, tiny_backbone
from torch import nn

from litekit import Lite, lite_forward
from litekit.lite import draw_subset

N = 7


@pytest.fixture
def encoder() -> nn.Module:
    return tiny_backbone().double()


@pytest.fixture
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(N, *IMAGE_SHAPE, generator=g, dtype=torch.float64)


def parameter_gradient(encoder: nn.Module, embeddings: torch.Tensor, weights: torch.Tensor):
    encoder.zero_grad(set_to_none=True)
    (embeddings * weights).sum().backward()
    return torch.cat([p.grad.flatten() for p in encoder.parameters()])


@pytest.mark.parametrize("chunk_size", [1, 3, N])
@pytest.mark.parametrize("h", [0, 2, N - 1])
def test_forward_value_equals_encoder(encoder, images, chunk_size, h):
    expected = encoder(images)
    got = lite_forward(
        encoder, images, h, chunk_size=chunk_size, generator=torch.Generator().manual_seed(0)
    )
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_h_at_least_n_is_the_full_gradient(encoder, images):
    weights = torch.randn(N, 3, dtype=torch.float64)
    full = parameter_gradient(encoder, encoder(images), weights)
    for h in (N, N + 5):
        lite = parameter_gradient(encoder, lite_forward(encoder, images, h, chunk_size=2), weights)
        torch.testing.assert_close(lite, full, rtol=1e-12, atol=0)


def test_fixed_subset_of_all_rows_is_the_full_gradient(encoder, images):
    weights = torch.randn(N, 3, dtype=torch.float64)
    full = parameter_gradient(encoder, encoder(images), weights)
    lite = parameter_gradient(
        encoder, lite_forward(encoder, images, N, chunk_size=3, subset=range(N)), weights
    )
    torch.testing.assert_close(lite, full, rtol=1e-12, atol=1e-15)


def test_h_zero_gives_no_gradient_through_images(encoder, images):
    out = lite_forward(encoder, images, 0, chunk_size=3)
    assert not out.requires_grad


@pytest.mark.parametrize(("scaling", "factor"), [("unbiased", N / 3), ("none", 1.0), ("loss", 1.0)])
def test_sampled_rows_carry_n_over_h_times_their_gradient(encoder, images, scaling, factor):
    """With rows H fixed, the gradient is (N/h) Σ_{n∈H} g_n (unbiased) or Σ_{n∈H} g_n (none,
    and loss: there the caller scales its whole loss, so the rows carry no factor)."""
    weights = torch.randn(N, 3, dtype=torch.float64)
    subset = [1, 4, 5]
    per_row = []
    for n in range(N):
        row_weights = torch.zeros_like(weights)
        row_weights[n] = weights[n]
        per_row.append(parameter_gradient(encoder, encoder(images), row_weights))
    expected = sum(per_row[n] for n in subset)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = lite_forward(encoder, images, 3, chunk_size=2, subset=subset, scaling=scaling)
    warned = any("scales no rows" in str(w.message) for w in caught)
    assert warned == (scaling == "loss"), "only scaling='loss' warns that it scales no rows"
    got = parameter_gradient(encoder, out, weights)
    torch.testing.assert_close(got, factor * expected, rtol=1e-10, atol=1e-14)


def prototype_loss(support: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the queries against the class means of the support embeddings
    (support labels n mod 3, query labels j mod 3): a loss through both paths."""
    labels = torch.arange(support.shape[0]) % 3
    means = torch.stack([support[labels == k].mean(0) for k in range(3)])
    logits = -(torch.cdist(queries, means) ** 2)
    return F.cross_entropy(logits, torch.arange(queries.shape[0]) % 3)


def flat_gradient(encoder: nn.Module, loss: torch.Tensor) -> torch.Tensor:
    encoder.zero_grad(set_to_none=True)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in encoder.parameters()])


def test_loss_scaled_by_n_over_h_through_unscaled_rows_gives_the_orbit_expectation(encoder, images):
    """The ORBIT convention, as a caller of `lite_forward` applies it: rows from
    ``scaling="loss"`` (no factor) and the loss multiplied by N/h, as the warning says.
    Averaged over every subset (exact enumeration, C(7, 2) = 21, float64), the gradient is
    (N/h)·g_Q + Σ_n g_n: the query path inflated by N/h, the support path exact. g_Q and the
    g_n are computed on their own, by plain back-propagation through the query images alone
    and through one support image at a time. If the rows carried N/h as well, the mean would
    be (N/h)·(g_Q + Σ_n g_n), here far away (checked)."""
    h = 2
    queries = torch.randn(5, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(2)).double()
    fixed = encoder(images).detach()
    query_path = flat_gradient(encoder, prototype_loss(fixed, encoder(queries)))
    per_image = []
    for n in range(N):
        one = torch.cat([fixed[:n], encoder(images[n : n + 1]), fixed[n + 1 :]])
        per_image.append(flat_gradient(encoder, prototype_loss(one, encoder(queries).detach())))
    orbit = (N / h) * query_path + sum(per_image)
    both_scaled = (N / h) * (query_path + sum(per_image))
    assert float((orbit - both_scaled).norm() / orbit.norm()) > 0.1

    total = torch.zeros_like(orbit)
    subsets = list(itertools.combinations(range(N), h))
    for subset in subsets:
        with pytest.warns(UserWarning, match="scales no rows"):
            support = lite_forward(encoder, images, h, chunk_size=3, subset=subset, scaling="loss")
        embedded = encoder(queries)
        total += flat_gradient(encoder, (N / h) * prototype_loss(support, embedded))
    mean = total / len(subsets)
    assert float((mean - orbit).norm() / orbit.norm()) < 1e-12


def test_embeddings_come_back_in_input_order(encoder, images):
    reversed_images = images.flip(0)
    out = lite_forward(encoder, reversed_images, 3, chunk_size=2)
    torch.testing.assert_close(out, encoder(images).flip(0), rtol=0, atol=1e-12)


def test_same_generator_seed_gives_same_subsets():
    a = [draw_subset(20, 5, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(a[0], a[1])
    assert len(set(a[0].tolist())) == 5 and a[0].max() < 20


def test_subsets_are_uniform():
    """Every row is drawn with probability h/N (chi-square-free check at 5 sigma)."""
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(10)
    draws = 4000
    for _ in range(draws):
        counts[draw_subset(10, 3, g)] += 1
    expected = draws * 3 / 10
    sigma = (draws * 0.3 * 0.7) ** 0.5
    assert (counts - expected).abs().max() < 5 * sigma


def test_chunks_move_to_the_encoder_device(encoder, images):
    """Images may live elsewhere than the encoder: chunks are moved to ``device``."""
    out = lite_forward(encoder, images, 2, chunk_size=3, device="cpu")
    assert out.device.type == "cpu"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"h": -1}, "h=-1"),
        ({"h": 2.5}, "h=2.5"),
        ({"h": 2, "chunk_size": 0}, "chunk_size=0"),
        ({"h": 2, "scaling": "orbit"}, "scaling='orbit'"),
        ({"h": 2, "subset": [0, 0]}, "subset="),
        ({"h": 2, "subset": [0, 99]}, "subset="),
    ],
)
def test_bad_arguments_name_argument_value_and_fix(encoder, images, kwargs, name):
    calls = []
    encoder.register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(ValueError, match=f"^{name}") as error:
        lite_forward(encoder, images, **kwargs)
    assert ":" in str(error.value) and len(str(error.value).split(":", 1)[1].strip()) > 10
    assert calls == [], "the check must come before any forward pass"


def test_lite_object_checks_its_arguments():
    with pytest.raises(ValueError, match="^h=-3"):
        Lite(-3)
    with pytest.raises(ValueError, match="^chunk_size=0"):
        Lite(2, chunk_size=0)
    with pytest.raises(ValueError, match="^scaling='vtab'"):
        Lite(2, scaling="vtab")


def test_lite_draw_shares_one_subset_only_when_asked():
    independent = Lite(3, generator=torch.Generator().manual_seed(0)).draw(30, ("set", "features"))
    shared = Lite(3, generator=torch.Generator().manual_seed(0), independent_subsets=False).draw(
        30, ("set", "features")
    )
    assert not torch.equal(independent["set"], independent["features"])
    assert torch.equal(shared["set"], shared["features"])


def test_loss_scale_only_under_the_orbit_convention():
    assert Lite(4, scaling="loss").loss_scale(20) == 5.0
    assert Lite(4).loss_scale(20) == 1.0
    assert Lite(40, scaling="loss").loss_scale(20) == 1.0
