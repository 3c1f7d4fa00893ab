# Developer entry points. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE ?= data/sample.csv
SCALE ?= 1
WORKERS ?= 1
RUN_DIR := .run
# Compose v2 (`docker compose`) where present, else v1 (`docker-compose`).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: help venv test lint format run up down e2e bench containers sample clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

$(BIN)/pipeline: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,bench,ui]"
	touch $@

venv: $(BIN)/pipeline  ## create .venv and install the project with its dev tools

lint: venv  ## ruff (lint and format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint  ## ruff, then the whole test suite against the local PostgreSQL and Redis
	$(BIN)/pytest

containers:  ## hadolint every Dockerfile and validate docker-compose.yml (tools in .venv-tools)
	bash .ci/containers.sh

# Without Docker: setup, one worker per stage in the background, a run on the sample, its status.
run: venv  ## run the whole pipeline on data/sample.csv with local processes
	@mkdir -p $(RUN_DIR)
	$(BIN)/pipeline setup > /dev/null
	@for stage in setup ingest transform; do \
	  $(BIN)/pipeline worker $$stage > $(RUN_DIR)/$$stage.log 2>&1 & echo $$! > $(RUN_DIR)/$$stage.pid; \
	done
	@src=""; if [ -f "$(SAMPLE)" ]; then src="--source $(SAMPLE)"; fi; \
	 $(BIN)/pipeline run $$src --wait; status=$$?; \
	 for stage in setup ingest transform; do kill -TERM $$(cat $(RUN_DIR)/$$stage.pid) 2>/dev/null || true; done; \
	 wait; echo "worker logs: $(RUN_DIR)/{setup,ingest,transform}.log"; exit $$status

# BuildKit (RUN --mount): the default of Compose v2; Compose v1 builds through the docker client with it only when told.
up:  ## the whole stack in containers: docker compose up --build
	DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1 $(COMPOSE) up --build

down:  ## stop the stack (volumes are kept; add -v by hand to drop them)
	$(COMPOSE) down

e2e: venv  ## the stack for real: engine and images if missing, up, scale, runs, a killed worker, down
	bash .ci/e2e.sh

bench: venv  ## benchmark: floor vs naive vs ours at SCALE x 558,837 lines (make bench SCALE=10 WORKERS=2)
	$(BIN)/python benchmarks/bench.py --scale $(SCALE) --transform-workers $(WORKERS)

sample: venv  ## regenerate data/sample.csv (5,000 lines, seed 42)
	$(BIN)/pipeline sample --rows 5000 --seed 42 --out $(SAMPLE)

clean:  ## remove caches and local run logs
	rm -rf $(RUN_DIR) .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
