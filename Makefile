# Milton Keynes digital platform — the two commands are `make run` and `make test`.
# Both do all their own set-up on a fresh machine: uv, the workspace, the Kafka jars
# (from Maven Central) and, for tests, PostgreSQL (Debian's package).

SHELL := /bin/bash
PYTHON ?= python3
# Finds uv or installs it (pip --user, else a private venv in var/bootstrap where pip refuses:
# PEP 668) and prints its path.
UV_BOOTSTRAP := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))infra/scripts/bootstrap-uv.sh
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# pytest-xdist workers (each starts its own Kafka, PostgreSQL and Redis when its tests need
# them; a file's tests stay on one worker). Many tests wait on Kafka and the network, so two
# overlap well even on two busy cores.
TEST_WORKERS ?= 2

.PHONY: help run test screenshots lint typecheck bench contracts setup uv sync kafka-jars frontend-assets browser-tools postgres redis tools clean

help:
	@echo "make run        the whole platform on http://127.0.0.1:8000 (Ctrl-C stops it)"
	@echo "make test       the whole suite against real Kafka and PostgreSQL"
	@echo "make lint       ruff check, ruff format --check and mypy"
	@echo "make bench      benchmarks, printed as ratios against a same-run baseline"
	@echo "make contracts  regenerate JSON Schemas and the AsyncAPI document"
	@echo "make screenshots the citizen portal's and staff console's pages at 375 and 1280 px in var/screenshots/"

uv:
	@PYTHON="$(PYTHON)" sh "$(UV_BOOTSTRAP)" >/dev/null

# The first sync shows what it installs; later ones are quiet.
sync: uv
	@uv=$$(PYTHON="$(PYTHON)" sh "$(UV_BOOTSTRAP)") && \
	  if [ -d $(VENV) ]; then quiet=--quiet; else quiet=; \
	    echo "[setup] first sync: downloading the workspace's packages (a minute or two)"; fi && \
	  echo "[setup] syncing the workspace (uv sync --frozen)" && "$$uv" sync --frozen $$quiet

kafka-jars: sync
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ]; then $(PY) -m mkinfra.kafka fetch; fi

# GOV.UK Frontend (npm govuk-frontend, pinned in webkit.assets) for the front-ends: fetched
# once into libs/webkit/src/webkit/static/govuk-frontend/ (git-ignored).
frontend-assets: sync
	@$(PY) -m webkit.assets

# The front-ends' browser tests: Debian's chromium + chromium-driver (apt-get), axe-core and
# the Nu HTML Checker (npm, pinned in webkit.tools) under var/webtools/.
browser-tools: sync
	@$(PY) -m webkit.tools

postgres: sync
	@if [ -z "$$DATABASE_URL" ] && ! docker info >/dev/null 2>&1; then $(PY) -c "from mkinfra.postgres import ensure_postgres_installed as e; print(\"[setup] PostgreSQL binaries:\", e())"; fi

redis: sync
	@if [ -z "$$REDIS_URL" ]; then $(PY) -c "from mkinfra.redis import ensure_redis_installed as e; print(\"[setup] Redis server:\", e())"; fi

# helm and promtool for the chart and alert-rule checks: built once with `go install` (pinned
# versions, mkinfra.tools) into var/tools/bin.
tools: sync
	@$(PY) -m mkinfra.tools

setup: sync kafka-jars frontend-assets

run: setup
	@$(PY) -m mkinfra.devstack

test: setup postgres redis tools browser-tools
	@start=$$(date +%s); $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	  echo "[make test] the suite took $$(( $$(date +%s) - start )) s (exit $$rc)"; exit $$rc

lint: sync
	@echo "[lint] ruff check"
	@$(VENV)/bin/ruff check .
	@echo "[lint] ruff format --check"
	@$(VENV)/bin/ruff format --check .
	@echo "[lint] mypy"
	@$(VENV)/bin/mypy

typecheck: sync
	@$(VENV)/bin/mypy

contracts: sync
	@$(PY) -m contracts.generate

bench: setup postgres
	@$(PY) -m bench

# Every page of the citizen portal's browser journeys at 375 px and 1280 px wide, under
# var/screenshots/ (README's docs/images/citizen-portal-check-answers.png is one of them).
screenshots: setup postgres redis browser-tools
	@rm -rf var/screenshots
	@WEBKIT_SCREENSHOTS=var/screenshots $(PY) -m pytest -q \
	  frontends/citizen-portal/tests/test_journeys.py -k "not without_javascript and not keyboard"
	@WEBKIT_SCREENSHOTS=var/screenshots $(PY) -m pytest -q frontends/staff-console/tests
	@echo "[screenshots] $$(ls var/screenshots | wc -l) files in var/screenshots/"

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
