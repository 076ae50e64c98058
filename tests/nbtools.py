"""Notebook housekeeping shared by `make notebooks` and the notebook tests.

Committed notebooks keep outputs (and execution counts) only in the cells nbval checks
(those tagged ``nbval-check-output``, nbval's own cell tag); every other output, execution
count and piece of run metadata (papermill timings, widget state) is stripped, so that a
re-run changes the files only where a checked number changed.

Every notebook run here (`make notebooks`, `make demo`, the docs and the notebook tests)
starts its kernel with `QuietKernelManager`: over IPC sockets, not TCP, so the kernel does
not print ipykernel's "running over TCP without encryption" warning, which a student would
read as a problem.

    python tests/nbtools.py run notebooks/01_task_gradient_decomposition.ipynb ...  # in place
    python tests/nbtools.py finalize notebooks/01_task_gradient_decomposition.ipynb ...
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from queue import Empty

import nbformat
from jupyter_client import AsyncKernelManager
from traitlets import default

CHECK_TAG = "nbval-check-output"  # nbval's cell tag: compare this cell's outputs
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"  # nbval's comment with the same meaning, also accepted
KERNEL = {"display_name": "Python 3 (litekit)", "language": "python", "name": "python3"}
RUN_METADATA = ("papermill", "execution", "widgets", "scrolled", "collapsed")


class QuietKernelManager(AsyncKernelManager):
    """The kernel manager papermill runs notebooks with: kernels listen on IPC sockets.

    jupyter_client's default transport is TCP on 127.0.0.1, and ipykernel then warns, at
    every start, that its TCP traffic is not encrypted. Unix-domain (IPC) sockets are files
    in the Jupyter runtime folder, readable by this user only, which is what the warning
    asks for. Each kernel gets its own socket names there (jupyter_client's default for IPC,
    ``kernel-ipc-<n>`` in the current folder, is the same for every kernel, and two notebooks
    run at once would talk to each other's kernels). Windows has no such sockets in libzmq:
    there the default (TCP) stays.

    It also leaves out the interrupt that jupyter_client sends a kernel just before asking it
    to shut down: at the end of a run the kernel is idle, and an interrupt that lands while
    it answers its last message makes it log "KeyboardInterrupt caught in kernel", another
    alarming line for nothing. An interrupt asked for at any other time (a cell timeout) is
    sent as usual.
    """

    @default("transport")
    def _transport_default(self) -> str:
        return "tcp" if os.name == "nt" else "ipc"

    @default("ip")
    def _ip_default(self) -> str:
        if self.transport != "ipc":
            return super()._ip_default()
        from jupyter_core.paths import jupyter_runtime_dir

        folder = Path(jupyter_runtime_dir())
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return str(folder / f"kernel-{uuid.uuid4().hex[:16]}-ipc")  # + "-<n>" per socket

    async def _async_interrupt_kernel(self) -> None:
        if self.shutting_down:  # set by shutdown_kernel before it interrupts
            return
        await super()._async_interrupt_kernel()


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
    """True for a code cell whose outputs nbval compares (``--nbval-lax``): tagged
    ``nbval-check-output``, or (nbval's older way) with a ``# NBVAL_CHECK_OUTPUT`` line."""
    return cell.get("cell_type") == "code" and (
        CHECK_TAG in tags(cell)
        or any(line.strip() == CHECK_MARKER for line in cell.get("source", "").splitlines())
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


def run_in_place(path: Path) -> None:
    """Run a notebook at its default parameters with papermill, from its own folder, and
    write it back (what `make notebooks` does before `finalize`)."""
    import papermill

    with replies_polled_every_second():
        papermill.execute_notebook(
            str(path),
            str(path),
            kernel_name=KERNEL["name"],
            cwd=str(path.parent),
            kernel_manager_class=QuietKernelManager,
        )


def main(argv: list[str]) -> int:
    commands = {"finalize": (finalize_file, "finalized"), "run": (run_in_place, "ran")}
    if len(argv) < 2 or argv[0] not in commands:
        print(__doc__)
        return 2
    missing = [name for name in argv[1:] if not Path(name).is_file()]
    if missing:
        print(f"notebook={missing[0]}: no such file; pass existing .ipynb files", file=sys.stderr)
        return 2
    action, done = commands[argv[0]]
    for name in argv[1:]:
        action(Path(name))
        print(f"{done} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
