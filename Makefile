# dotjoin — two commands for a newcomer: `make demo` and `make test`.
# Each bootstraps .venv from the committed lock (requirements/dev.lock) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-unit test-airflow lint typecheck services services-down services-status lock bench clean \
	airflow airflow-lock spark quix quix-lock feast feast-lock

venv: $(STAMP)

$(STAMP): requirements/dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements/dev.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# Apache Airflow 3 in its own virtualenv (why: docs/airflow.md), with our package editable and the
# extras its tasks call in-process; from the committed lock requirements/airflow.lock.
AIRFLOW_PYTHON ?= python3.11
AIRFLOW_VENV := .venv-airflow
AIRFLOW_BIN := $(AIRFLOW_VENV)/bin
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

airflow: $(AIRFLOW_STAMP)

$(AIRFLOW_STAMP): requirements/airflow.lock pyproject.toml
	test -x $(AIRFLOW_BIN)/python || $(AIRFLOW_PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(AIRFLOW_BIN)/uv pip sync -q --python $(AIRFLOW_BIN)/python requirements/airflow.lock
	$(AIRFLOW_BIN)/uv pip install -q --python $(AIRFLOW_BIN)/python --no-deps -e .
	touch $(AIRFLOW_STAMP)

# Quix Streams in its own virtualenv (it pins confluent-kafka < 2.13 and an older pydantic): the peer of
# benchmarks/payments_stream.py, from the committed lock requirements/quix.lock. No dotjoin in it.
QUIX_PYTHON ?= python3.11
QUIX_VENV := .venv-quix
QUIX_BIN := $(QUIX_VENV)/bin
QUIX_STAMP := $(QUIX_VENV)/.installed

quix: $(QUIX_STAMP)

$(QUIX_STAMP): requirements/quix.lock
	test -x $(QUIX_BIN)/python || $(QUIX_PYTHON) -m venv $(QUIX_VENV)
	$(QUIX_BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(QUIX_BIN)/uv pip sync -q --python $(QUIX_BIN)/python requirements/quix.lock
	touch $(QUIX_STAMP)

# Feast 0.67 in its own virtualenv (its pins clash with the platform's; `import feast` is slow): the
# feature store's Feast repository runs in it (benchmarks/_feast_ops.py, `feast serve`), from the
# committed lock requirements/feast.lock. No dotjoin in it.
FEAST_PYTHON ?= python3.11
FEAST_VENV := .venv-feast
FEAST_BIN := $(FEAST_VENV)/bin
FEAST_STAMP := $(FEAST_VENV)/.installed

feast: $(FEAST_STAMP)

$(FEAST_STAMP): requirements/feast.lock
	test -x $(FEAST_BIN)/python || $(FEAST_PYTHON) -m venv $(FEAST_VENV)
	$(FEAST_BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(FEAST_BIN)/uv pip sync -q --python $(FEAST_BIN)/python requirements/feast.lock
	touch $(FEAST_STAMP)

# The Spark runtime's connector jars (Kafka source, Iceberg) from services/spark/pom.xml into
# services/.build/spark/jars, with Maven; again only when the pom changes (Spark itself is pyspark).
SPARK_STAMP := services/.build/spark/jars/.pom.sha256

spark: $(SPARK_STAMP)

$(SPARK_STAMP): services/spark/pom.xml $(STAMP)
	$(BIN)/python -m dotjoin.services.spark >/dev/null
	touch $(SPARK_STAMP)

demo: venv
	$(BIN)/dotjoin demo

# The README's test command. Service tests skip with a reason when their service is down
# (make services starts them); DOTJOIN_REQUIRE_SERVICES=1 turns those skips into failures.
# Both suites: the platform's in .venv, the Airflow DAGs' in .venv-airflow (tests/airflow).
test: venv airflow spark
	$(BIN)/python -m pytest -q --durations=20
	$(AIRFLOW_BIN)/python -m pytest -q tests/airflow

test-airflow: airflow
	$(AIRFLOW_BIN)/python -m pytest -q tests/airflow

test-unit: venv
	$(BIN)/python -m pytest -q tests/unit

lint: venv
	$(BIN)/ruff check src tests benchmarks dags
	$(BIN)/ruff format --check src tests benchmarks dags

typecheck: venv
	$(BIN)/mypy

services: venv airflow
	$(BIN)/dotjoin services up

services-down: venv
	$(BIN)/dotjoin services down

services-status: venv
	$(BIN)/dotjoin services status

# Re-resolve the lock after changing dependencies in pyproject.toml.
lock: venv
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements/dev.lock

# Re-resolve the Airflow venv's lock (shared packages pinned as in dev.lock).
airflow-lock: venv
	$(BIN)/uv pip compile -q pyproject.toml requirements/airflow.in --extra postgres --extra dbt \
		-c requirements/dev.lock --python-version 3.11 -o requirements/airflow.lock

# Re-resolve the Quix venv's lock.
quix-lock: venv
	$(BIN)/uv pip compile -q requirements/quix.txt --python-version 3.11 -o requirements/quix.lock

# Re-resolve the Feast venv's lock.
feast-lock: venv
	$(BIN)/uv pip compile -q requirements/feast.txt --python-version 3.11 -o requirements/feast.lock

# The baselines' clients of the bench extra (DuckDB's postgres extension, ADBC) go next to the lock.
BENCH_TOOLS := duckdb-extension-postgres-scanner==1.5.5 adbc-driver-postgresql==1.13.0

bench: venv
	$(BIN)/uv pip install -q --python $(BIN)/python -c requirements/dev.lock $(BENCH_TOOLS)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf .dotjoin .pytest_cache .mypy_cache .ruff_cache
