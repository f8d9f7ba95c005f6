# The two commands a newcomer needs: `make dev` (the whole local stack) and `make test` (the suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help install dev demo test unit lint fmt check package clean bench fuzz soak

help:
	@echo "make dev       install what is missing, then run the whole local stack (Ctrl-C stops it)"
	@echo "make demo      the same, with demo companies, buyers and events, and tokens to try"
	@echo "make test      run the full test suite (own emulators on free ports)"
	@echo "make lint      ruff check + ruff format --check + mypy + checkov (Terraform)"
	@echo "make package   build one deployable source bundle per function into build/"
	@echo "make bench     the flash-sale benchmark (own stack; a few minutes)"
	@echo "make fuzz      the webhook and request-body parsers under atheris (bounded, about a minute)"
	@echo "make soak      long runs: the model-based test (30 min) and schemathesis (15 min)"

# Each venv is rebuilt only when its requirements file changes.
$(STAMP): requirements.txt requirements-dev.txt
	@echo "==> creating $(VENV) and installing requirements-dev.txt"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

.venv-localstripe/.installed: requirements-localstripe.txt
	@echo "==> creating .venv-localstripe (localstripe)"
	@test -x .venv-localstripe/bin/python || $(PYTHON) -m venv .venv-localstripe
	@.venv-localstripe/bin/pip install --quiet -r requirements-localstripe.txt
	@touch $@

.venv-tasks/.installed: requirements-tasks-emulator.txt
	@echo "==> creating .venv-tasks (Cloud Tasks emulator)"
	@test -x .venv-tasks/bin/python || $(PYTHON) -m venv .venv-tasks
	@.venv-tasks/bin/pip install --quiet -r requirements-tasks-emulator.txt
	@touch $@

# Only `make lint` needs checkov: `make dev` and `make test` do not wait for it.
.venv-checkov/.installed: requirements-checkov.txt
	@echo "==> creating .venv-checkov (checkov, the Terraform policy scan)"
	@test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	@.venv-checkov/bin/pip install --quiet -r requirements-checkov.txt
	@touch $@

install: $(STAMP) .venv-localstripe/.installed .venv-tasks/.installed
	@$(PY) -m dev.preflight

dev: install
	@echo "==> starting the local stack (Ctrl-C stops everything)"
	@$(PY) -m dev.stack up

demo: install
	@echo "==> starting the local stack with demo data (Ctrl-C stops everything)"
	@$(PY) -m dev.stack up --demo

test: install
	@echo "==> running the test suite (starts its own emulators on free ports)"
	@$(PY) -m pytest

unit: $(STAMP)
	@$(PY) -m pytest tests/unit

# checkov offline: no platform key, no download of external checks, no update check on PyPI.
CHECKOV := env -u BC_API_KEY CKV_SKIP_PACKAGE_UPDATE_CHECK=true LOG_LEVEL=ERROR .venv-checkov/bin/checkov

lint: $(STAMP) .venv-checkov/.installed
	@echo "==> ruff check, ruff format --check, mypy"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@echo "==> checkov on infra/terraform (a skip only inline, with its reason)"
	@$(CHECKOV) -d infra/terraform --framework terraform --skip-download --quiet --compact

fmt: $(STAMP)
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

package: $(STAMP)
	@$(PY) -m dev.package

clean:
	rm -rf build .run .pytest_cache .mypy_cache .ruff_cache

bench: install
	@echo "==> flash-sale benchmark (own stack on free ports; about 3 minutes)"
	@$(PY) -m bench.flash_sale

fuzz: $(STAMP)
	@echo "==> fuzzing the Stripe webhook parser and the request-body parsers (20,000 inputs each)"
	@$(PY) -m fuzz.fuzz_webhook -runs=20000 -max_len=4096
	@$(PY) -m fuzz.fuzz_bodies -runs=20000 -max_len=4096

# Long runs of what `make test` runs briefly; each prints its bound when it starts.
SOAK_MODEL_SECONDS ?= 1800
SOAK_SEEDS ?= 20
SOAK_BUYERS ?= 200
SOAK_CHAOS_SECONDS ?= 40
soak: install
	@echo "==> model-based test for $(SOAK_MODEL_SECONDS) s (programs of up to 30 steps)"
	@MODEL_SECONDS=$(SOAK_MODEL_SECONDS) MODEL_STEPS=30 $(PY) -m pytest tests/e2e/test_model.py -m soak -s --timeout 0
	@echo "==> schemathesis, longer (at most 15 minutes)"
	@SCHEMATHESIS_MAX_EXAMPLES=200 SCHEMATHESIS_STATEFUL_MAX_EXAMPLES=300 SCHEMATHESIS_MAX_TIME=900 \
		$(PY) -m pytest tests/e2e/test_openapi_conformance.py -q --timeout 0
	@echo "==> fault-injected load runs: $(SOAK_SEEDS) seeds, $(SOAK_BUYERS) buyers each (history in .chaos/)"
	@$(PY) -m dev.chaos --seeds 1-$(SOAK_SEEDS) --buyers $(SOAK_BUYERS) --seconds $(SOAK_CHAOS_SECONDS)
