"""README's "How the code is laid out" is a true map: every file and name it gives exists."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
import sys
from pathlib import Path

import pytest
import torch

import litekit

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## How the code is laid out"
#: Words in backticks that name no litekit object, each for a reason: torch's and Python's
#: own names, and a pattern.
NOT_LITEKIT = {
    "nn.Module": "torch.nn.Module",
    "__getitem__": "Python's indexing",
    "targets": "a dataset attribute",
    "*_chart": "a pattern of function names",
    "torch.manual_seed": "torch's global seed",
    "JupyterLab": "the application",
}


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end > 0 else len(text)]


def code_lines(text: str) -> list[int]:
    """Indices of the lines of the indented (4-space) code blocks: a block starts after a
    blank line (an indented line right after text continues a list item)."""
    lines, inside, previous = text.splitlines(), False, ""
    found = []
    for i, line in enumerate(lines):
        if line.startswith("    ") and (inside or not previous.strip()):
            inside = True
            found.append(i)
        elif line.strip():
            inside = False
        previous = line
    return found


def code_blocks(text: str) -> list[list[str]]:
    """The indented code blocks, as lists of their non-blank lines (indent removed)."""
    lines, blocks, last = text.splitlines(), [], None
    for i in code_lines(text):
        if last is None or i != last + 1 and any(x.strip() for x in lines[last + 1 : i]):
            blocks.append([])
        blocks[-1].append(lines[i][4:])
        last = i
    return blocks


def prose(text: str) -> str:
    """The text outside the code blocks."""
    inside = set(code_lines(text))
    return "\n".join(line for i, line in enumerate(text.splitlines()) if i not in inside)


def litekit_modules() -> list:
    modules = [litekit]
    for info in pkgutil.walk_packages(litekit.__path__, "litekit."):
        if info.name.rsplit(".", 1)[-1] in ("__main__",):
            continue
        modules.append(importlib.import_module(info.name))
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        modules.append(importlib.import_module("helpers"))
    finally:
        sys.path.remove(str(ROOT / "tests"))
    return modules


MODULES = litekit_modules()


def resolves(name: str) -> bool:
    """``name`` (``f``, ``Class``, ``Class.attribute``) is defined in some litekit module
    (or ``optimizer.step``: torch's optimiser)."""
    head, *rest = name.split(".")
    if head == "optimizer":
        found = [torch.optim.Optimizer]
    else:
        found = [vars(m)[head] for m in MODULES if head in vars(m)]
    for obj in found:
        for part in rest:
            obj = getattr(obj, part, None)
        if obj is not None:
            return True
    return False


def route() -> list[tuple[list[str], str]]:
    """The route diagram: (names on a line, the file or folder that holds them)."""
    rows = []
    for line in code_blocks(section())[0]:
        names, where, _ = re.split(r"\s{2,}", line.strip(), maxsplit=2)
        rows.append((re.split(r"\s*(?:->|/)\s*", names), where))
    return rows


def tree_paths() -> list[str]:
    """Every file and folder the layout tree names, as paths from the repository root."""
    top = code_blocks(section())[1]
    paths, folder, entry = [], "", ""
    for line in top:
        indent = len(line) - len(line.lstrip())
        first = line.split()[0]
        if indent == 0:
            folder, entry = "", first
            paths.append(first)
        elif indent == 2:
            entry = folder + first
            paths.append(entry)
        else:
            first = ""  # a continuation line: every word describes the entry above
        if indent == 0 and first.endswith("/"):
            folder = first
        described = line[line.index(first) + len(first) :] if first else line
        base = entry if entry.endswith("/") else entry.rsplit("/", 1)[0] + "/"
        for token in re.findall(r"[\w/]+\.(?:py|sh|txt|md)\b|\b\w+/(?=[\s,:)]|$)", described):
            paths.append(token if "/" in token.rstrip("/") else base + token)
    return paths


def tree_names() -> list[str]:
    """The names in the tree's descriptions that read as code: with an underscore (not a
    file) or in CamelCase."""
    words = re.findall(r"[\w.]+", " ".join(code_blocks(section())[1]))
    return [
        w.rstrip(".")
        for w in words
        if not re.search(r"\.(py|sh|txt|md)$", w)
        and (re.fullmatch(r"[a-z_]\w*_\w*", w) or re.fullmatch(r"[A-Z][a-z]+[A-Z]\w*", w))
    ]


def backticked() -> list[str]:
    return re.findall(r"`([^`]+)`", prose(section()))


def test_the_section_is_there_with_its_route_and_tree():
    assert len(code_blocks(section())) == 2
    assert len(route()) >= 15 and len(tree_paths()) >= 40


@pytest.mark.parametrize(("names", "where"), route(), ids=lambda v: str(v))
def test_every_name_on_the_route_is_defined_in_the_file_given(names, where):
    for name in names:
        assert resolves(name), name
        if where.startswith("litekit/"):
            path = ROOT / where
            assert path.exists(), where
            source = (
                path.read_text()
                if path.is_file()
                else "".join(p.read_text() for p in path.glob("*.py"))
            )
            assert re.search(rf"(def|class) {re.escape(name.split('.')[-1])}\b", source), (
                f"{name} is not defined in {where}"
            )


def test_every_file_in_the_tree_exists():
    missing = [path for path in tree_paths() if not (ROOT / path).exists()]
    assert not missing, missing


def test_every_name_in_the_tree_exists():
    names = tree_names()
    assert {"lite_forward", "finish_step", "StepSums", "EpisodeSampler"} <= set(names)
    missing = [n for n in names if n not in NOT_LITEKIT and not resolves(n)]
    assert not missing, missing


def test_every_path_and_name_in_the_prose_exists():
    for token in backticked():
        if token in NOT_LITEKIT:
            continue
        if token.startswith("python -m "):  # a command: its module must exist
            assert importlib.util.find_spec(token.split()[2]) is not None, token
            continue
        if "/" in token or token.endswith(".py"):
            assert (ROOT / token).exists(), token
            continue
        name = token.split("(", 1)[0]
        assert re.fullmatch(r"[A-Za-z_][\w.]*", name), token
        assert resolves(name), token


def test_the_route_follows_the_code():
    """A few calls the route claims, read in the source (a renamed or moved call fails)."""
    step = (ROOT / "litekit/train/step.py").read_text()
    base = (ROOT / "litekit/learners/base.py").read_text()
    protonets = (ROOT / "litekit/learners/protonets.py").read_text()
    assert "accumulate_task_gradient(" in step and "finish_step(" in step
    assert "optimizer.step()" in step and "cache_support(" in step and ".loss_scale(" in step
    assert "embed_without_grad(" in protonets and "lite.draw(" in protonets
    assert "_support_path(" in protonets and "prototype_logits(" in protonets
    assert "embed_support(" in base
