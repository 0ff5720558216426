# The one-command entry points. `make test` and `make demo` each run `setup` first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
# Poetry and every package it needs are pinned by hash in .ci/poetry-requirements.txt (pip --require-hashes):
# the jobs that hold cloud credentials install it, and run no installer code PyPI could swap. The pin lives in
# that file only (a newer poetry may write a different lock file); each pin gets a home of its own, so moving the
# pin never rewrites a poetry that another checkout is running. Regenerate the file with the command in its header.
POETRY_REQUIREMENTS := .ci/poetry-requirements.txt
POETRY_SUM := $(firstword $(shell cksum < $(POETRY_REQUIREMENTS)))
POETRY_HOME ?= $(HOME)/.local/share/deployctl-poetry/$(POETRY_SUM)
POETRY := $(POETRY_HOME)/bin/poetry
POETRY_STAMP := $(POETRY_HOME)/.installed-$(POETRY_SUM)
# Poetry installs into our venv (never one of its own).
POETRY_ENV := POETRY_VIRTUALENVS_IN_PROJECT=true VIRTUAL_ENV=$(CURDIR)/$(VENV)
BIN := $(VENV)/bin
# The venv is named by the lock it was built from (its content, not its date: a restored or copied .venv looks
# newer than any checkout). Another lock never installs over a venv: it is emptied and built again, so nothing
# an older lock (or anyone) left in it survives. poetry.lock's content-hash covers pyproject.toml's dependencies.
LOCK_SUM := $(firstword $(shell cat poetry.lock $(POETRY_REQUIREMENTS) | cksum))
MAIN_STAMP := $(VENV)/.installed-main-$(LOCK_SUM)
DEV_STAMP := $(VENV)/.installed-dev-$(LOCK_SUM)
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
	$(PYTHON) -m venv --clear $(POETRY_HOME)
	$(POETRY_HOME)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r $(POETRY_REQUIREMENTS)
	touch $@

# Bytecode up front: with PYTHONDONTWRITEBYTECODE set (common in CI images) every start would recompile.
$(MAIN_STAMP): | $(POETRY_STAMP)
	$(PYTHON) -m venv --clear $(VENV)
	$(POETRY_ENV) $(POETRY) install --no-interaction --only main --compile
	$(BIN)/python -m compileall -q deployctl
	touch $@

$(DEV_STAMP): | $(POETRY_STAMP)
	$(PYTHON) -m venv --clear $(VENV)
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
