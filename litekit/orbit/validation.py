"""Validation on ORBIT's validation users, for `litekit.train.fit`.

ORBIT keeps the model whose validation score is best, and its score is the per-video
frame accuracy (`litekit.orbit.scoring`): `OrbitValidation` holds a split's test tasks
and scores a learner with them. `fit` takes it as ``validation=`` and records the mean
and its 95% interval (ddof = 0, as ORBIT's) in the `History`, as it does for episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from litekit.orbit.personalise import Compute
from litekit.orbit.scoring import OrbitEvaluation, evaluate_orbit
from litekit.orbit.tasks import OrbitTestTasks


@dataclass
class OrbitValidation:
    """ORBIT's test protocol on a held-out split; ``score`` gives the per-video frame
    accuracy and its 95% half-width. ``last`` keeps the latest full result."""

    tasks: OrbitTestTasks
    last: OrbitEvaluation | None = None

    def score(self, learner: nn.Module, lite=None) -> tuple[float, float]:
        """Per-video frame accuracy of ``learner`` (chunk size, precision and layout from
        ``lite`` when given)."""
        compute = Compute()
        if lite is not None:
            compute = Compute(lite.chunk_size, lite.precision, lite.channels_last)
        self.last = evaluate_orbit(learner, self.tasks, compute=compute)
        return self.last.frame_accuracy

    def __len__(self) -> int:
        return len(self.tasks)
