"""The notebooks: committed clean, and every one runs headless with small parameters.

Two gates, besides nbval (configured in pyproject.toml, it re-runs each notebook at its
default parameters and compares the cells marked ``# NBVAL_CHECK_OUTPUT``):

- structure: kernel ``python3``, one ``parameters`` cell, an opening "What you will learn"
  with the measured time of docs/tutorials/tutorials.toml, exercises, asserts, a closing
  "What you saw" built from the run's numbers (`litekit.recaps`) and asserted against them,
  outputs only where nbval checks them (tag ``nbval-check-output``), no test markers in the
  code, and the small parameters CI runs with (``metadata.litekit.ci_parameters``);
- papermill: each notebook runs from its own folder with those parameters, with a per-cell
  timeout; a failure names the notebook and the cell.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbtools import (
    QuietKernelManager,
    checked_in_gate,
    checked_text,
    is_checked,
    parameter_names,
    parameters_cells,
    replies_polled_every_second,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
from sitetools import executed, tutorials  # noqa: E402  (docs/sitetools: the site's tools)

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TUTORIALS = {entry["notebook"]: entry for entry in tutorials.load()}
CELL_TIMEOUT = 300  # seconds, per cell
MAX_BYTES = 200_000  # no embedded JavaScript bundles or images in committed notebooks
WIDGET = "application/vnd.jupyter.widget-view+json"
PLOTLY = "application/vnd.plotly.v1+json"


def ci_parameters(notebook: dict) -> dict | None:
    return notebook["metadata"].get("litekit", {}).get("ci_parameters")


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    cells = notebook["cells"]
    markdown = [c for c in cells if c["cell_type"] == "markdown"]
    assert "What you will learn" in markdown[0]["source"], "open with what the reader will learn"
    assert cells[0]["cell_type"] == "markdown" and cells[-1]["cell_type"] == "markdown"
    assert "<details>" in "".join(c["source"] for c in markdown), "exercises with solutions"
    # the closing recap: a heading, then a cell that builds it from the run's numbers, asserts
    # it against them and displays it (its code hidden on the site)
    (saw,) = [i for i, c in enumerate(cells) if c["source"].startswith("## What you saw")]
    recap = cells[saw + 1]
    assert recap["cell_type"] == "code" and "remove-input" in recap["metadata"].get("tags", [])
    assert "_recap(" in recap["source"] and "assert recap.facts" in recap["source"]
    assert recap["source"].rstrip().endswith("display(recap)")
    # the time at the defaults, as measured and listed in docs/tutorials/tutorials.toml
    entry = TUTORIALS[path.stem]
    intro = " ".join(markdown[0]["source"].split())
    assert tutorials.time_sentence(entry) in intro, "state the measured time (tutorials.toml)"

    parameters = parameters_cells(notebook)
    assert len(parameters) == 1 and parameters[0]["cell_type"] == "code"
    names = parameter_names(notebook)
    assert {"SEED", "INTERACTIVE"} <= names
    small = ci_parameters(notebook)
    assert small, f"{path.name}: add metadata.litekit.ci_parameters (small values for CI)"
    assert set(small) <= names, f"unknown CI parameters {set(small) - names}"

    code = [c for c in cells if c["cell_type"] == "code"]
    assert any("assert " in c["source"] for c in code)
    checked = [c for c in code if is_checked(c)]
    assert checked, "mark the cells whose numbers matter with # NBVAL_CHECK_OUTPUT"
    for cell in code:
        if not is_checked(cell):
            assert not cell["outputs"], f"outputs in an unchecked cell: {cell['source'][:60]!r}"
            assert cell["execution_count"] is None, "run `make notebooks` to strip run state"
    for cell in checked:
        assert cell["outputs"] and cell["execution_count"], "run `make notebooks` to commit them"
    for cell in checked:
        for output in cell["outputs"]:
            assert output.get("name") != "stderr", f"stderr in a checked cell: {output}"
    for cell in code:  # test machinery stays out of the code a student reads
        assert "NBVAL_CHECK_OUTPUT" not in cell["source"], "tag the cell nbval-check-output"
        assert "fmt: skip" not in cell["source"]
        for line in cell["source"].splitlines():  # the site shows 100 columns unscrolled
            assert len(line) <= 100, f"wrap this line to 100 columns: {line!r}"
    assert "papermill" not in notebook["metadata"] and "widgets" not in notebook["metadata"]
    assert path.stat().st_size < MAX_BYTES


def run_notebook(path: Path, output: Path, interactive: bool) -> dict:
    """Execute ``path`` into ``output`` with its CI parameters; fail naming the cell."""
    import papermill
    from nbclient.exceptions import CellTimeoutError

    notebook = nbformat.read(path, as_version=4)
    parameters = {**(ci_parameters(notebook) or {}), "INTERACTIVE": interactive}
    try:
        with replies_polled_every_second():
            papermill.execute_notebook(
                str(path),
                str(output),
                parameters=parameters,
                kernel_name="python3",
                cwd=str(path.parent),
                execution_timeout=CELL_TIMEOUT,
                progress_bar=False,
                kernel_manager_class=QuietKernelManager,
            )
    except papermill.PapermillExecutionError as error:
        pytest.fail(
            f"{path.name}, cell {error.cell_index} (execution {error.exec_count}) failed with "
            f"{error.ename}: {error.evalue}\n--- cell source ---\n{error.source}",
            pytrace=False,
        )
    except CellTimeoutError:
        ran = nbformat.read(output, as_version=4)
        running = [
            i
            for i, cell in enumerate(ran["cells"])
            if cell.get("metadata", {}).get("papermill", {}).get("status") == "running"
        ]
        pytest.fail(
            f"{path.name}, cell {running} ran past {CELL_TIMEOUT} s with parameters {parameters}",
            pytrace=False,
        )
    return nbformat.read(output, as_version=4)


def output_types(notebook: dict) -> set[str]:
    return {
        mime
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
        for mime in output.get("data", {})
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_headless_with_small_parameters(path: Path, tmp_path: Path):
    ran = run_notebook(path, tmp_path / path.name, interactive=False)
    kinds = output_types(ran)
    assert "image/png" in kinds  # the static figures
    assert not kinds & {WIDGET, PLOTLY}, "headless runs build no widget and show no plotly"
    committed = nbformat.read(path, as_version=4)
    if checked_in_gate(committed):  # nbval skips it: compare its checked cells here
        expected = [c for c in committed["cells"] if is_checked(c)]
        got = [c for c in ran["cells"] if is_checked(c)]
        assert len(got) == len(expected)
        for want, cell in zip(expected, got, strict=True):
            assert checked_text(cell) == checked_text(want), (
                f"{path.name}: the checked cell starting {cell['source'][:70]!r} printed "
                "something else than its committed output; rerun `make notebooks`"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_interactive_branch_runs_too(path: Path):
    """INTERACTIVE=True: plotly figures (as JSON, no inlined library) and, in 03, the panel.

    This run is also the documentation site's copy of the notebook for its fast build, kept
    with its stamp in build/docs-notebooks/fast/. When `make test` has just built the site,
    that copy is up to date (same notebook, package and parameters) and is checked here
    instead of running the notebook a second time.
    """
    copy = executed.own_copy(path, fast=True)
    parameters = executed.parameters_for(path, fast=True)
    if not executed.is_up_to_date(copy, path, parameters):
        expected = executed.fingerprint(path, parameters)
        copy.parent.mkdir(parents=True, exist_ok=True)  # pytest alone, before any site build
        run_notebook(path, copy, interactive=True)
        executed.stamp(copy, expected, parameters, path)
    ran = nbformat.read(copy, as_version=4)
    kinds = output_types(ran)
    assert PLOTLY in kinds and "text/html" not in kinds
    if "03_" in path.name:
        assert WIDGET in kinds


def test_notebook_kernels_start_without_a_security_warning(tmp_path: Path, capfd):
    """make demo, make notebooks, the docs and these tests start kernels over IPC sockets:
    ipykernel's "running over TCP without encryption" warning is not printed."""
    import papermill

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    source = tmp_path / "quiet.ipynb"
    nbformat.write(notebook, source)
    assert executed.quiet_kernel() == {"kernel_manager_class": QuietKernelManager}
    papermill.execute_notebook(
        str(source), str(source), kernel_name="python3", cwd=str(tmp_path),
        progress_bar=False, **executed.quiet_kernel(),
    )  # fmt: skip
    ran = nbformat.read(source, as_version=4)
    assert ran.cells[0].outputs[0]["text"] == "42\n"
    printed = capfd.readouterr()
    assert "without encryption" not in printed.err + printed.out
    assert "KeyboardInterrupt" not in printed.err + printed.out


