"""Colours and legend names shared by the figures, so a scaling looks the same everywhere."""

from __future__ import annotations

COLOURS = {
    "unbiased": "#1b7837",
    "none": "#762a83",
    "loss": "#e08214",
    "same_subset": "#2166ac",
    "features": "#4393c3",
    "set": "#d6604d",
    "query": "#636363",
    "lite": "#1b7837",
    "full": "#b2182b",
}
LABELS = {
    "unbiased": "unbiased (litekit)",
    "none": "no N/h (VTAB+MD code)",
    "loss": "N/h on the loss (ORBIT code)",
    "same_subset": "same subset for both paths",
}
FAMILY_COLOURS = {"meta-learning": COLOURS["lite"], "transfer learning": COLOURS["full"]}
# Runs without a colour of their own (learning curves, trained learners), in turn.
CYCLE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def cycled(index: int) -> str:
    """The ``index``-th colour of `CYCLE`, starting again after the last."""
    return CYCLE[index % len(CYCLE)]
