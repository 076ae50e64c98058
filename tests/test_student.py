"""`make student`: every tutorial without its solutions, exercises kept, still runnable.

- the convention: in every notebook, each exercise section has solution blocks
  (``<details><summary>Solution</summary>``), and the student edition has none of them left,
  nor outputs, nor test markers, while the exercises and the rest of the text stay;
- the tool: the README and the reference data notebook 05 reads are written next to the
  notebooks; a file changed since it was written is never replaced (unless ``--force``); an
  unclosed solution block or a cell tagged ``solution`` are handled;
- the editions run: notebook 00's, from the student folder, with its CI parameters (the
  others share the same transformation; running all of them here would cost minutes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbtools import CHECK_MARKER, replies_polled_every_second

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
from sitetools import student  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def markdown(notebook: dict) -> str:
    return "\n".join(c["source"] for c in notebook["cells"] if c["cell_type"] == "markdown")


@pytest.fixture(scope="module")
def editions(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    assert student.main(["--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_edition_has_the_exercises_and_no_solution(path: Path, editions: Path):
    original = nbformat.read(path, as_version=4)
    edition = nbformat.read(editions / "notebooks" / path.name, as_version=4)
    blocks = [s for s in student.DETAILS.findall(markdown(original)) if student.is_solution(s)]
    assert blocks, f"{path.name}: its exercises need solutions, as <details><summary>Solution"
    text = markdown(edition)
    assert not [s for s in student.DETAILS.findall(text) if student.is_solution(s)]
    assert text.count(student.NOTE) == len(blocks)
    assert "## Exercises" in text and "**1.**" in text and "What you saw" in text
    code = [c for c in edition["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    assert not any(CHECK_MARKER in c["source"] or "fmt: skip" in c["source"] for c in code)
    assert [c["source"] for c in edition["cells"] if c["cell_type"] == "code"] == [
        student.student_code(c["source"]) for c in original["cells"] if c["cell_type"] == "code"
    ]
    assert edition["metadata"]["litekit"]["edition"] == "student"
    assert (
        edition["metadata"]["litekit"]["ci_parameters"]
        == (original["metadata"]["litekit"]["ci_parameters"])
    )


def test_the_folder_has_a_readme_and_the_reference_data(editions: Path):
    assert "without their solutions" in (editions / "README.md").read_text()
    for data in (ROOT / "benchmarks" / "reference").iterdir():
        assert (editions / "benchmarks" / "reference" / data.name).read_text() == data.read_text()
    written = json.loads((editions / student.MANIFEST).read_text())
    assert len([k for k in written if k.endswith(".ipynb")]) == len(NOTEBOOKS)


def test_a_changed_edition_is_never_replaced_unless_forced(tmp_path: Path, capsys):
    source = NOTEBOOKS[0]
    assert student.main(["--out", str(tmp_path), str(source)]) == 0
    assert student.main(["--out", str(tmp_path), str(source)]) == 0  # unchanged: rewritten
    mine = tmp_path / "notebooks" / source.name
    mine.write_text(mine.read_text().replace("Exercises", "My exercises"))
    assert student.main(["--out", str(tmp_path), str(source)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("out=") and source.name in error and "--force" in error
    assert "My exercises" in mine.read_text()  # left as it was
    assert student.main(["--out", str(tmp_path), "--force", str(source)]) == 0
    assert "My exercises" not in mine.read_text()
    assert student.main(["--out", str(tmp_path), str(tmp_path / "missing.ipynb")]) == 2


def test_solution_blocks_and_cells_go_other_details_stay():
    text = (
        "**1.** Why?\n\n<details><summary>Solution</summary>\n\nBecause.\n</details>\n\n"
        "<details><summary>A hint</summary>Look up.</details>\n\n"
        "**2.** How?\n<details>\n<summary> solution to 2 </summary>So.</details> End."
    )
    kept, removed = student.without_solutions(text, "x")
    assert removed == 2 and "Because" not in kept and "So." not in kept
    assert "A hint" in kept and kept.count(student.NOTE) == 2 and kept.endswith(" End.")
    with pytest.raises(ValueError, match="^nb, cell 3: a solution block"):
        student.without_solutions("<details><summary>Solution</summary> open", "nb, cell 3")
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("**1.** Do it."),
            nbformat.v4.new_code_cell("answer = 42", metadata={"tags": ["solution"]}),
            nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nx = [1,  2]  # fmt: skip"),
        ]
    )
    edition, removed = student.student_edition(notebook, "nb")
    assert removed == 1 and [c["source"] for c in edition["cells"]] == [
        "**1.** Do it.",
        "x = [1,  2]",
    ]


def test_the_student_edition_of_notebook_00_runs_from_the_student_folder(editions: Path):
    import papermill

    path = editions / "notebooks" / "00_tasks_episodes_learners.ipynb"
    parameters = nbformat.read(path, as_version=4)["metadata"]["litekit"]["ci_parameters"]
    with replies_polled_every_second():
        papermill.execute_notebook(
            str(path), str(path.with_suffix(".ran.ipynb")),
            parameters={**parameters, "INTERACTIVE": False}, kernel_name="python3",
            cwd=str(path.parent), execution_timeout=300, progress_bar=False,
        )  # fmt: skip
