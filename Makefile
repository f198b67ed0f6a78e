# Two commands for a fresh machine with python3 (3.11+) and make:
#   make run   set up .venv, build the demo store when missing, serve the app on http://127.0.0.1:8501
#   make test  set up .venv with the dev requirements and run every check (ruff, pytest, browser tests)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DB ?= data/workbench.duckdb
PORT ?= 8501
HOST ?= 127.0.0.1
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test setup setup-dev demo lint unit e2e bench chromium promtool clean

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

# The app listens on this machine only (127.0.0.1); HOST=0.0.0.0 shares it: read README, "Security", first.
# Streamlit's "Did not auto detect external IP" line (no internet here) is dropped; the URL is printed once
# the server answers its health check.
run: setup $(DB)
	@echo ">> starting the app (Ctrl-C stops it)"
	@WORKBENCH_DB=$(DB) $(VENV)/bin/streamlit run app.py --server.address $(HOST) --server.port $(PORT) \
		--server.headless true 2>&1 | grep --line-buffered -v "auto detect external IP" & \
	for i in $$(seq 1 240); do \
		$(PY) -c "import sys, urllib.request as u; \
			sys.exit(u.urlopen('http://$(HOST):$(PORT)/_stcore/health', timeout=1).read() != b'ok')" 2>/dev/null \
			&& { echo ">> the app is up: open http://$(HOST):$(PORT)"; break; }; \
		sleep 0.5; \
	done; wait

chromium:
	@if [ -x "$(CHROMIUM)" ]; then echo ">> chromium: $(CHROMIUM)"; \
	elif [ "$$(id -u)" = "0" ]; then echo ">> installing Debian's chromium for the browser tests"; \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)) \
		|| { echo "could not install the 'chromium' package"; exit 1; }; \
	else echo "browser tests need Debian's 'chromium' package: sudo apt-get install chromium"; exit 1; fi

# promtool (Debian's prometheus package) checks the exporter's exposition and evaluates the example alert rules
# in tests/metrics; without it (and without root to install it) those two tests are skipped, and say so.
promtool:
	@if command -v promtool >/dev/null; then echo ">> promtool: $$(command -v promtool)"; \
	elif [ "$$(id -u)" = "0" ]; then echo ">> installing Debian's prometheus package for promtool"; \
		(apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
		 || (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1)) \
		|| echo ">> could not install prometheus: the promtool tests will be skipped"; \
	else echo ">> no promtool (sudo apt-get install prometheus): the promtool tests will be skipped"; fi

lint: setup-dev
	@echo ">> ruff check and format --check; import-linter's layer contracts (docs/ARCHITECTURE.md)"
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

unit: setup-dev promtool
	@echo ">> pytest (unit, AppTest, notebooks)"
	$(PY) -m pytest -q -m "not e2e" -n 2

e2e: setup-dev chromium
	@echo ">> pytest (browser tests in headless Chromium, two workers; screenshots in tests/artifacts/)"
	$(PY) -m pytest -q -m e2e -n 2 --dist worksteal

test: lint unit e2e
	@echo ">> all checks passed"

bench: setup-dev
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/artifacts
