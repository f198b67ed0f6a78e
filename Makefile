# Two commands for a fresh machine with python3 (3.11+) and make:
#   make run   set up .venv, build the demo store when missing, open the app on http://localhost:8501
#   make test  set up .venv with the dev requirements and run every check (ruff, pytest, browser tests)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DB ?= data/workbench.duckdb
PORT ?= 8501
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test setup setup-dev demo lint unit e2e bench chromium clean

$(VENV)/bin/activate:
	@echo ">> creating $(VENV) with $$($(PYTHON) --version)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt pyproject.toml | $(VENV)/bin/activate
	@echo ">> installing runtime requirements"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	@echo ">> installing dev requirements"
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

$(DB): | $(VENV)/.runtime
	@echo ">> building the demo store $(DB) (first run only)"
	$(VENV)/bin/workbench demo --db $(DB)

demo: setup
	$(VENV)/bin/workbench demo --db $(DB)

run: setup $(DB)
	@echo ">> starting the app on http://localhost:$(PORT)"
	WORKBENCH_DB=$(DB) $(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.headless true

chromium:
	@if [ -x "$(CHROMIUM)" ]; then echo ">> chromium: $(CHROMIUM)"; \
	elif [ "$$(id -u)" = "0" ]; then echo ">> installing Debian's chromium for the browser tests"; \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)) \
		|| { echo "could not install the 'chromium' package"; exit 1; }; \
	else echo "browser tests need Debian's 'chromium' package: sudo apt-get install chromium"; exit 1; fi

lint: setup-dev
	@echo ">> ruff check and format --check; import-linter's layer contracts (docs/ARCHITECTURE.md)"
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

unit: setup-dev
	@echo ">> pytest (unit, AppTest, notebooks)"
	$(PY) -m pytest -q -m "not e2e" -n 2

e2e: setup-dev chromium
	@echo ">> pytest (browser tests in headless Chromium; screenshots in tests/artifacts/)"
	$(PY) -m pytest -q -m e2e

test: lint unit e2e
	@echo ">> all checks passed"

bench: setup-dev
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/artifacts
