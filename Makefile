# dotjoin — two commands for a newcomer: `make demo` and `make test`.
# Each bootstraps .venv from the committed lock (requirements/dev.lock) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-unit lint typecheck services services-down services-status lock bench clean

venv: $(STAMP)

$(STAMP): requirements/dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements/dev.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: venv
	$(BIN)/dotjoin demo

# The README's test command. Service tests skip with a reason when their service is down
# (make services starts them); DOTJOIN_REQUIRE_SERVICES=1 turns those skips into failures.
test: venv
	$(BIN)/python -m pytest -q

test-unit: venv
	$(BIN)/python -m pytest -q tests/unit

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: venv
	$(BIN)/mypy

services: venv
	$(BIN)/dotjoin services up

services-down: venv
	$(BIN)/dotjoin services down

services-status: venv
	$(BIN)/dotjoin services status

# Re-resolve the lock after changing dependencies in pyproject.toml.
lock: venv
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements/dev.lock

bench: venv
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf .dotjoin .pytest_cache .mypy_cache .ruff_cache
