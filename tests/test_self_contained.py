"""The repository stands on its own: its files do not point to documents or tracker entries
that a clone does not have (a design document, a folder beside the repository, numbered
issues or tasks)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"DESIGN\.md|\.\./shared|\b[Ii]ssue [0-9]|\b[Tt]ask [0-9]")
TEXT = {".py", ".md", ".sh", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".ipynb", ""}
NOT_YET: tuple[str, ...] = ()  # paths still to clean up (none)


def tracked_files() -> list[Path]:
    """The repository's files: git's list when there is one, else every file but tool
    folders."""
    try:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        return [ROOT / name for name in listed]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "build", "__pycache__", ".ipynb_checkpoints"}
        return [
            p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
        ]


def test_no_file_points_outside_the_repository():
    found = []
    for path in tracked_files():
        name = path.relative_to(ROOT).as_posix()
        if path.suffix not in TEXT or name.startswith(NOT_YET) or path == Path(__file__):
            continue
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
