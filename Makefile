# The two commands a newcomer needs: `make demo` and `make test`. Both build the virtual
# environment on first use from nothing but Python 3.11+ and the package index.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test unit integration lint bench venv clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit("Regatta needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Temporal dev server + fleet simulator + worker, then a visible rolling upgrade. Ctrl-C stops all.
demo: $(STAMP)
	$(BIN)/regatta dev --demo

# Machines check what review would: lint (ruff), types (mypy), the layers (import-linter), then the tests.
# Three processes (pytest-xdist), a test file at a time each: most of a test's time is spent
# waiting on servers (one process keeps two cores about 30% busy), so three share them well. Each has its own Temporal dev server and simulator,
# and scans its server's histories for credentials when it ends (tests/conftest.py).
test: $(STAMP) lint
	$(BIN)/python -m pytest -n 3 --dist loadfile

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/upgrade_fleet.py --clusters 100 --out benchmarks/results/upgrade_fleet.json

clean:
	rm -rf $(VENV)
