"""The tutorials as the site lists them: the index table and each tutorial's header.

One data file, docs/tutorials/tutorials.toml, holds what the site says about each tutorial
besides the notebook itself: its measured time at the default parameters, a one-line
summary and what to know first (its prerequisites). The index table (`index_table`) and the
header under each tutorial's title (`header`) are made from it, for any number of
tutorials, so adding one is a notebook and an entry. `COLUMNS` and `HEADER` list what they
show; a new key in the data file becomes a column or a header line by adding it there.

Each header also links to two downloads the site stages beside the pages (`DOWNLOADS`):
the notebook itself, and its students' edition without the solutions
(docs/sitetools/student.py).

The measured time also appears, as the same words (`duration`), in the notebook's opening
cell and in README.md; tests/test_docs_tools.py checks that the three agree.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (the dev extra installs tomli)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "docs" / "tutorials" / "tutorials.toml"
NOTEBOOKS = ROOT / "notebooks"
MARKER = "<!-- the tutorials table: docs/sitetools/tutorials.py fills it in -->"
SESSIONS_MARKER = "<!-- the sessions table: docs/sitetools/tutorials.py fills it in -->"
MACHINE = "a 2-core CPU"
#: Where the site stages each tutorial's notebook (``full``) and its students' edition
#: (``student``) for download, under its source folder; the header links to both.
DOWNLOADS = "_notebooks"


def load(path: Path = DATA, notebooks: Path = NOTEBOOKS) -> list[dict[str, Any]]:
    """The entries of the data file, checked: one per notebook in ``notebooks``, in order."""
    from litekit._checks import bad_argument

    entries = tomllib.loads(path.read_text()).get("tutorial", [])
    names = [entry.get("notebook") for entry in entries]
    present = sorted(p.stem for p in notebooks.glob("[0-9][0-9]_*.ipynb"))
    if sorted(names) != present:
        raise bad_argument(
            "tutorials", names, f"list every notebook of {notebooks} once in {path}: {present}"
        )
    for entry in entries:
        seconds = entry.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise bad_argument(
                f"{entry['notebook']}.seconds", seconds, "give the measured run time in seconds."
            )
        if not str(entry.get("summary", "")).strip():
            raise bad_argument(f"{entry['notebook']}.summary", "", "say what it teaches.")
        session = entry.get("session")
        if isinstance(session, bool) or not isinstance(session, int) or session < 1:
            raise bad_argument(
                f"{entry['notebook']}.session", session, "give the class session, from 1."
            )
        if not str(entry.get("prerequisites", "")).strip():
            raise bad_argument(
                f"{entry['notebook']}.prerequisites", "", "say what a reader should know first."
            )
    return sorted(entries, key=lambda entry: entry["notebook"])


def duration(seconds: int) -> str:
    """A measured time in words: ``"under a minute"``, ``"about 9 minutes"``."""
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    return f"about {minutes} minute{'s' if minutes != 1 else ''}"


def time_sentence(entry: dict[str, Any]) -> str:
    """What the notebook's opening cell says about its time (checked by the tests)."""
    return f"At its default parameters it takes {duration(entry['seconds'])} on {MACHINE}."


def title(notebook: Path) -> str:
    """The notebook's title: its first level-1 heading, in plain text."""
    import nbformat

    for cell in nbformat.read(notebook, as_version=4).cells:
        for line in cell.source.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return notebook.stem


def _link(entry: dict[str, Any], folder: str = "") -> str:
    """A link to the tutorial's page, from a page in the tutorials' folder or, with
    ``folder="tutorials/"``, from one at the site's root."""
    name = entry["notebook"]
    return f"[{title(NOTEBOOKS / f'{name}.ipynb')}]({folder}{name}.ipynb)"


# The index table's columns: (heading, the cell of one entry).
COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("tutorial", _link),
    ("what you will learn", lambda entry: entry["summary"]),
    (f"time at the defaults, on {MACHINE}", lambda entry: duration(entry["seconds"])),
]


