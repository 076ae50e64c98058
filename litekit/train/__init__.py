"""Meta-training: the LITE step, the training loop with checkpoints, and evaluation.

- `litekit.train.step`: `meta_train_step` (LITE per task, query batching, one optimiser step)
  and `accumulate_task_gradient`; a step's sums are one `StepSums` record (filled task by
  task, summed over processes by `litekit.distributed.finish_step`) until `StepResult`;
- `litekit.train.loop`: `fit`, the training loop (validation, `History`, checkpoints,
  torchrun), with its options grouped in `litekit.train.settings` (`Stepping`,
  `Reporting`, `Saving`), validation by episodes or a `Scorer`, and the best checkpoint
  (`litekit.train.best`);
- `litekit.train.stream`: the episodes of a run by position;
- `litekit.train.evaluation`: `evaluate`, with a 95% confidence interval;
- `litekit.train.cli`: the command line, ``python -m litekit.train --help``, which also runs
  under ``torchrun``.
"""

from litekit.distributed import StepSums
from litekit.train.evaluation import Evaluation, confidence_interval, evaluate
from litekit.train.loop import History, fit, subset_generator
from litekit.train.settings import Reporting, Saving, Scorer, Stepping
from litekit.train.step import StepResult, accumulate_task_gradient, meta_train_step

__all__ = [
    "Evaluation",
    "History",
    "Reporting",
    "Saving",
    "Scorer",
    "StepResult",
    "StepSums",
    "Stepping",
    "accumulate_task_gradient",
    "confidence_interval",
    "evaluate",
    "fit",
    "meta_train_step",
    "subset_generator",
]
