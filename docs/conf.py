"""Sphinx configuration of the litekit site (built by ``make docs``, see docs/sitetools/site.py).

The sources Sphinx reads are staged in build/docs-src/ (this folder's pages, the executed
tutorials and one generated page per module of docs/api_modules.txt); this file stays here
and is passed with ``-c docs``. Nothing on the built pages loads from the network: MathJax
and plotly.js are copied from installed packages (docs/sitetools/assets.py), intersphinx is off.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))

from sitetools.assets import vendor  # noqa: E402

project = "litekit"
author = "the litekit authors"
copyright = "the litekit authors, MIT licence"
release = version = "0.1.0"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_codeautolink",
    "sphinx.ext.githubpages",  # writes .nojekyll, so GitHub Pages serves _static/
]

# Pages: MyST markdown and executed notebooks, which Sphinx never runs again.
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
# _notebooks/: the tutorials as files to download (docs/sitetools/site.py stages them), not pages.
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_notebooks"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # widgets are made static before Sphinx sees them; no CDN scripts
nb_merge_streams = True
# Markdown outputs (each tutorial's closing recap, built from the run's numbers) are read as
# MyST, so their $maths$ is typeset like the pages' own.
nb_render_markdown_format = "myst"

# Maths: MathJax 3 served from the site itself.
VENDOR = ROOT / "build" / "docs-vendor"
vendor(VENDOR)
mathjax_path = "mathjax/tex-mml-chtml.js"

# API reference: Google-style docstrings, members in source order, type hints in the text.
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False  # torch's docstrings (nn.Module.train ...) are not ours
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# `name` in a docstring links to that name when it is documented, and reads as code when it
# is not: litekit's docstrings are plain text, where backticks mean code, not a reference.
default_role = "py:obj"

# Every cross-reference must resolve (a type in a signature, a {py:func} role in a page),
# except into packages this site does not document (no intersphinx: it would fetch their
# inventories from the network), into private names, and the default role's backticks.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:obj", r".*"),
    (r"py:.*", r"(torch|torchvision|nn|numpy|np|matplotlib|plotly|ipywidgets|PIL)(\..*)?"),
    (r"py:.*", r"(tqdm|IPython|abc|collections|contextlib|typing|pathlib)(\..*)?"),
    (r"py:.*", r"(os|io|dataclasses|argparse)(\..*)?"),
    (r"py:.*", r"(Tensor|Module|Figure|Axes|Generator|Dataset|DataLoader|Path|Any|Callable)"),
    (r"py:class", r"(litekit(\.\w+)*\.)?_\w+"),  # private base classes (Bases: _SamplerBase)
    (r"py:class", r"litekit\.data\.orbit\.Video"),  # not exported from litekit.data
]

# Links from the tutorials' code to the API pages.
codeautolink_concat_default = True
codeautolink_autodoc_inject = False

html_theme = "sphinx_book_theme"
html_title = "litekit"
html_static_path = ["_static", str(VENDOR)]
# The figures' images of the tutorial pages, written by sitetools (outputs.FigureFiles) and
# referred to from their HTML (a live figure's fallback for readers without JavaScript).
html_extra_path = [str(ROOT / "build" / "docs-extra")]
html_css_files = ["litekit.css"]
html_favicon = "_static/favicon.svg"
html_last_updated_fmt = None
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_source_button": False,
    "use_repository_button": False,
}
html_show_sourcelink = False
html_context = {"default_mode": "light"}  # figures have white backgrounds; the switch stays


def add_plotly(app, pagename, templatename, context, doctree) -> None:
    """Load plotly.js, before the figures' own scripts, on the pages that have figures."""
    if "plotly-graph-div" in context.get("body", ""):
        app.add_js_file("plotly/plotly.min.js", priority=100)


def setup(app) -> None:
    app.connect("html-page-context", add_plotly)
