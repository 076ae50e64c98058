"""``make student``: the students' editions of the tutorials, without the solutions.

Writes build/student/, a folder to hand out: ``notebooks/`` holds every tutorial with its
exercises and without their solutions, cleared of outputs, and ``benchmarks/reference/``
the measurements notebook 05 reads (``../benchmarks/reference/`` from the notebooks), so
each edition runs from there as the original runs from notebooks/ (litekit installed).

The solution convention (one rule, checked by the tests for every notebook):

- in a Markdown cell, a solution is a ``<details>`` block whose summary starts with
  "Solution": ``<details><summary>Solution</summary> ... </details>``; the student edition
  replaces it by one line, `NOTE`;
- a cell of its own can be a solution too: tag it ``solution`` and it is left out.

Any other ``<details>`` block stays. A solution block that is never closed is an error that
names the notebook and the cell, and nothing is written.

The editions also lose what only the tests need: the ``# NBVAL_CHECK_OUTPUT`` marker lines
and ``# fmt: skip`` comments. A file that ``make student`` wrote and someone changed since is
never replaced: the run stops, naming it, before anything is written (``--force`` replaces
it).

    python docs/sitetools/student.py [--out build/student] [--force] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "student"
REFERENCE = ROOT / "benchmarks" / "reference"
MANIFEST = ".written.json"  # what this tool wrote, by SHA-256: changed files are not replaced
SOLUTION_TAG = "solution"
NOTE = "*Solution: in the full edition of this notebook.*"
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
DETAILS = re.compile(r"<details>\s*<summary>\s*(.*?)\s*</summary>", re.S | re.I)
README = """# The students' edition of the litekit tutorials

`notebooks/` holds every tutorial with its exercises and without their solutions. Run them
from that folder, with litekit installed (`pip install` of the litekit repository, or
`make install` in a clone), for example with `jupyter lab notebooks`. Notebook 05 reads the
measurements in `benchmarks/reference/`.

Made by `make student` from the tutorials of the litekit repository.
"""


def is_solution(summary: str) -> bool:
    """True for the summary of a solution block: it starts with "Solution"."""
    return summary.strip().lower().startswith("solution")


def without_solutions(text: str, where: str) -> tuple[str, int]:
    """``text`` with each solution ``<details>`` block replaced by `NOTE`; and how many."""
    out, position, removed = [], 0, 0
    for match in DETAILS.finditer(text):
        if match.start() < position or not is_solution(match.group(1)):
            continue
        end = text.find("</details>", match.end())
        if end < 0:
            raise ValueError(
                f"{where}: a solution block (<details><summary>{match.group(1)}</summary>) is "
                "never closed; end it with </details>."
            )
        out += [text[position : match.start()], NOTE]
        position = end + len("</details>")
        removed += 1
    return "".join(out) + text[position:], removed


def student_code(source: str) -> str:
    """Code without the test machinery: marker lines gone, ``# fmt: skip`` comments gone."""
    lines = [line for line in source.splitlines() if line.strip() != CHECK_MARKER]
    return "\n".join(re.sub(r"\s*# fmt: skip\s*$", "", line) for line in lines)


def student_edition(notebook: dict, name: str) -> tuple[dict, int]:
    """A copy of ``notebook`` without solutions and outputs; and how many solutions it had."""
    edition = copy.deepcopy(notebook)
    cells, removed = [], 0
    for index, cell in enumerate(edition["cells"]):
        if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            removed += 1
            continue
        if cell["cell_type"] == "markdown":
            cell["source"], count = without_solutions(cell["source"], f"{name}, cell {index}")
            removed += count
        elif cell["cell_type"] == "code":
            cell["source"] = student_code(cell["source"])
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    edition["cells"] = cells
    edition["metadata"].setdefault("litekit", {})["edition"] = "student"
    return edition, removed


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _read_manifest(out: Path) -> dict[str, str]:
    path = out / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def _changed_since_written(out: Path, targets: list[Path]) -> list[Path]:
    """Targets that exist and are not, byte for byte, what this tool wrote there last."""
    written = _read_manifest(out)
    return [
        path
        for path in targets
        if path.exists()
        and written.get(path.relative_to(out).as_posix()) != digest(path.read_text())
    ]


def write_editions(
    sources: list[Path], out: Path = OUT, *, force: bool = False, reference: Path = REFERENCE
) -> list[Path]:
    """Write the student editions of ``sources`` (and the reference data) under ``out``.

    Every edition is made, and every file checked, before anything is written.
    """
    if not sources:
        raise ValueError("notebooks=[]: pass at least one notebook (default: notebooks/NN_*).")
    files: dict[Path, str] = {out / "README.md": README}
    for source in sources:
        notebook = nbformat.read(source, as_version=4)
        edition, _ = student_edition(notebook, source.name)
        nbformat.validate(edition)
        files[out / "notebooks" / source.name] = nbformat.writes(edition) + "\n"
    for data in sorted(reference.glob("*")) if reference.is_dir() else []:
        files[out / "benchmarks" / "reference" / data.name] = data.read_text()
    changed = [] if force else _changed_since_written(out, list(files))
    if changed:
        names = ", ".join(str(p) for p in changed)
        raise ValueError(
            f"out={str(out)!r}: {names} changed since `make student` wrote it; move it "
            "elsewhere, or pass --force to replace it."
        )
    written = _read_manifest(out)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written[path.relative_to(out).as_posix()] = digest(text)
    (out / MANIFEST).write_text(json.dumps(written, indent=1, sort_keys=True) + "\n")
    return sorted(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/NN_*.ipynb")
    parser.add_argument("--out", type=Path, default=OUT, help="default: build/student")
    parser.add_argument("--force", action="store_true", help="replace files changed since")
    args = parser.parse_args(argv)
    sources = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        print(f"notebooks={missing}: no such notebook; pass .ipynb files.", file=sys.stderr)
        return 2
    try:
        paths = write_editions(sources, args.out, force=args.force)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    count = sum(p.suffix == ".ipynb" for p in paths)
    print(f"{count} student editions in {args.out / 'notebooks'} (solutions removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