def test_notebooks_run_at_once_each_talk_to_their_own_kernel(tmp_path: Path):
    """The docs build runs two notebooks at a time: their kernels' IPC sockets must not share
    a name (jupyter_client's default, kernel-ipc-<n> in the current folder, would)."""
    import subprocess

    managers = [QuietKernelManager(kernel_name="python3") for _ in range(2)]
    assert all(m.transport == "ipc" and Path(m.ip).is_absolute() for m in managers)
    assert managers[0].ip != managers[1].ip
    script = (
        "import sys, papermill; sys.path.insert(0, {tests!r}); from nbtools import "
        "QuietKernelManager; papermill.execute_notebook({src!r}, {src!r}, kernel_name='python3',"
        " progress_bar=False, kernel_manager_class=QuietKernelManager)"
    )
    runs = []
    for number in range(2):
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        code = f"import os, time\ntime.sleep(1)\nprint({number}, os.getpid())"
        notebook.cells = [nbformat.v4.new_code_cell(code)]
        source = tmp_path / f"run{number}.ipynb"
        nbformat.write(notebook, source)
        command = script.format(tests=str(ROOT / "tests"), src=str(source))
        runs.append(subprocess.Popen([sys.executable, "-c", command], cwd=tmp_path,
                                     stderr=subprocess.PIPE, text=True))  # fmt: skip
    for run in runs:
        _, errors = run.communicate(timeout=120)
        assert run.returncode == 0 and "Invalid" not in errors, errors
    printed = [nbformat.read(tmp_path / f"run{n}.ipynb", 4).cells[0].outputs[0]["text"]
               for n in range(2)]  # fmt: skip
    assert [line.split()[0] for line in printed] == ["0", "1"]
    assert printed[0].split()[1] != printed[1].split()[1], "two kernels"
    assert not list(tmp_path.glob("kernel-ipc*")), "no sockets left in the working folder"


def test_a_kernel_shutting_down_is_not_interrupted_first(monkeypatch):
    """jupyter_client interrupts a kernel before asking it to shut down; at the end of a run
    that only makes an idle kernel log "KeyboardInterrupt caught in kernel"."""
    import asyncio

    from jupyter_client import AsyncKernelManager

    sent = []

    async def interrupt(self):
        sent.append(self.shutting_down)

    monkeypatch.setattr(AsyncKernelManager, "_async_interrupt_kernel", interrupt)
    manager = QuietKernelManager(kernel_name="python3")
    manager.shutting_down = True
    asyncio.run(manager._async_interrupt_kernel())
    manager.shutting_down = False
    asyncio.run(manager._async_interrupt_kernel())  # a cell timeout: sent as usual
    assert sent == [False]