def index_table(entries: list[dict[str, Any]]) -> str:
    """The Markdown table of the tutorials index."""
    rows = [
        "| " + " | ".join(heading for heading, _ in COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    for entry in entries:
        cells = (cell(entry).replace("|", "\\|") for _, cell in COLUMNS)
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def _before_line(entry: dict[str, Any], run: dict[str, Any]) -> str:
    return entry["prerequisites"]


def download_path(name: str, edition: str) -> str:
    """Where the site stages a tutorial's notebook for download, from the source folder:
    ``edition`` is ``"full"`` (the notebook) or ``"student"`` (without the solutions)."""
    return f"{DOWNLOADS}/{edition}/{name}.ipynb"


def _download_line(entry: dict[str, Any], run: dict[str, Any]) -> str:
    name = entry["notebook"]
    return (
        f"{{download}}`the notebook <{'/' + download_path(name, 'full')}>` ({name}.ipynb), to run "
        "in JupyterLab from the repository's `notebooks/` folder, or "
        f"{{download}}`its students' edition <{'/' + download_path(name, 'student')}>`, "
        "with the exercises and without their solutions ([running it online](../launch.md))."
    )


def sessions_table(entries: list[dict[str, Any]]) -> str:
    """The instructor's table: each session's tutorials with their measured times, and the
    session's total running time (what the machines need, not the teaching)."""
    rows = [
        f"| session | tutorials | time at the defaults, on {MACHINE} |",
        "| --- | --- | --- |",
    ]
    for session in sorted({entry["session"] for entry in entries}):
        members = [entry for entry in entries if entry["session"] == session]
        names = ", ".join(_link(entry, "tutorials/") for entry in members)
        times = "; ".join(
            f"{entry['notebook'][:2]}: {duration(entry['seconds'])}" for entry in members
        )
        total = duration(sum(entry["seconds"] for entry in members))
        rows.append(f"| {session} | {names} | {times} (together {total}) |")
    return "\n".join(rows) + "\n"


def _time_line(entry: dict[str, Any], run: dict[str, Any]) -> str:
    return (
        f"{duration(entry['seconds']).capitalize()} at its default parameters on {MACHINE} "
        "(measured; the [tutorials index](index.md) lists every tutorial's time)."
    )


def _run_line(entry: dict[str, Any], run: dict[str, Any]) -> str:
    changed = {k: v for k, v in run.get("parameters", {}).items() if k != "INTERACTIVE"}
    if not changed:
        return (
            "This page is the notebook as it ran at its default parameters; *Parameters of "
            "this run*, below, has their values."
        )
    names = ", ".join(f"`{k}`" for k in sorted(changed))
    return (
        "This page is the notebook as it ran with the small parameters of a quick check "
        f"(other values of {names}; *Parameters of this run*, below, has them all): its "
        "numbers are noisier than at the defaults, and its recap says what so short a run "
        "can show."
    )


def _live_line(entry: dict[str, Any], run: dict[str, Any]) -> str:
    return (
        "Figures respond to the mouse; interactive panels show their first drawing. Run the "
        "notebook in JupyterLab (`make lab`) to change its parameters and use the panels."
    )


# The header's lines, under the tutorial's title: (label, text of one entry and its run).
HEADER: list[tuple[str, Callable[[dict[str, Any], dict[str, Any]], str]]] = [
    ("Before you start", _before_line),
    ("Time", _time_line),
    ("This run", _run_line),
    ("Live", _live_line),
    ("Download", _download_line),
]


def header(entry: dict[str, Any], run: dict[str, Any] | None) -> str:
    """The MyST block under a tutorial's title. ``run`` is its executed copy's stamp
    (`executed.stamp_of`): the parameters it ran with."""
    lines = [f"**{label}.** {text(entry, run or {})}" for label, text in HEADER]
    return (
        ":::{admonition} About this tutorial\n:class: tip litekit-tutorial-header\n"
        + "\n\n".join(lines)
        + "\n:::\n"
    )
