"""ORBIT's per-video metrics, from the predicted class of each scored frame.

For one target video with label y and frame predictions p_1 .. p_n (the arg-max of each
frame's logits, in frame order):

- frame accuracy        (1/n) Σ_i [p_i = y]
- frames-to-recognition (i* - 1) / n, with i* the first i such that p_i = y (so 0 when the
                        first frame is right); 1.0 when no frame is. Lower is better.
- video accuracy        [v = y], with v the most frequent prediction; a tie goes to the
                        lowest class id (``np.bincount(p).argmax()``).

These are the definitions of the ORBIT benchmark's code (``utils/eval_metrics.py``). Each
function takes the predictions as integers, checks them, and returns a float.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from litekit._checks import bad_argument, check_int


def _predictions(predictions: Sequence[int] | np.ndarray) -> np.ndarray:
    """A non-empty 1-D array of non-negative integer class ids."""
    array = np.asarray(predictions)
    if array.ndim != 1 or array.size == 0:
        raise bad_argument(
            "predictions", predictions, "pass the predicted class of each frame (1-D, non-empty)."
        )
    if not np.issubdtype(array.dtype, np.integer) or array.dtype == bool or array.min() < 0:
        raise bad_argument(
            "predictions", predictions, "pass class ids: non-negative integers (logits.argmax)."
        )
    return array.astype(np.int64)


def frame_accuracy(predictions: Sequence[int] | np.ndarray, label: int) -> float:
    """The fraction of frames predicted as ``label``."""
    p = _predictions(predictions)
    return float(np.mean(p == check_int("label", label, minimum=0)))


def frames_to_recognition(predictions: Sequence[int] | np.ndarray, label: int) -> float:
    """The index (from 0) of the first frame predicted as ``label``, over the number of
    frames; 1.0 if none is."""
    p = _predictions(predictions)
    correct = np.flatnonzero(p == check_int("label", label, minimum=0))
    return float(correct[0] / len(p)) if correct.size else 1.0


def video_prediction(predictions: Sequence[int] | np.ndarray) -> int:
    """The most frequent prediction; the lowest class id among equally frequent ones."""
    return int(np.bincount(_predictions(predictions)).argmax())


def video_accuracy(predictions: Sequence[int] | np.ndarray, label: int) -> float:
    """1.0 if the majority vote over frames is ``label``, else 0.0."""
    return float(video_prediction(predictions) == check_int("label", label, minimum=0))


METRIC_FUNCTIONS = {
    "frame_accuracy": frame_accuracy,
    "frames_to_recognition": frames_to_recognition,
    "video_accuracy": video_accuracy,
}

#: True for metrics where higher is better.
HIGHER_IS_BETTER = {"frame_accuracy": True, "frames_to_recognition": False, "video_accuracy": True}


def video_metrics(
    predictions: Sequence[int] | np.ndarray, label: int, metrics: Sequence[str]
) -> dict[str, float]:
    """The named metrics of one video, by name."""
    unknown = [m for m in metrics if m not in METRIC_FUNCTIONS]
    if unknown:
        raise bad_argument("metrics", unknown, f"choose among {', '.join(METRIC_FUNCTIONS)}.")
    return {name: METRIC_FUNCTIONS[name](predictions, label) for name in metrics}
