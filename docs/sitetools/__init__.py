"""The documentation site's build tools: executed notebooks, their outputs, the site itself.

- `executed`: run a tutorial (papermill, ``INTERACTIVE=True``) and stamp the copy with a
  fingerprint of what it was run from, so a later build can tell whether it is up to date;
- `outputs`: turn an executed notebook into the page's notebook (plotly figures as HTML that
  draws with the bundled plotly.js, widgets as the static state they were left in);
- `assets`: MathJax and plotly.js copied from installed packages, for a site with no CDN;
- `site`: ``make docs``: stage the sources, the notebooks and the API pages, run Sphinx;
- `screenshots`: pictures of a few built pages, for a person to look at.
"""
