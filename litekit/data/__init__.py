"""Datasets: the embedded procedural large-image dataset and readers for real data."""

from litekit.data.procedural import ProceduralImages

__all__ = ["ProceduralImages"]
