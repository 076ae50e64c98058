"""Notebook housekeeping shared by `make notebooks` and the notebook tests.

Committed notebooks keep outputs (and execution counts) only in the cells nbval checks
(those whose source has a line ``# NBVAL_CHECK_OUTPUT``); every other output, execution
count and piece of run metadata (papermill timings, widget state) is stripped, so that a
re-run changes the files only where a checked number changed.

    python tests/nbtools.py finalize notebooks/01_task_gradient_decomposition.ipynb ...
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path
from queue import Empty

import nbformat

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
KERNEL = {"display_name": "Python 3 (litekit)", "language": "python", "name": "python3"}
RUN_METADATA = ("papermill", "execution", "widgets", "scrolled", "collapsed")


@contextmanager
def replies_polled_every_second():
    """Within the block, notebook clients look for a kernel's reply at least once a second.

    nbclient waits for a cell's ``execute_reply`` with one ``poll`` of the shell socket for the
    whole cell timeout. zmq's file descriptor is edge-triggered, and after a cell that opens
    widgets (a burst of comm messages on iopub) asyncio sometimes misses its wake-up: the
    reply is there, but the wait lasts the full timeout (nbclient issue #312; seen here as
    five idle minutes in notebook 04's ``interact`` cell, one run in four). Polling in
    one-second slices finds the reply at the next slice; timeouts still end with ``Empty``.
    """
    from jupyter_client.channels import AsyncZMQSocketChannel

    original = AsyncZMQSocketChannel.get_msg

    async def get_msg(self, timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            if await self.socket.poll(int(1000 * min(left, 1.0))):
                return await self._recv()
            if deadline is not None and time.monotonic() >= deadline:
                raise Empty

    AsyncZMQSocketChannel.get_msg = get_msg
    try:
        yield
    finally:
        AsyncZMQSocketChannel.get_msg = original


def is_checked(cell: dict) -> bool:
    """True for a code cell whose outputs nbval compares (``--nbval-lax``)."""
    return cell.get("cell_type") == "code" and any(
        line.strip() == CHECK_MARKER for line in cell.get("source", "").splitlines()
    )


def checked_in_gate(notebook: dict) -> bool:
    """True for a notebook whose checked cells the papermill gate compares instead of nbval.

    A notebook whose defaults take minutes (meta-training, memory sweeps) sets
    ``metadata.litekit.checked_in = "gate"``: nbval skips it, and the gate, which runs it with
    small parameters anyway, compares its checked cells, which must not depend on them.
    """
    return notebook.get("metadata", {}).get("litekit", {}).get("checked_in") == "gate"


def checked_text(cell: dict) -> list[str]:
    """The text a checked cell printed or returned, output by output."""
    texts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            texts.append(output.get("text", ""))
        elif "text/plain" in output.get("data", {}):
            texts.append(output["data"]["text/plain"])
    return texts


def tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def parameters_cells(notebook: dict) -> list[dict]:
    """The cells tagged ``parameters`` (papermill's convention)."""
    return [cell for cell in notebook["cells"] if "parameters" in tags(cell)]


def parameter_names(notebook: dict) -> set[str]:
    """Names assigned at the top level of the parameters cell."""
    import ast

    names: set[str] = set()
    for cell in parameters_cells(notebook):
        for node in ast.parse(cell["source"]).body:
            if isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def finalize(notebook: dict) -> dict:
    """Strip what a run adds, except the outputs of checked cells."""
    notebook["cells"] = [c for c in notebook["cells"] if "injected-parameters" not in tags(c)]
    for cell in notebook["cells"]:
        for key in RUN_METADATA:
            cell.get("metadata", {}).pop(key, None)
        if cell["cell_type"] != "code":
            continue
        if not is_checked(cell):  # nbval needs the count of a checked cell: it marks it as run
            cell["execution_count"] = None
            cell["outputs"] = []
    for key in RUN_METADATA:
        notebook["metadata"].pop(key, None)
    notebook["metadata"]["kernelspec"] = dict(KERNEL)
    return notebook


def finalize_file(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    finalize(notebook)
    nbformat.validate(notebook)
    nbformat.write(notebook, path)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "finalize":
        print(__doc__)
        return 2
    for name in argv[1:]:
        finalize_file(Path(name))
        print(f"finalized {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
