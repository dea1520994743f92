# HealthMate Pipeline. `make help` lists the targets.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHON := $(PY)

.PHONY: help venv deps run test unit docs bench chaos fuzz fhir-validate stack-up stack-down stack-status stack-reset secure-up secure-down setup lint airflow airflow-test

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,airflow,spark]'
	@touch $(STAMP)

PYTHON_BOOT ?= python3.11
venv: $(STAMP) ## create .venv and install the package with the dev, airflow and spark extras

deps: venv ## also install system packages the tests need (apt)
	bash scripts/install_system_deps.sh

run: venv ## start Kafka + PostgreSQL, set up topics/schema, run the worker with a demo producer
	bash scripts/stack.sh up
	bash scripts/run_local.sh

test: deps ## install what is missing, lint, start the stack, run every test, stop what was started
	$(MAKE) --no-print-directory lint
	bash scripts/test.sh

unit: venv ## every test that needs no service (no Kafka, no PostgreSQL); needs promtool and kubectl (make deps)
	@for tool in promtool kubectl; do command -v $$tool >/dev/null || { echo "make unit needs $$tool: run make deps" >&2; exit 2; }; done
	$(PY) -m pytest -m "not integration" -q

docs: venv ## build the docs site into .stack/site (strict: a broken link or anchor fails); open .stack/site/index.html
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -d .stack/site

bench: venv ## worker vs a minimal consumer, the ETL old vs new, the importer, the gateway, worker path vs Spark (BENCH_N=200000, BENCH_ETL_N=1000000, BENCH_SPARK_N=100000)
	bash scripts/stack.sh up
	$(PY) bench/run.py
	$(PY) bench/etl.py
	$(PY) bench/imports.py
	$(PY) bench/gateway.py
	$(PY) bench/spark.py

chaos: venv ## fault suite on a private Kafka + PostgreSQL (kill -9, restarts, rebalance, overload, poison)
	$(PY) scripts/chaos.py $(SCENARIOS)

fuzz: venv ## long Hypothesis run: process_message and the warehouse write (needs the stack)
	bash scripts/stack.sh up
	HYPOTHESIS_PROFILE=long $(PY) -m pytest tests/fuzz -q

fhir-validate: venv ## our FHIR output through HAPI FHIR's (HL7) validator, offline; needs the stack (see docs/how-to/fhir-validate.md)
	bash scripts/stack.sh up
	$(PY) -m pytest -q tests/web/test_fhir_validator.py

stack-up: ## start the local Kafka + PostgreSQL (idempotent)
	bash scripts/stack.sh up
stack-down: ## stop what stack-up started
	bash scripts/stack.sh down
stack-status: ## show the local stack's state
	bash scripts/stack.sh status
stack-reset: ## stop the stack and wipe its data
	bash scripts/stack.sh reset
secure-up: ## start the secure stack (Kafka SASL_SSL + ACLs, PostgreSQL TLS only): see docs/operating/security.md
	bash scripts/secure_stack.sh up
secure-down: ## stop what secure-up started
	bash scripts/secure_stack.sh down

setup: venv ## create topics, apply warehouse migrations, create the coming monthly partitions
	$(PY) -m streams setup

airflow: ## AIRFLOW_HOME in .stack/airflow (SQLite, our DAGs, settings exported), migrate, list DAGs
	bash scripts/airflow.sh prepare
airflow-test: ## run one DAG once, print its final state and each task's (exit 1 unless it succeeded): make airflow-test DAG=healthmate_backfill PARAMS='{"topic": "...", "start": "0:0"}'
	bash scripts/airflow.sh test "$(DAG)" '$(PARAMS)'

lint: venv ## ruff + mypy (make test runs it first)
	$(VENV)/bin/ruff check healthmate streams batch web tests bench conftest.py
	$(VENV)/bin/mypy healthmate streams batch web
