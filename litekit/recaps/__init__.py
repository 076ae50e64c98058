"""The closing "what you saw" of each tutorial, written from the run's own numbers.

A tutorial's recap is a list of sentences computed from what the run measured, so it is
true of that run whatever its parameters: a short smoke run and a full run at the defaults
say different things, each about itself. When a run was too short for a claim that needs a
long one, its recap says so (how many steps or tasks it had, and what to run to see it)
instead of stating the long run's result. Each function returns a `Recap`: Markdown for the
notebook to display, and the facts it was decided on, which the notebook asserts against.

- `tasks_recap` (notebook 00), in `tasks`, with `film_sentence` (how task-specific
  Simple CNAPs' FiLM scales are) and `paired_change` (a change in accuracy over the same
  tasks, with Student's t interval);
- `decomposition_recap` (notebook 01), `unbiasedness_recap` (02), `variance_recap` (03), in
  `gradients`;
- `meta_training_recap` (04) and `transfer_recap` (06), in `training`;
- `memory_time_recap` (05), in `cost`;
- `benchmarks_recap` (07) and `wilson_interval` (one task's accuracy), in `benchmarks`;
- `common`: `Recap` and the comparisons they share (times with their ranges, intervals).
"""

from litekit.recaps.benchmarks import benchmarks_recap, wilson_interval
from litekit.recaps.common import Recap, compare_times, points
from litekit.recaps.cost import memory_time_recap
from litekit.recaps.gradients import (
    decomposition_recap,
    step_time_sentence,
    unbiasedness_recap,
    variance_recap,
)
from litekit.recaps.tasks import film_sentence, paired_change, tasks_recap
from litekit.recaps.training import meta_training_recap, transfer_recap

__all__ = [
    "Recap",
    "compare_times",
    "points",
    "benchmarks_recap",
    "decomposition_recap",
    "film_sentence",
    "memory_time_recap",
    "meta_training_recap",
    "paired_change",
    "step_time_sentence",
    "tasks_recap",
    "transfer_recap",
    "unbiasedness_recap",
    "variance_recap",
    "wilson_interval",
]
