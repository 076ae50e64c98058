"""``make docs``: the static site in build/docs/, from docs/, the tutorials and the docstrings.

1. Executed tutorials: reused when up to date (make demo's, then the docs' own), otherwise
   run now, two at a time (`executed`). ``LITEKIT_DOCS_FAST=1`` (or ``--fast``) runs them
   with their small CI parameters; a full build runs them at their defaults.
2. Staging, in build/docs-src/: the pages under docs/ (the tutorials index with its table
   from docs/tutorials/tutorials.toml, see `tutorials`), each tutorial made static
   (`outputs`, `cells`: a header, the parameters in a box, figures as files in
   build/docs-extra/figures/ with their alt text), and one API page per module listed in
   docs/api_modules.txt (the only list of documented modules). Files are rewritten only when
   their content changes.
3. Sphinx, with the configuration in docs/conf.py, warnings as errors (``-W``): a broken
   cross-reference, a missing image or a maths error fails the build.

    python docs/sitetools/site.py            # full; LITEKIT_DOCS_FAST=1 for the quick one
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

if __package__ in (None, ""):  # run as a script: make `sitetools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sitetools import executed, outputs, tutorials

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
API_LIST = DOCS / "api_modules.txt"
STAGE = ROOT / "build" / "docs-src"
EXTRA = ROOT / "build" / "docs-extra"  # copied to the site's root as it is (html_extra_path)
OUT = ROOT / "build" / "docs"
DOCTREES = ROOT / "build" / "docs-doctrees"
NOT_PAGES = ("tools", "_static")
# Pages staged from elsewhere in the repository: data/README.md, how to get each dataset,
# is the site's "datasets" page (its first line, "# data/", becomes this title).
DATA_README = ROOT / "data" / "README.md"
DATA_PAGE, DATA_TITLE = "datasets.md", "# Datasets: where to get them, how to lay them out"


def data_page(readme: Path = DATA_README) -> str:
    """data/README.md as a page of the site, under a title that says what it is."""
    lines = readme.read_text().splitlines()
    return "\n".join([DATA_TITLE, *lines[1:]]) + "\n"


def api_modules(path: Path = API_LIST) -> list[str]:
    """Module names from the list file: one per line, ``#`` starts a comment."""
    names = []
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    if not names:
        from litekit._checks import bad_argument

        raise bad_argument("module list", str(path), "list at least one module, one per line.")
    return names


def summary(module: str) -> str:
    """The first line of a module's docstring."""
    doc = importlib.import_module(module).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def defined_in(value: object, module: str, *, below: bool = False) -> bool:
    """A public class or function defined in ``module`` (or, with ``below``, a submodule)."""
    if not (inspect.isclass(value) or inspect.isfunction(value)):
        return False
    home = getattr(value, "__module__", "") or ""
    return home.startswith(module + ".") if below else home == module


def reexported(module: ModuleType) -> list[str]:
    """Names a package without ``__all__`` imports from its own submodules.

    autodoc leaves them out (they are imported); the page documents them one by one, so a
    module split into a package keeps its reference page without listing its names twice.
    """
    if hasattr(module, "__all__") or not hasattr(module, "__path__"):
        return []
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and defined_in(value, module.__name__, below=True)
    ]


def public_members(module: ModuleType) -> dict[str, object]:
    """The names a page documents for ``module``: its ``__all__``, or what it defines and
    what it re-exports from its submodules."""
    if hasattr(module, "__all__"):
        return {name: getattr(module, name) for name in module.__all__}
    own = [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and defined_in(value, module.__name__)
    ]
    return {name: getattr(module, name) for name in own + reexported(module)}


def identity(value: object) -> tuple:
    """What makes two exported names the same object on two pages."""
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    return (module, qualname) if module and qualname else ("id", id(value))


def module_page(name: str, documented: dict[tuple, str]) -> str:
    """The markdown of one module's page; records in ``documented`` what it documents.

    A name that an earlier page documents (``litekit.ProtoNets`` before
    ``litekit.learners.ProtoNets``) is left out and linked instead: one description per
    object, so every reference has one target.
    """
    module = importlib.import_module(name)
    repeated, new = [], []
    for member, value in public_members(module).items():
        key = identity(value)
        if key in documented:
            repeated.append((member, documented[key]))
        else:
            documented[key] = f"{name}.{member}"
            new.append(member)
    rst = [f".. automodule:: {name}"]
    if repeated:
        rst.append("   :exclude-members: " + ", ".join(m for m, _ in repeated))
    for member in reexported(module):
        if member in new:
            kind = "class" if inspect.isclass(getattr(module, member)) else "function"
            rst += ["", f".. auto{kind}:: {name}.{member}"]
    see = ""
    if repeated:
        links = ", ".join(f"{{py:obj}}`{m} <{target}>`" for m, target in repeated)
        see = f"\nAlso exported here, documented on an earlier page: {links}.\n"
    return f"# `{name}`\n{see}\n```{{eval-rst}}\n" + "\n".join(rst) + "\n```\n"


