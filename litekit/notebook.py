"""How a tutorial notebook starts: interactive or headless, which device, how many threads.

Every notebook has an ``INTERACTIVE`` parameter (None: detect) and most a ``DEVICE`` and a
``THREADS`` one; `setup_notebook` turns them into what the cells use, in one call:

    interactive, device = setup_notebook(INTERACTIVE, device=DEVICE, threads=THREADS)

Interactive runs (a kernel behind JupyterLab or Jupyter Notebook) show sliders, progress
bars and plotly figures; headless runs (papermill, nbval, ``jupyter nbconvert --execute``)
show static figures only, so their outputs stay small and comparable.

`show` displays one figure of `litekit.plots` as one output, whichever the mode: the static
picture (sharp on any screen, with its alt text) and, in an interactive session, the plotly
figure of the same chart, which JupyterLab and the documentation site draw instead. It
shows a diagram of `litekit.plots.diagrams` (SVG text) as one output too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from litekit._checks import bad_argument, check_int

PLOTLY_RENDERER = "plotly_mimetype"  # JupyterLab draws plotly's JSON with its own extension
_SESSION = {"interactive": False}  # what the last setup_notebook decided, for `show`


def is_interactive() -> bool:
    """True in a notebook kernel started by a Jupyter server (JupyterLab, Notebook).

    Kernels started by papermill, nbval or ``jupyter nbconvert --execute`` have no server
    behind them (no ``JPY_SESSION_NAME`` in their environment), and ``LITEKIT_HEADLESS=1``
    forces False. Notebooks expose the answer as their ``INTERACTIVE`` parameter, so any
    front end that this check misses can set it by hand.
    """
    if os.environ.get("LITEKIT_HEADLESS", "") not in ("", "0"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return False
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False
    return "JPY_SESSION_NAME" in os.environ


class NotebookSetup(NamedTuple):
    """What `setup_notebook` decided: unpack it as ``interactive, device = ...``."""

    interactive: bool
    device: torch.device


def _device(device: Any) -> torch.device:
    """``"auto"`` (CUDA when present, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    fix = "pass 'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'."
    if not isinstance(device, str):
        raise bad_argument("device", device, fix)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise bad_argument("device", device, fix) from error
    if chosen.type == "cpu":
        return torch.device("cpu")
    if chosen.type != "cuda":
        raise bad_argument("device", device, fix)
    if not torch.cuda.is_available():
        raise bad_argument("device", device, "this machine has no CUDA device; pass 'cpu'.")
    if chosen.index is not None and chosen.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise bad_argument("device", device, f"there are {count} CUDA devices, from cuda:0.")
    return chosen


def setup_notebook(
    interactive: bool | None = None, *, device: str = "auto", threads: int | None = None
) -> NotebookSetup:
    """Set up a notebook run from its parameters; every argument is checked first.

    Args:
        interactive: the notebook's ``INTERACTIVE`` parameter: True or False, or None to
            detect it (`is_interactive`).
        device: the ``DEVICE`` parameter: ``"auto"`` picks CUDA when present, else the
            CPU; or ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (an error if there is no such
            device, before the notebook builds anything).
        threads: the ``THREADS`` parameter: torch's CPU threads in this process
            (``torch.set_num_threads``), or None to leave torch's default.

    When interactive, plotly figures render as ``plotly_mimetype``: JupyterLab draws them
    from their JSON, without inlining the 3 MB plotly.js library in every output.

    Returns:
        a `NotebookSetup`: ``(interactive, device)``.
    """
    if interactive is not None and not isinstance(interactive, bool):
        raise bad_argument("interactive", interactive, "pass True, False or None (detect).")
    chosen = _device(device)
    if threads is not None:
        threads = check_int("threads", threads, minimum=1)
    interactive = is_interactive() if interactive is None else interactive
    if threads is not None:
        torch.set_num_threads(threads)
    if interactive:
        import plotly.io as pio

        pio.renderers.default = PLOTLY_RENDERER
    _SESSION["interactive"] = interactive
    return NotebookSetup(interactive, chosen)


def show(figure: Callable[..., Any] | Any, *args: Any, **kwargs: Any) -> None:
    """Display a figure as one output: ``show(plots.variance_vs_h, stats)``.

    ``figure`` is a figure function of `litekit.plots`, called with ``args`` and ``kwargs``
    (and ``backend="plotly"`` too when `setup_notebook` found an interactive session), or a
    matplotlib figure already drawn. The output holds the static figure as a PNG at twice
    its pixel density with its alt text, and the interactive figure when there is one
    (`litekit.plots.export.figure_bundle`): JupyterLab draws the plotly figure, a headless
    run keeps the picture, and the documentation site shows the live figure with the
    picture for readers without JavaScript.

    ``figure`` may also be a diagram of `litekit.plots.diagrams` (its SVG text,
    ``show(diagrams.lite_step())``): one ``image/svg+xml`` output whose alt text is the
    diagram's title and description (`litekit.plots.export.svg_bundle`).
    """
    from IPython.display import display

    from litekit.plots.export import figure_bundle, svg_bundle

    if isinstance(figure, str) and figure.lstrip().startswith("<svg") and not (args or kwargs):
        data, metadata = svg_bundle(figure)
        display(data, metadata=metadata, raw=True)
        return
    if callable(figure):
        static = figure(*args, **kwargs)
        interactive = figure(*args, **kwargs, backend="plotly") if _SESSION["interactive"] else None
    elif args or kwargs:
        raise bad_argument(
            "figure", type(figure).__name__, "pass a figure function to call with arguments."
        )
    else:
        static, interactive = figure, None
    if not hasattr(static, "savefig"):
        raise bad_argument(
            "figure", type(static).__name__, "pass a litekit.plots function or a matplotlib figure."
        )
    data, metadata = figure_bundle(static, interactive)
    display(data, metadata=metadata, raw=True)
