"""ORBIT's benchmark, scored as its authors scored it: tasks, metrics, aggregates.

ORBIT (Massiceti et al., ICCV 2021) is the LITE paper's second benchmark: videos that
blind and low-vision users recorded of their own objects. A test task is one user's
objects; a model personalises to them from the user's *clean* videos and is scored on
every frame of the user's other videos. The pieces, one module each:

- `protocols`: the two test protocols, ``neurips21`` (the LITE paper's) and
  ``orbit2022`` (the benchmark's since 2022), as `Protocol` settings;
- `clips`: which frames of a video a task uses (context clips, target frames, history);
- `annotations`: ORBIT's per-frame annotation files (both releases);
- `tasks`: `OrbitTestTasks`, a split's per-user test tasks, checked when built;
- `personalise`: a learner personalised once per task: frames -> features -> logits;
- `metrics`: frame accuracy, frames-to-recognition, video accuracy;
- `aggregate`: per-user and per-video means with ORBIT's 95% intervals;
- `scoring`: `evaluate_orbit`, which runs all of it and keeps every prediction;
- `validation`: `OrbitValidation`, ORBIT's validation score for `litekit.train.fit`;
- `miniature`: `write_orbit_tree`, a tiny ORBIT dataset in the real layout, for tests and
  notebook 07.

From the command line: ``python -m litekit.evaluate orbit --checkpoint RUN.pt --root
data/orbit --protocol neurips21 --setting clutter --out results.json`` (see data/README.md
for the layout).
"""

from litekit.orbit.aggregate import aggregate, interval
from litekit.orbit.metrics import (
    frame_accuracy,
    frames_to_recognition,
    video_accuracy,
    video_metrics,
    video_prediction,
)
from litekit.orbit.miniature import TreeSpec, write_orbit_tree
from litekit.orbit.personalise import Compute, Personalised, personalise
from litekit.orbit.protocols import NEURIPS21, ORBIT2022, PROTOCOLS, Protocol, protocol_named
from litekit.orbit.scoring import OrbitEvaluation, evaluate_orbit
from litekit.orbit.tasks import ContextVideo, OrbitTask, OrbitTestTasks, TargetVideo
from litekit.orbit.validation import OrbitValidation

__all__ = [
    "NEURIPS21",
    "ORBIT2022",
    "PROTOCOLS",
    "Compute",
    "ContextVideo",
    "OrbitEvaluation",
    "OrbitTask",
    "OrbitTestTasks",
    "OrbitValidation",
    "Personalised",
    "Protocol",
    "TargetVideo",
    "TreeSpec",
    "aggregate",
    "evaluate_orbit",
    "frame_accuracy",
    "frames_to_recognition",
    "interval",
    "personalise",
    "protocol_named",
    "video_accuracy",
    "video_metrics",
    "video_prediction",
    "write_orbit_tree",
]
