# The one-command entry points. `make test` and `make demo` each run `setup` first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
POETRY_HOME ?= $(HOME)/.local/share/deployctl-poetry
POETRY := $(POETRY_HOME)/bin/poetry
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CACHE ?= $(HOME)/.cache/deployctl

.PHONY: help install setup tools check test test-unit bench demo clean

help:
	@echo "make demo   - set up, then rehearse the whole flow in the local sandbox"
	@echo "make test   - set up, then run every test (unit + cli + lab)"
	@echo "make check  - linters, types, dead code, import direction, chart and terraform checks"
	@echo "make bench  - benchmarks (writes bench/results.json)"

$(POETRY):
	$(PYTHON) -m venv $(POETRY_HOME)
	$(POETRY_HOME)/bin/pip install --quiet 'poetry>=2,<3'

$(STAMP): pyproject.toml poetry.lock | $(POETRY)
	$(PYTHON) -m venv $(VENV)
	POETRY_VIRTUALENVS_IN_PROJECT=true VIRTUAL_ENV=$(CURDIR)/$(VENV) $(POETRY) install --no-interaction --with dev --compile
	@# Bytecode up front: with PYTHONDONTWRITEBYTECODE set (common in CI images) every start would recompile.
	$(BIN)/python -m compileall -q deployctl
	touch $(STAMP)

# install: the CLI and its Python dependencies only (what a pipeline job needs).
install: $(STAMP)

# setup: install + the lab's tools (helm, control plane, registry, ...) built once into $(CACHE).
setup: install tools

tools: $(STAMP)
	$(BIN)/python -m deployctl.sandbox.tools install

# The lab's tools first on PATH; terraform reads providers from the offline mirror config the tools step wrote.
TOOLS_ENV = PATH="$(CACHE)/tools/bin:$$PATH" TF_CLI_CONFIG_FILE="$(CACHE)/tools/terraformrc"

check: setup
	$(BIN)/ruff check deployctl tests bench
	$(BIN)/ruff format --check deployctl tests bench
	$(BIN)/mypy
	$(BIN)/vulture --min-confidence 80 deployctl
	$(BIN)/python -m tests.import_direction
	$(TOOLS_ENV) .ci/check-chart.sh
	$(TOOLS_ENV) .ci/check-terraform.sh
	$(TOOLS_ENV) .ci/check-workflows.sh

test: setup
	$(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest -m "not lab"

bench: setup
	$(BIN)/python -m bench

demo: setup
	$(BIN)/python -m deployctl.sandbox.demo

clean:
	rm -rf $(VENV) .deployctl .pytest_cache .mypy_cache .ruff_cache
