"""The project's set-up files agree with each other."""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import zipfile
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


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[=<>!\[; ]", r)[0] for r in requirements}


def _extra(name: str) -> set[str]:
    """The packages an extra installs, with the extras it names (``litekit[lab]``) expanded."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    found = set()
    for requirement in extras[name]:
        if requirement.startswith("litekit["):
            for inner in requirement[len("litekit[") : -1].split(","):
                found |= _extra(inner)
        else:
            found |= _names([requirement])
    return found


def test_dev_extra_has_the_tools_the_makefile_and_tests_use():
    dev = _extra("dev")
    makefile = (ROOT / "Makefile").read_text()
    for tool in ("pytest", "papermill", "ruff", "ipykernel", "jupyterlab", "nbval", "timm"):
        assert tool in dev, tool
    assert "pip install --quiet -e '.[dev]'" in makefile


def test_installs_fit_each_user():
    """`pip install .` is the library alone; `.[lab]` adds the notebook tools; `.[dev]` holds
    everything, so `make test` and `make demo` stay the two set-up commands."""
    core = _names(PYPROJECT["project"]["dependencies"])
    assert {"torch", "torchvision", "safetensors"} <= core
    assert not core & {"jupyterlab", "ipywidgets", "plotly", "pytest", "sphinx", "timm"}
    assert {"jupyterlab", "ipywidgets", "plotly"} <= _extra("lab")
    assert not _extra("lab") & {"pytest", "sphinx", "ruff"}
    assert _extra("lab") | _extra("timm") <= _extra("dev")


def test_the_library_and_its_command_lines_import_without_the_notebook_extras():
    """What `pip install .` gives must run without JupyterLab, widgets or plotly."""
    code = (
        "import sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('plotly', 'ipywidgets', 'jupyterlab', 'timm'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "import litekit, litekit.train.cli, litekit.measure.cli, litekit.checkpoint\n"
        "from litekit.train.cli import main\n"
        "assert main(['--help']) == 0\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


def _copy_of_the_sources(source: Path) -> Path:
    """What a build reads (pyproject.toml, README.md, litekit/), copied to ``source``, so
    that a build writes nothing into the repository."""
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "litekit", source / "litekit", ignore=shutil.ignore_patterns("__pycache__")
    )
    return source


def test_the_wheel_lists_the_extras_and_the_license(tmp_path):
    """Build the wheel offline (no build isolation: setuptools from this environment) from a
    copy of the sources, and read its metadata; the build must not warn about the license."""
    source = _copy_of_the_sources(tmp_path / "source")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(tmp_path / "wheel"), "-v", str(source)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PIP_NO_INPUT": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    # setuptools words it "`project.license` as a TOML table is deprecated" (a BuildBackendWarning)
    for warning in ("BuildBackendWarning", "SetuptoolsDeprecationWarning", "is deprecated"):
        assert warning not in output, output[-3000:]
    (wheel,) = (tmp_path / "wheel").glob("litekit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"litekit-{litekit.__version__}.dist-info/METADATA").decode()
    headers = email.parser.Parser().parsestr(metadata)
    assert headers["License-Expression"] == "MIT"
    assert {"lab", "dev", "timm"} <= set(headers.get_all("Provides-Extra"))
    requires = headers.get_all("Requires-Dist")
    assert any(r.startswith("jupyterlab") and 'extra == "lab"' in r for r in requires)
    assert any(r.startswith("timm") and 'extra == "timm"' in r for r in requires)
    assert any(r.startswith("pytest") and 'extra == "dev"' in r for r in requires)
    assert not any(r.startswith(("plotly", "ipywidgets")) and "extra" not in r for r in requires)


def test_an_editable_install_is_a_plain_path_entry_without_warnings(tmp_path):
    """`make install` installs the package editable. With the package folder at the top and
    no package-dir, setuptools falls back to an import finder and prints a boxed warning
    about same-named folders shadowing imports, which a student reads as a problem; the
    root named as the package folder gives a plain .pth line to the sources instead.

    The editable wheel is built by setuptools' own PEP 660 hook, as pip calls it, and read;
    nothing is installed (pip would replace this environment's litekit)."""
    source = _copy_of_the_sources(tmp_path / "source")
    build = "import sys; from setuptools import build_meta; build_meta.build_editable(sys.argv[1])"
    result = subprocess.run(
        [sys.executable, "-c", build, str(tmp_path / "wheel")],
        cwd=source, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    for warning in ("BuildBackendWarning", "precedence during imports", "meta path finder"):
        assert warning not in output, output[-3000:]
    (wheel,) = (tmp_path / "wheel").glob("litekit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (pth,) = [name for name in archive.namelist() if name.endswith(".pth")]
        assert archive.read(pth).decode().strip() == str(source)


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
