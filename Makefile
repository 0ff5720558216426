# The one-command entry points. `make test` and `make demo` each run `setup` first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
# Poetry is pinned: a newer one may write a different lock file (CI caches the venv by poetry.lock).
POETRY_VERSION := 2.5.1
POETRY_HOME ?= $(HOME)/.local/share/deployctl-poetry
POETRY := $(POETRY_HOME)/bin/poetry
POETRY_STAMP := $(POETRY_HOME)/.installed-$(POETRY_VERSION)
# Poetry installs into our venv (never one of its own).
POETRY_ENV := POETRY_VIRTUALENVS_IN_PROJECT=true VIRTUAL_ENV=$(CURDIR)/$(VENV)
BIN := $(VENV)/bin
MAIN_STAMP := $(VENV)/.installed-main
DEV_STAMP := $(VENV)/.installed-dev
CACHE ?= $(HOME)/.cache/deployctl

.PHONY: help install setup tools check test test-unit bench demo clean

help:
	@echo "make install - the CLI and its runtime dependencies only (what a pipeline job needs)"
	@echo "make setup   - install + the dev tools and the lab's tools (tests, checks, demo)"
	@echo "make demo    - set up, then rehearse the whole flow in the local sandbox"
	@echo "make test    - set up, then run every test (unit + cli + lab)"
	@echo "make check   - linters, types, dead code, dependencies (deptry, audit, lock), import direction, chart, terraform and workflow checks"
	@echo "make bench   - benchmarks (writes bench/results.json)"

$(POETRY_STAMP):
	$(PYTHON) -m venv $(POETRY_HOME)
	$(POETRY_HOME)/bin/pip install --quiet 'poetry==$(POETRY_VERSION)'
	touch $@

# Bytecode up front: with PYTHONDONTWRITEBYTECODE set (common in CI images) every start would recompile.
$(MAIN_STAMP): pyproject.toml poetry.lock | $(POETRY_STAMP)
	$(PYTHON) -m venv $(VENV)
	$(POETRY_ENV) $(POETRY) install --no-interaction --only main --compile
	$(BIN)/python -m compileall -q deployctl
	touch $@

$(DEV_STAMP): pyproject.toml poetry.lock | $(POETRY_STAMP)
	$(PYTHON) -m venv $(VENV)
	$(POETRY_ENV) $(POETRY) install --no-interaction --with dev --compile
	$(BIN)/python -m compileall -q deployctl
	touch $@ $(MAIN_STAMP)

# install: the CLI and its runtime dependencies only: no test tools (moto, ...) in jobs that hold cloud credentials.
install: $(MAIN_STAMP)

# setup: the dev group + the lab's tools (helm, control plane, registry, ...) built once into $(CACHE).
setup: $(DEV_STAMP) tools

tools: $(MAIN_STAMP)
	$(BIN)/python -m deployctl.sandbox.tools install

# The lab's tools first on PATH; terraform reads providers from the offline mirror config the tools step wrote.
TOOLS_ENV = PATH="$(CACHE)/tools/bin:$$PATH" TF_CLI_CONFIG_FILE="$(CACHE)/tools/terraformrc"

check: setup
	$(BIN)/ruff check deployctl tests bench .ci
	$(BIN)/ruff format --check deployctl tests bench .ci
	$(BIN)/mypy
	$(BIN)/mypy .ci/audit.py
	$(BIN)/vulture --min-confidence 80 deployctl
	$(BIN)/python -m tests.import_direction
	$(POETRY_ENV) $(POETRY) check --lock
	$(BIN)/deptry .
	$(BIN)/python .ci/audit.py
	$(TOOLS_ENV) .ci/check-chart.sh
	$(TOOLS_ENV) .ci/check-terraform.sh
	$(TOOLS_ENV) .ci/check-workflows.sh

# Two workers, whole files each (a file's lab fixtures stay in one process): the lab tests mostly wait on real
# processes (terraform, helm, the control plane), so two files run side by side on 2 cores (serial ~29 min, ~17).
test: setup
	$(BIN)/pytest -n 2 --dist loadfile

test-unit: $(DEV_STAMP)
	$(BIN)/pytest -m "not lab"

bench: setup
	$(BIN)/python -m bench

demo: setup
	$(BIN)/python -m deployctl.sandbox.demo

clean:
	rm -rf $(VENV) .deployctl .pytest_cache .mypy_cache .ruff_cache
