# litekit: `make demo` runs the tutorials, `make docs` builds the site, `make test` runs the checks.
# Each sets up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.litekit-installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: install demo docs screenshots student test lint notebooks lab bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (litekit)" >/dev/null
	@touch $@

install: $(STAMP)

# The tutorials run with INTERACTIVE=True (plotly figures, panels) and are stamped with what
# they ran from, so that `make docs` reuses them while they are up to date.
demo: $(STAMP)
	@mkdir -p build
	$(BIN)/python -m litekit.quickstart --out build/quickstart.json
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; \
		$(BIN)/python docs/sitetools/executed.py run --progress --into build "$$nb" || exit 1; \
	done
	@echo "Results are in build/: quickstart.json and the executed notebooks (make docs shows them)."

# The site, in build/docs/. LITEKIT_DOCS_FAST=1 runs missing notebooks with their CI parameters.
docs: $(STAMP)
	$(BIN)/python docs/sitetools/site.py

screenshots: $(STAMP)
	$(BIN)/python docs/sitetools/screenshots.py

# The students' editions in build/student/: every tutorial without its solutions (see
# docs/sitetools/student.py for the convention that marks them), still runnable.
student: $(STAMP)
	$(BIN)/python docs/sitetools/student.py

# The fast site first (warnings are errors): the notebook tests reuse its executed copies and
# tests/browser/test_docs.py checks the pages. The tests then run on every core, up to 4
# workers (TEST_WORKERS=0 runs them in this one process); conftest.py keeps each notebook's
# cells and each browser module together.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/ruff check .
	LITEKIT_DOCS_FAST=1 $(BIN)/python docs/sitetools/site.py
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --maxprocesses 4

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check litekit tests benchmarks docs

notebooks: $(STAMP)
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; \
		LITEKIT_HEADLESS=1 $(BIN)/python tests/nbtools.py run "$$nb" || exit 1; \
		$(BIN)/python tests/nbtools.py finalize "$$nb" || exit 1; \
	done

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/lite_memory.py

clean:
	rm -rf build .pytest_cache .ruff_cache