def api_pages(modules: list[str]) -> dict[str, str]:
    """Markdown of api/index.md and one api/<module>.md per module, in the list's order."""
    pages, rows, documented = {}, [], {}
    for name in modules:
        pages[f"api/{name}.md"] = module_page(name, documented)
        rows.append(f"- [`{name}`]({name}.md): {summary(name)}")
    toctree = "\n".join(modules)
    pages["api/index.md"] = (
        "# API reference\n\nGenerated from the docstrings of the public names.\n\n"
        + "\n".join(rows)
        + f"\n\n```{{toctree}}\n:hidden:\n\n{toctree}\n```\n"
    )
    return pages


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (Sphinx then keeps its cache)."""
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def downloads(notebooks: Path, names: list[str], stage_dir: Path = STAGE) -> dict[Path, str]:
    """The notebooks a tutorial's header offers for download (`tutorials.download_path`):
    each as committed, and its students' edition without the solutions (`student`). They
    are staged beside the pages, outside the documents Sphinx reads (docs/conf.py excludes
    the folder), and the ``{download}`` role copies them into the site."""
    import nbformat

    from sitetools import student

    files = {}
    for name in names:
        source = notebooks / f"{name}.ipynb"
        text = source.read_text()
        edition, _ = student.student_edition(nbformat.reads(text, as_version=4), source.name)
        files[stage_dir / tutorials.download_path(name, "full")] = text
        files[stage_dir / tutorials.download_path(name, "student")] = (
            nbformat.writes(edition) + "\n"
        )
    return files


def stage(
    copies: Iterable[Path], stage_dir: Path = STAGE, docs: Path = DOCS, extra: Path = EXTRA
) -> list[Path]:
    """Fill ``stage_dir`` with the pages and ``extra`` with the figures' images; remove files
    no longer part of the site."""
    import nbformat

    entries = {entry["notebook"]: entry for entry in tutorials.load()}
    wanted: dict[Path, str] = {}
    for page in docs.rglob("*.md"):
        if not set(page.relative_to(docs).parts) & set(NOT_PAGES):
            wanted[stage_dir / page.relative_to(docs)] = page.read_text()
    for image in (docs / "_static").glob("*.svg"):  # the diagrams the pages show as figures
        wanted[stage_dir / "_static" / image.name] = image.read_text()
    index = stage_dir / "tutorials" / "index.md"
    if index in wanted:
        table = tutorials.index_table(list(entries.values()))
        wanted[index] = wanted[index].replace(tutorials.MARKER, table)
    instructor = stage_dir / "instructor.md"
    if instructor in wanted:
        table = tutorials.sessions_table(list(entries.values()))
        wanted[instructor] = wanted[instructor].replace(tutorials.SESSIONS_MARKER, table)
    for name, text in api_pages(api_modules(docs / API_LIST.name)).items():
        wanted[stage_dir / name] = text
    wanted[stage_dir / DATA_PAGE] = data_page(docs.parent / "data" / "README.md")
    files = outputs.FigureFiles(extra / "figures", "../figures/")
    (extra / "figures").mkdir(parents=True, exist_ok=True)  # Sphinx wants it, figures or not
    for copy in copies:
        notebook = nbformat.read(copy, as_version=4)
        header = tutorials.header(entries[copy.stem], notebook.metadata.get(executed.STAMP))
        page = outputs.page_notebook(notebook, header, files)
        wanted[stage_dir / "tutorials" / copy.name] = nbformat.writes(page) + "\n"
    wanted.update(downloads(docs.parent / "notebooks", list(entries), stage_dir))
    for path, text in wanted.items():
        write_if_changed(path, text)
    for path in stage_dir.rglob("*"):
        if path.is_file() and path not in wanted:
            path.unlink()
    for path in (extra / "figures").glob("*"):
        if path.suffix in (".png", ".svg") and path not in files.written:
            path.unlink()
    return sorted(wanted)


def sphinx(stage_dir: Path = STAGE, out: Path = OUT, doctrees: Path = DOCTREES) -> int:
    """sphinx-build into an emptied ``out``, fresh each time (``-E``): every warning shows
    and fails, and no page of an earlier build survives to hide a broken link."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(DOCS), "-E", "-W"]
    command += ["--keep-going", "-d", str(doctrees), str(stage_dir), str(out)]
    return subprocess.run(command, cwd=ROOT).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--fast",
        action="store_true",
        default=os.environ.get("LITEKIT_DOCS_FAST", "") not in ("", "0"),
        help="run missing notebooks with their CI parameters (also LITEKIT_DOCS_FAST=1)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run at once")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sources = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    copies = executed.ensure_executed(sources, fast=args.fast, jobs=args.jobs)
    stage(copies)
    code = sphinx()
    took = time.perf_counter() - started
    kind = "fast" if args.fast else "full"
    print(json.dumps({"docs": str(OUT.relative_to(ROOT)), "build": kind, "seconds": round(took)}))
    if code == 0:
        print(f"open {OUT / 'index.html'} or serve it: python -m http.server -d {OUT}")
    return code


if __name__ == "__main__":
    sys.exit(main())
