"""The cells of a tutorial page, prepared for a reader: machinery out of the way.

The notebooks stay as they are (runnable, tested); only the page's copy changes, and only
through what myst-nb reads from a cell's tags and metadata:

- the tutorial's header (`tutorials.header`: time, which run this page shows) goes under
  the title;
- the ``parameters`` cell becomes a collapsed box, *Parameters of this run*: myst-nb's
  ``hide-input`` tag with its prompt set in the cell's ``mystnb`` metadata. Its code shows
  the values the run used: the defaults, with each value papermill passed written in
  (and the default kept in the comment);
- papermill's injected cell (tag ``injected-parameters``) is removed (myst-nb's
  ``remove-cell``): the box above already shows its values;
- test markers are not shown: a ``# NBVAL_CHECK_OUTPUT`` line (nbval's cell tag is what the
  notebooks use) and a trailing ``# fmt: skip``.
"""

from __future__ import annotations

import ast
import textwrap

import nbformat

PROMPT_SHOW = "Parameters of this run"
PROMPT_HIDE = "Hide the parameters"
MARKER_LINES = ("# NBVAL_CHECK_OUTPUT",)
MARKER_SUFFIXES = ("  # fmt: skip",)
COLUMNS = 100  # the project's line length, which the page shows without scrolling


def tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def add_tag(cell: dict, tag: str) -> None:
    cell.setdefault("metadata", {}).setdefault("tags", [])
    if tag not in cell["metadata"]["tags"]:
        cell["metadata"]["tags"].append(tag)


def without_markers(source: str) -> str:
    """``source`` without test-marker lines and trailing ``# fmt: skip`` comments."""
    lines = [line for line in source.splitlines() if line.strip() not in MARKER_LINES]
    for suffix in MARKER_SUFFIXES:
        lines = [line.removesuffix(suffix) for line in lines]
    return "\n".join(lines)


def injected_values(cell: dict) -> dict:
    """The values papermill's injected cell assigns (literals only)."""
    values = {}
    for node in ast.parse(cell["source"]).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def run_parameters(source: str, values: dict) -> str:
    """The parameters cell with ``values`` written over the defaults they replace.

    ``NAME = default  # what it is`` becomes ``NAME = value  # default default; what it is``,
    its comment continued on the next lines where the line would pass `COLUMNS`. Assignments
    papermill did not change are left as they are.
    """
    lines = source.splitlines()
    for node in sorted(ast.parse(source).body, key=lambda n: -n.lineno):
        if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if name not in values:
            continue
        first, last = node.lineno - 1, node.end_lineno - 1
        default = ast.get_source_segment(source, node.value) or ""
        tail = lines[last][node.end_col_offset :]
        comment = tail.split("#", 1)[1].strip() if "#" in tail else ""
        default = " ".join(default.split())
        note = f"default {default}" + (f"; {comment}" if comment else "")
        code = f"{name} = {values[name]!r}  # "
        width = max(COLUMNS - len(code), 30)
        wrapped = textwrap.wrap(note, width) or [""]
        lines[first : last + 1] = [code + wrapped[0]] + [
            " " * (len(code) - 2) + "# " + more for more in wrapped[1:]
        ]
    return "\n".join(lines)


def split_title(notebook: dict) -> None:
    """Put the first cell's title line in a cell of its own, so a header can follow it."""
    first = notebook.cells[0] if notebook.cells else None
    if first is None or first.cell_type != "markdown":
        return
    head, _, rest = first.source.partition("\n")
    if head.startswith("# ") and rest.strip():
        first.source = head
        notebook.cells.insert(1, nbformat.v4.new_markdown_cell(rest.strip("\n")))


def prepare(notebook: dict, header: str | None = None) -> dict:
    """Prepare the cells of a page's notebook in place (see the module docstring)."""
    injected = [c for c in notebook.cells if "injected-parameters" in tags(c)]
    values = injected_values(injected[0]) if injected else {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.source = without_markers(cell.source)
        if "injected-parameters" in tags(cell):
            add_tag(cell, "remove-cell")
        elif "parameters" in tags(cell):
            cell.source = run_parameters(cell.source, values)
            add_tag(cell, "hide-input")
            cell.metadata.setdefault("mystnb", {}).update(
                code_prompt_show=PROMPT_SHOW, code_prompt_hide=PROMPT_HIDE
            )
    if header:
        split_title(notebook)
        notebook.cells.insert(1, nbformat.v4.new_markdown_cell(header))
    return notebook
