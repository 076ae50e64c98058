"""What a task must satisfy, checked before any work: shapes, labels, channels, independence.

`check_task_tensors` (shapes, also run when an `litekit.Episode` is made), `check_labels`
and `check_query_labels`, `check_channels` and `check_embedding` refuse a task or a backbone
that cannot work; `batch_coupled_modules` finds the layers that would make LITE's estimate
silently biased (LITE is exact only when every image is embedded on its own), and
`nonfinite_inputs` names the image behind a non-finite loss. Each says what is wrong in the
house style ``name=value: fix`` before anything is computed or changed.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from litekit._checks import bad_argument


def check_task_tensors(
    support_images: torch.Tensor, support_labels: torch.Tensor, query_images: torch.Tensor
) -> None:
    """Validate one task's tensors before any work is done on them."""
    if support_images.ndim < 2 or support_images.shape[0] == 0:
        raise bad_argument(
            "support_images",
            tuple(support_images.shape),
            "the support set is empty; pass at least one labelled image per class.",
        )
    if query_images.ndim < 2:
        raise bad_argument(
            "query_images", tuple(query_images.shape), "pass a batch of images (B, C, H, W)."
        )
    if tuple(support_images.shape[1:]) != tuple(query_images.shape[1:]):
        raise bad_argument(
            "query_images",
            tuple(query_images.shape),
            f"support images are {tuple(support_images.shape[1:])} each; resize the query "
            "images to the same shape.",
        )
    if support_labels.dtype.is_floating_point or support_labels.dtype == torch.bool:
        raise bad_argument(
            "support_labels",
            support_labels.dtype,
            "labels must be an integer tensor (torch.long) with values 0..way-1.",
        )
    if support_labels.shape != (support_images.shape[0],):
        raise bad_argument(
            "support_labels",
            tuple(support_labels.shape),
            f"pass one label per support image, shape ({support_images.shape[0]},).",
        )


def check_labels(labels: torch.Tensor, name: str = "support_labels") -> int:
    """Return the task's way K, checking that labels are exactly 0..K-1, each present."""
    if labels.numel() == 0:
        raise bad_argument(name, [], "the support set is empty.")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise bad_argument(
            name,
            labels.dtype,
            "labels must be an integer tensor (torch.long) with values 0..way-1.",
        )
    if int(labels.min()) < 0:
        raise bad_argument(name, labels.tolist()[:10], "labels must be 0..way-1 (non-negative).")
    way = int(labels.max()) + 1
    missing = (torch.bincount(labels.cpu(), minlength=way) == 0).nonzero().flatten().tolist()
    if missing:
        raise bad_argument(
            name,
            labels.tolist()[:10],
            f"classes {missing[:5]} have no support image; relabel classes as 0..way-1.",
        )
    return way


def check_query_labels(labels: torch.Tensor, way: int, n_query: int) -> None:
    """Query labels must be integers 0..way-1: classes the support set defines."""
    if not isinstance(labels, torch.Tensor):
        raise bad_argument("query_labels", type(labels).__name__, "pass a torch.long tensor.")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise bad_argument(
            "query_labels",
            labels.dtype,
            "labels must be an integer tensor (torch.long): convert with labels.long().",
        )
    if labels.shape != (n_query,):
        raise bad_argument(
            "query_labels",
            tuple(labels.shape),
            f"pass one label per query image, shape ({n_query},).",
        )
    outside = sorted({int(v) for v in labels[(labels < 0) | (labels >= way)].tolist()})
    if outside:
        raise bad_argument(
            "query_labels",
            outside[:5],
            f"these classes are not in the support set, whose labels are 0..{way - 1}; number "
            "query labels like the support labels, and give every query class support images.",
        )


def first_conv_channels(module: nn.Module) -> tuple[str, int] | None:
    """(name, in_channels) of the first convolution in ``module``, or None if it has none."""
    for name, child in module.named_modules():
        if isinstance(child, nn.modules.conv._ConvNd):
            return name, int(child.in_channels)
    return None


def check_channels(images: torch.Tensor, encoders: Mapping[str, nn.Module]) -> None:
    """Images must have the channel count each encoder's first convolution takes."""
    if images.ndim != 4:
        return  # not (B, C, H, W): nothing to compare (the encoder decides)
    for owner, module in encoders.items():
        found = first_conv_channels(module)
        if found is not None and found[1] != images.shape[1]:
            name, channels = found
            raise bad_argument(
                "support_images",
                tuple(images.shape),
                f"images have {images.shape[1]} channel(s) but {owner}'s first convolution "
                f"({name or owner}) takes {channels}; convert the images (e.g. grayscale to RGB "
                f"with images.expand(-1, {channels}, -1, -1)) or build the model for "
                f"{images.shape[1]} channel(s).",
            )


def batch_coupled_modules(module: nn.Module, prefix: str = "") -> list[str]:
    """Names of the layers that normalise with statistics of the whole batch, as they are now.

    Such a layer makes each image's embedding depend on the other images of the batch, so
    the per-image split of the gradient (and LITE's estimate) is no longer exact: batch norm
    in training mode, and batch norm built with ``track_running_stats=False``, which uses
    batch statistics in eval mode too. GroupNorm, LayerNorm and InstanceNorm normalise each
    image on its own and are fine.
    """
    found = []
    for name, child in module.named_modules():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and (
            child.training or child.running_mean is None
        ):
            why = "training mode" if child.training else "track_running_stats=False"
            found.append(f"{prefix}{name} ({type(child).__name__}, {why})")
    return found


def check_embedding(output: object, batch: int, owner: str) -> torch.Tensor:
    """An encoder's output must be one tensor with a row per image: (B, D) or (B, C, H, W)."""
    if not isinstance(output, torch.Tensor):
        raise bad_argument(
            owner,
            type(output).__name__,
            "must return one tensor of embeddings, shape (B, D); it returned "
            f"{type(output).__name__}. Wrap it, e.g. nn.Sequential(model, TakeFirst()) or a "
            "module whose forward returns model(x)[0].",
        )
    if output.ndim < 2 or output.shape[0] != batch:
        raise bad_argument(
            owner,
            f"output shape {tuple(output.shape)} for {batch} image(s)",
            f"must return one row per image, shape ({batch}, D); reshape its output (a model "
            "that squeezes the batch dimension, or returns a scalar, cannot be a backbone).",
        )
    return output


def nonfinite_inputs(**tensors: torch.Tensor) -> str | None:
    """A description of the first input holding NaN or infinite values, or None."""
    for name, tensor in tensors.items():
        if not tensor.is_floating_point():
            continue
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            rows = bad.flatten(1).any(1).nonzero().flatten().tolist()
            return (
                f"{name}[{rows[0]}] holds {int(bad[rows[0]].sum())} non-finite value(s)"
                f" ({len(rows)} image(s) in all: {rows[:5]})"
            )
    return None
