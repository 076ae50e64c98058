# litekit: `make demo` runs the tutorials, `make test` runs the checks. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.litekit-installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: install demo test lint notebooks lab bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (litekit)" >/dev/null
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	@mkdir -p build
	$(BIN)/python -m litekit.quickstart --out build/quickstart.json
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; \
		$(BIN)/papermill --cwd notebooks --kernel python3 --progress-bar "$$nb" "build/$$(basename $$nb)" || exit 1; \
	done
	@echo "Results are in build/: quickstart.json and the executed notebooks (open with make lab)."

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check litekit tests benchmarks

notebooks: $(STAMP)
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; \
		LITEKIT_HEADLESS=1 $(BIN)/papermill --cwd notebooks --kernel python3 "$$nb" "$$nb" || exit 1; \
		$(BIN)/python tests/nbtools.py finalize "$$nb" || exit 1; \
	done

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/lite_memory.py

clean:
	rm -rf build .pytest_cache .ruff_cache
