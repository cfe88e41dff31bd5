# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_output

.PHONY: venv demo test test-slow lint typecheck pytest docs notebooks lab clean

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/find-python.sh
	@py=$$(scripts/find-python.sh) || exit 1; \
	  echo "using $$py"; \
	  [ -x $(BIN)/python ] || $$py -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The demo's own output folder is replaced on each run (--force is the explicit flag for that).
demo: venv
	$(BIN)/bayes-alliance demo --out $(DEMO_OUT) --force

# The layer contracts of pyproject.toml's [tool.importlinter]: an upward import fails here.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/python -m pytest

# Executes every notebook (small sampler profile) and builds the site with warnings as errors.
docs: venv
	$(BIN)/python docs/build.py --profile small

# The tutorials as Jupyter notebooks next to their scripts (not executed; git-ignored). A notebook
# edited since it was written is kept unless FORCE=1. NB_FLAGS="--execute --profile small" runs them.
notebooks: venv
	$(BIN)/python docs/nbrender.py --out notebooks $(if $(FORCE),--force) $(NB_FLAGS)

# JupyterLab (the `notebooks` extra) on the tutorials; notebooks edited by hand are kept, not
# refreshed (the `-` lets Lab start anyway).
lab: venv $(VENV)/.notebooks-installed
	-$(BIN)/python docs/nbrender.py --out notebooks
	$(BIN)/jupyter lab notebooks/

$(VENV)/.notebooks-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,notebooks]'
	@touch $@

test: lint typecheck pytest docs

test-slow: venv
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache docs/_build docs/notebooks docs/cli.md
