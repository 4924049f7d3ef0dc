# Two entry points (see README): `make demo` and `make test`.
# The interpreter behind .venv: the distribution's python3.11 when it has one that can make a venv
# (Debian builds it with profile-guided optimisation: about 30% faster on plain Python loops
# than a default pyenv build, see docs/eventbus.md), else python3. `make PY=...` overrides it.
PY ?= $(shell for p in /usr/bin/python3.11 python3; do \
	$$p -c 'import sys, ensurepip; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1 && { echo $$p; exit 0; }; \
	done; echo python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
# The dashboard listens on loopback only; `make dashboard ADDRESS=0.0.0.0` exposes it on every
# interface (put it behind an authenticating reverse proxy first: the app has no login).
ADDRESS ?= 127.0.0.1
STREAMLIT_ARGS = --server.headless true --server.address $(ADDRESS) --server.port $(PORT) --browser.gatherUsageStats false

.PHONY: setup demo dashboard test lint typecheck pytest bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

demo: setup  ## generate demo data, run every pipeline step, start the dashboard
	$(BIN)/python -m scripts.demo
	$(BIN)/streamlit run dashboard/app.py $(STREAMLIT_ARGS)

dashboard: setup
	$(BIN)/streamlit run dashboard/app.py $(STREAMLIT_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/python -m pytest

test: lint typecheck pytest  ## ruff, mypy and the whole (fast) test suite

bench: setup
	$(BIN)/python -m bench.run_all

clean:
	rm -rf build logs/data logs/research logs/cache/*.json logs/cache/history test-output
