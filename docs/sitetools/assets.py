"""The site's JavaScript, from installed Python packages: nothing loads from a CDN.

- MathJax 3 (the version and component Sphinx loads from a CDN by default,
  ``tex-mml-chtml.js``) from the ``django-static-mathjax`` package, which ships MathJax's
  own distribution as static files and depends on nothing (Django is not needed);
- plotly.js from the plotly package's ``package_data`` (the copy plotly.py itself embeds
  in offline HTML), so the figures use the same plotly.js as the notebooks.

`vendor` copies them into one folder that Sphinx adds to ``_static``.
"""

from __future__ import annotations

import filecmp
import shutil
from importlib import resources
from pathlib import Path

MATHJAX_COMPONENT = "tex-mml-chtml.js"
# MathJax loads these on demand (fonts, TeX extensions, the menu, accessibility): keep them.
MATHJAX_FOLDERS = ("input", "output", "a11y", "ui", "sre", "adaptors")


def mathjax_folder() -> Path:
    """MathJax's ``es5`` folder in the installed django-static-mathjax package."""
    folder = Path(str(resources.files("mathjax"))) / "static" / "mathjax" / "es5"
    if not (folder / MATHJAX_COMPONENT).is_file():
        raise FileNotFoundError(
            f"MathJax not found at {folder}: pip install django-static-mathjax (the dev extra)"
        )
    return folder


def plotly_js() -> Path:
    """plotly.min.js as the plotly package ships it."""
    path = Path(str(resources.files("plotly"))) / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js not found at {path}: reinstall plotly")
    return path


def copy_if_changed(source: Path, dest: Path) -> None:
    """Copy a file unless ``dest`` already has the same size and time (keeps builds quick)."""
    if dest.exists() and filecmp.cmp(source, dest, shallow=True):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, dest)


def vendor(dest: Path) -> Path:
    """Fill ``dest`` with ``mathjax/`` (the component and what it loads) and ``plotly/``."""
    mathjax = mathjax_folder()
    copy_if_changed(mathjax / MATHJAX_COMPONENT, dest / "mathjax" / MATHJAX_COMPONENT)
    licence = mathjax.parent / "LICENSE"
    if licence.is_file():
        copy_if_changed(licence, dest / "mathjax" / "LICENSE")
    for name in MATHJAX_FOLDERS:
        for path in (mathjax / name).rglob("*"):
            if path.is_file():
                copy_if_changed(path, dest / "mathjax" / path.relative_to(mathjax))
    copy_if_changed(plotly_js(), dest / "plotly" / "plotly.min.js")
    return dest
