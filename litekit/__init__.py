"""litekit: learn, explore and use LITE (memory-efficient meta-learning with large images).

Bronskill, Massiceti, Patacchiola, Hofmann, Nowozin, Turner, "Memory Efficient
Meta-Learning with Large Images", NeurIPS 2021, arXiv:2107.01105.
"""

from litekit.episodes import (
    Episode,
    EpisodeSampler,
    VariableEpisodeSampler,
    episode_loader,
)
from litekit.learners import CNAPs, FineTuner, ProtoNets, SimpleCNAPs
from litekit.lite import Lite, lite_forward
from litekit.train import fit, meta_train_step

# `python -m litekit.evaluate` is a package of that name. Importing a package sets the
# attribute of its name on the parent, which would hide the function `evaluate` whenever
# the package is first imported. Import it here, first (it imports nothing), and bind the
# function after it: later imports of the package then leave the attribute alone.
__import__("litekit.evaluate")
from litekit.train import evaluate  # noqa: E402  isort: skip

__version__ = "0.1.0"

__all__ = [
    "CNAPs",
    "Episode",
    "EpisodeSampler",
    "FineTuner",
    "Lite",
    "ProtoNets",
    "SimpleCNAPs",
    "VariableEpisodeSampler",
    "episode_loader",
    "evaluate",
    "fit",
    "lite_forward",
    "meta_train_step",
]
