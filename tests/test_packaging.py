"""The project's set-up files agree with each other."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import litekit

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())


def test_environment_yml_defers_every_package_to_pyproject():
    """environment.yml gives Python and pip only, then installs `-e .[dev]`."""
    assert ENVIRONMENT["channels"] == ["conda-forge"]
    conda_packages, pip_sections = [], []
    for entry in ENVIRONMENT["dependencies"]:
        (pip_sections if isinstance(entry, dict) else conda_packages).append(entry)
    names = sorted(re.split(r"[=<>! ]", p)[0] for p in conda_packages)
    assert names == ["pip", "python"], f"conda packages must stay in pyproject.toml: {names}"
    assert pip_sections == [{"pip": ["-e .[dev]"]}]


def test_environment_python_satisfies_requires_python():
    python = next(p for p in ENVIRONMENT["dependencies"] if str(p).startswith("python"))
    version = tuple(int(x) for x in python.split("=")[-1].split("."))
    minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert version >= tuple(int(x) for x in minimum.split("."))


def test_dev_extra_has_the_tools_the_makefile_and_tests_use():
    dev = {
        re.split(r"[=<>!\[ ]", d)[0] for d in PYPROJECT["project"]["optional-dependencies"]["dev"]
    }
    makefile = (ROOT / "Makefile").read_text()
    for tool in ("pytest", "papermill", "ruff", "ipykernel", "jupyterlab", "nbval"):
        assert tool in dev, tool
    assert "pip install --quiet -e '.[dev]'" in makefile


def test_version_matches_pyproject():
    assert litekit.__version__ == PYPROJECT["project"]["version"]


def test_ci_calls_make_test():
    run = (ROOT / ".ci" / "run").read_text()
    assert "make test" in run and "set -euo pipefail" in run


def test_readme_quick_start_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1]
    commands = re.findall(r"^make \w+", quick_start, flags=re.M)
    assert commands[:2] == ["make demo", "make test"]


def test_contract_names_are_exported():
    for name in (
        "Episode",
        "EpisodeSampler",
        "VariableEpisodeSampler",
        "episode_loader",
        "lite_forward",
        "Lite",
        "ProtoNets",
        "SimpleCNAPs",
        "CNAPs",
        "meta_train_step",
        "evaluate",
    ):
        assert hasattr(litekit, name), name


def test_binder_installs_this_package_with_cpu_only_torch():
    """repo2docker reads binder/ (and then ignores environment.yml): this package, from the
    repository's root, with PyTorch's CPU wheels, on a Python that pyproject.toml allows."""
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    requirements = [line.split("#", 1)[0].strip() for line in lines]
    assert [r for r in requirements if r] == [
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        ".",
    ]
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime), runtime
    minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    version = tuple(int(x) for x in runtime.removeprefix("python-").split("."))
    assert version >= tuple(int(x) for x in minimum.split("."))
    assert sorted(p.name for p in (ROOT / "binder").iterdir()) == [
        "requirements.txt",
        "runtime.txt",
    ]
