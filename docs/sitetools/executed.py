"""Executed copies of the tutorials, stamped so that a later build knows when to reuse them.

The site shows every tutorial as it ran with ``INTERACTIVE=True``: matplotlib figures,
plotly figures (as JSON in plotly's own mimetype) and widgets, whose state the run saves.
`make demo` runs the notebooks through `execute` too, at their default parameters, so a
full `make docs` can reuse its copies instead of running them again.

"Up to date" means: the copy carries, in ``metadata.litekit_executed.fingerprint``, the hash
of everything the run depended on, and that hash is still the same. The hash covers the
parameters, the source notebook's bytes and every file under `INPUTS` (the package and
the reference measurements notebook 05 reads). It is computed *before* the run starts, so an
edit made while a notebook runs leaves its copy stale. A copy that failed, or was
interrupted, has no stamp (papermill writes the output as it goes; the stamp is added only
after the last cell succeeded), so it is never reused.

    python docs/sitetools/executed.py run --into build notebooks/01_*.ipynb ...   # make demo
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INPUTS = ("litekit", "benchmarks/reference")  # what a notebook may read besides itself
STAMP = "litekit_executed"
KERNEL = "python3"
CELL_TIMEOUT = 1800  # seconds; the default parameters of 04-06 train for minutes per cell
SKIPPED_PARTS = ("__pycache__", ".ipynb_checkpoints")


def parameters_for(source: Path, fast: bool) -> dict:
    """The papermill parameters of a docs run: interactive, and small ones when ``fast``.

    ``fast`` uses the notebook's ``metadata.litekit.ci_parameters`` (the values CI runs
    with); otherwise the notebook runs at its defaults.
    """
    parameters: dict = {}
    if fast:
        metadata = json.loads(source.read_text()).get("metadata", {})
        parameters.update(metadata.get("litekit", {}).get("ci_parameters", {}))
    parameters["INTERACTIVE"] = True
    return parameters


def input_files(root: Path) -> list[Path]:
    """Every file under `INPUTS`, sorted, without caches."""
    files = []
    for name in INPUTS:
        folder = root / name
        if folder.is_file():
            files.append(folder)
            continue
        files.extend(
            path
            for path in folder.rglob("*")
            if path.is_file()
            and not any(part in SKIPPED_PARTS for part in path.parts)
            and path.suffix != ".pyc"
        )
    return sorted(files)


def fingerprint(source: Path, parameters: dict, root: Path = ROOT) -> str:
    """SHA-256 of the parameters, the source notebook and every input file (name and bytes)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(parameters, sort_keys=True).encode())
    digest.update(b"\0notebook\0" + source.read_bytes())
    for path in input_files(root):
        digest.update(b"\0" + path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def stamp_of(copy: Path) -> dict | None:
    """The stamp of an executed copy, or None (missing, unreadable, failed or unstamped)."""
    try:
        metadata = json.loads(copy.read_text()).get("metadata", {})
    except (OSError, ValueError):
        return None
    if metadata.get("papermill", {}).get("exception"):
        return None
    stamp = metadata.get(STAMP)
    return stamp if isinstance(stamp, dict) else None


def is_up_to_date(copy: Path, source: Path, parameters: dict, root: Path = ROOT) -> bool:
    """True when ``copy`` is a finished run of ``source`` with ``parameters`` on today's inputs."""
    stamp = stamp_of(copy)
    return stamp is not None and stamp.get("fingerprint") == fingerprint(source, parameters, root)


def execute(
    source: Path,
    dest: Path,
    parameters: dict,
    *,
    root: Path = ROOT,
    progress: bool = False,
    timeout: int = CELL_TIMEOUT,
) -> Path:
    """Run ``source`` into ``dest`` with papermill from the notebook's folder; stamp it.

    Raises papermill's error when a cell fails; ``dest`` then holds the failed run (open it
    to read the traceback) without a stamp.
    """
    import papermill

    expected = fingerprint(source, parameters, root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with replies_polled():
        papermill.execute_notebook(
            str(source),
            str(dest),
            parameters=parameters,
            kernel_name=KERNEL,
            cwd=str(source.parent),
            progress_bar=progress,
            execution_timeout=timeout,
            **quiet_kernel(),
        )
    return stamp(dest, expected, parameters, source, root)


def stamp(copy: Path, expected: str, parameters: dict, source: Path, root: Path = ROOT) -> Path:
    """Record in ``copy`` the fingerprint its run started from (written atomically).

    ``expected`` must be computed before the run started (see the module docstring).
    """
    import nbformat

    notebook = nbformat.read(copy, as_version=4)
    notebook.metadata[STAMP] = {
        "fingerprint": expected,
        "parameters": parameters,
        "source": source.relative_to(root).as_posix(),
    }
    partial = copy.with_name(copy.name + ".stamping")
    nbformat.write(notebook, partial)
    os.replace(partial, copy)
    return copy


def test_tools():
    """tests/nbtools.py, the notebook tools the tests share, or None without tests/."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import nbtools
    except ImportError:  # pragma: no cover - a copy of docs/ without tests/
        return None
    finally:
        sys.path.remove(str(ROOT / "tests"))
    return nbtools


def quiet_kernel() -> dict:
    """papermill's argument for a kernel on IPC sockets (`nbtools.QuietKernelManager`): no
    "running over TCP without encryption" warning per notebook in `make demo`."""
    tools = test_tools()
    return {} if tools is None else {"kernel_manager_class": tools.QuietKernelManager}


def replies_polled():
    """The notebook tests' fix for nbclient missing a kernel reply after widget cells.

    See ``tests/nbtools.py``: without it, a run that opens widgets can sit idle for a whole
    cell timeout now and then. Falls back to doing nothing when tests/ is not there.
    """
    tools = test_tools()
    if tools is None:  # pragma: no cover - a copy of docs/ without tests/
        from contextlib import nullcontext

        return nullcontext()
    return tools.replies_polled_every_second()


def candidates(source: Path, fast: bool, root: Path = ROOT) -> list[tuple[Path, dict]]:
    """Copies that may be reused, best first, each with the parameters it must have run with.

    make demo's copy (build/NN.ipynb, defaults) first, then the docs' own full-size copy;
    a fast build also takes its own small copy. Every build prefers full-size pages.
    """
    full = parameters_for(source, fast=False)
    found = [
        (root / "build" / source.name, full),
        (root / "build" / "docs-notebooks" / "full" / source.name, full),
    ]
    if fast:
        found.append((own_copy(source, fast, root), parameters_for(source, fast=True)))
    return found


def own_copy(source: Path, fast: bool, root: Path = ROOT) -> Path:
    """Where a docs build writes its own executed copy (never over make demo's)."""
    return root / "build" / "docs-notebooks" / ("fast" if fast else "full") / source.name


def reusable(source: Path, fast: bool, root: Path = ROOT) -> Path | None:
    """The first up-to-date candidate copy of ``source``, or None."""
    for copy, parameters in candidates(source, fast, root):
        if is_up_to_date(copy, source, parameters, root):
            return copy
    return None


def ensure_executed(
    sources: Sequence[Path],
    *,
    fast: bool,
    jobs: int = 2,
    root: Path = ROOT,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """An up-to-date executed copy of each source: reused, or run now (``jobs`` at a time).

    Each notebook runs in its own process (``python docs/sitetools/executed.py run``), so two
    kernels use two cores; any failure stops the build, naming the notebook.
    """
    check_jobs(jobs)
    copies: dict[Path, Path] = {}
    missing = []
    for source in sources:
        copy = reusable(source, fast, root)
        if copy is None:
            missing.append(source)
        else:
            copies[source] = copy
            log(f"reusing {copy.relative_to(root)}")

    def run(source: Path) -> Path:
        dest = own_copy(source, fast, root)
        log(f"executing {source.relative_to(root)} -> {dest.relative_to(root)}")
        command = [sys.executable, __file__, "run", "--root", str(root), "--into", str(dest.parent)]
        command += [str(source)] + (["--fast"] if fast else [])
        result = subprocess.run(command, cwd=root)
        if result.returncode != 0:
            raise RuntimeError(f"{source.name} failed; its partial run is in {dest}")
        return dest

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for source, dest in zip(missing, pool.map(run, missing), strict=True):
            copies[source] = dest
    return [copies[source] for source in sources]


def check_jobs(jobs: int) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        from litekit._checks import bad_argument

        raise bad_argument("jobs", jobs, "run at least one notebook at a time (jobs >= 1).")


def check_notebooks(paths: Sequence[Path]) -> None:
    """Every path an existing notebook, before anything runs."""
    for path in paths:
        if path.suffix != ".ipynb" or not path.is_file():
            from litekit._checks import bad_argument

            raise bad_argument("notebook", str(path), "pass existing .ipynb files.")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks (always) and stamp the copies")
    run.add_argument("notebooks", nargs="+", type=Path)
    run.add_argument("--into", type=Path, required=True, help="folder for the executed copies")
    run.add_argument("--fast", action="store_true", help="the notebooks' small CI parameters")
    run.add_argument("--progress", action="store_true", help="papermill's progress bar")
    run.add_argument("--root", type=Path, default=ROOT, help="the project (for the fingerprint)")
    args = parser.parse_args(None if argv is None else list(argv))
    check_notebooks(args.notebooks)
    for source in args.notebooks:
        source = source.resolve()
        execute(
            source,
            args.into.resolve() / source.name,
            parameters_for(source, args.fast),
            root=args.root.resolve(),
            progress=args.progress,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
