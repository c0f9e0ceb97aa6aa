# The two commands a newcomer needs: `make demo` and `make test`. Both build the virtual
# environment on first use from nothing but Python 3.11+ and the package index.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test unit integration lint bench venv clean browser compose

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

# Machines check what review would: lint (ruff), types (mypy), the layers (import-linter), and the tests,
# side by side (lint needs a core for a minute while the tests' servers start); either failing fails.
# Seven processes (pytest-xdist), a test file at a time each, in the order tests/conftest.py puts them (the longest
# first: --no-loadscope-reorder, or pytest-xdist hands out the files with the most tests first, and the tour, two
# tests, began five minutes in). Most of a test's time is spent waiting on servers, timers and polls; since the CLI's
# tests fork `regatta` warm (tests/warm_cli.py) the run no longer fills two cores with five (137% of the CPU with
# seven, 2026-12-08); eight starved a workflow task past Temporal's two-second deadlock check once. Each has its own
# Temporal dev server and simulator, and scans its server's histories for credentials when it ends (tests/conftest.py).
test: $(STAMP) browser compose
	@$(BIN)/python -m compileall -q regatta workflows activities workers tests benchmarks >/dev/null  # every CLI start and test process reads the bytecode, not the source
	@$(MAKE) --no-print-directory lint & lint=$$!; \
	$(BIN)/python -m pytest -n 7 --dist loadfile --no-loadscope-reorder --durations=25; tests=$$?; \
	wait $$lint; linted=$$?; \
	if [ $$linted -ne 0 ]; then echo "lint failed (ruff, mypy or lint-imports: see above)"; fi; \
	exit $$(( tests != 0 || linted != 0 ))

# Debian's Chromium for the fleet view's browser tests: Playwright drives it by its path and
# downloads no browser. Where it is missing and apt-get may run (root), it is installed; elsewhere
# the browser tests skip and say so (CI sets REGATTA_REQUIRE_BROWSER=1, which makes them fail).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }; \
	  else echo "no chromium, and apt-get cannot run here: the browser tests will skip"; fi; }

# Debian's docker-compose validates docker-compose.yml (schema and interpolation) without a Docker
# engine: tests/e2e/test_compose.py. Installed like chromium where apt-get may run; CI sets
# REGATTA_REQUIRE_COMPOSE=1, which makes its tests fail rather than skip when it is missing.
compose:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's docker-compose to validate docker-compose.yml"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-compose >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-compose >/dev/null; }; \
	  else echo "no docker-compose, and apt-get cannot run here: the compose file's tests will skip"; fi; }

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
