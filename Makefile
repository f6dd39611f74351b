# Everything a developer or CI runs. The README starts with `make up` and `make test`.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# What `make up` needs (the project and its runtime dependencies), and what
# the tests, lint and benchmarks need on top (the `dev` extra: S3 clients,
# schemas, plotting, type checking), each a stamp file in the venv.
INSTALLED := $(VENV)/.installed
INSTALLED_DEV := $(VENV)/.installed-dev
DEV_DIR ?= .tristore
# Extra flags for `tristore dev up`, e.g. UP_ARGS='--base-port 27100'.
UP_ARGS ?=
PYTEST_ARGS ?=
# Extra flags for bench targets, e.g. ARGS=--quick.
ARGS ?=
# Minutes of traffic of `make soak` (make test runs the 2-minute form).
SOAK_MINUTES ?= 30

.PHONY: install install-dev up down status compose-up compose-down test test-unit test-integration lint format proto docs bench bench-compare bench-replication bench-ab bench-operations bench-idle bench-large bench-cli soak clean

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $(INSTALLED)

$(INSTALLED_DEV): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(INSTALLED_DEV)

install: $(INSTALLED)

install-dev: $(INSTALLED_DEV)

# Bytecode for the project's own modules, written even where the environment
# sets PYTHONDONTWRITEBYTECODE (Python then reads .pyc files but never writes
# them, so every process compiled tristore/ and node/ from source again:
# 0.25 s of CPU per CLI call, 13.1 -> 10.6 s per dev cluster start).
# Incremental: only changed files are compiled.
BYTECODE = $(BIN)/python -m compileall -q -j 0 tristore node witness replicator bench >/dev/null

up: install ## start a local three-AZ cluster in $(DEV_DIR)
	@$(BYTECODE)
	$(BIN)/tristore dev up --dir $(DEV_DIR) $(UP_ARGS)

down: install
	$(BIN)/tristore dev down --dir $(DEV_DIR)

status: install
	$(BIN)/tristore dev status --dir $(DEV_DIR)

# The docker compose stack (two clusters, Prometheus, Grafana if its image is
# here) in one step, offline or not: images, `up`, healthchecks, export lines.
compose-up: install ## deploy/compose.sh up; COMPOSE_PROJECT_NAME, TRISTORE_IMAGE, BASE_IMAGE override
	PYTHON=$(BIN)/python deploy/compose.sh up

compose-down: ## stop the compose stack; ARGS=-v also removes its volumes (every object)
	deploy/compose.sh down $(ARGS)

# Two workers (pytest-xdist) for the unit tests, three for the tiers that start
# processes (much of their time is waiting on starts, fsyncs and kills, not CPU):
# each worker takes whole files (--dist loadfile, so a module's cluster lives in
# one worker) and records the port blocks it starts clusters on, so no other
# worker picks an overlapping one. Files go out in collection order
# (--no-loadscope-reorder), which puts the longest first (tests/conftest.py), so
# no worker is left alone at the end with a file of several minutes. The compose
# stack (e2e: an image build and 22 containers, mostly waiting on docker, on
# ports 7100-7800 that no other tier uses) runs beside the unit tier, its output
# shown once both are done; any tier that fails (or collects nothing: pytest's
# exit 5) fails the target.
test: install-dev ## every tier, short form; TRISTORE_LONG=1 for the long fault runs
	@$(BYTECODE)
	@e2e_log=$$(mktemp); \
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS) >"$$e2e_log" 2>&1 & e2e=$$!; \
	echo "$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)  (beside the unit tier)"; \
	echo "$(BIN)/python -m pytest -m unit -n 2 $(PYTEST_ARGS)"; \
	$(BIN)/python -m pytest -m unit -n 2 $(PYTEST_ARGS); unit=$$?; \
	wait $$e2e; e2e_status=$$?; \
	echo "--- the e2e tier (exit $$e2e_status):"; cat "$$e2e_log"; rm -f "$$e2e_log"; \
	test $$unit -eq 0 && test $$e2e_status -eq 0
	$(BIN)/python -m pytest -m "not unit and not e2e" -n 3 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test-unit: install-dev
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

test-integration: install-dev
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tristore node witness replicator bench

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

proto: install-dev ## regenerate tristore/pb from proto/
	$(BIN)/python scripts/gen_protos.py

# The documentation site (mkdocs.yml): docs/*.md with README.md as its front
# page, into site/. --strict: a broken link or a missing anchor fails the build.
docs: install-dev ## build the documentation site into site/
	$(BIN)/mkdocs build --strict --site-dir site

bench: install-dev ## writes bench/results/latest.json and prints a table
	$(BIN)/python -m bench.run

bench-compare: install-dev ## tristore vs three-member etcd vs the grpc.aio echo ceiling; bench/results/compare.{json,png}
	$(BIN)/python -m bench.compare $(ARGS)

bench-replication: install-dev ## replication lag under PUT load; bench/results/replication.json
	$(BIN)/python -m bench.replication

bench-ab: install-dev ## two trees interleaved, CPU per operation (ARGS="REF_A [REF_B]"); bench/results/ab.json
	$(BIN)/python -m bench.ab $(ARGS)

bench-operations: install-dev ## drain, undrain, repair, rebuild times; bench/results/operations.json
	$(BIN)/python -m bench.operations

bench-idle: install-dev ## CPU of an idle dev cluster, per process; bench/results/idle.json
	$(BIN)/python -m bench.idle

bench-large: install-dev ## MiB/s of PUT, GET and multipart of 64 MiB and 1 GiB; bench/results/large.json
	$(BIN)/python -m bench.large $(ARGS)

bench-cli: install-dev ## start-up time of the tristore command; bench/results/cli_startup.json
	$(BIN)/python -m bench.cli_startup $(ARGS)

soak: install-dev ## SOAK_MINUTES (30) of mixed traffic under faults, every guarantee checked; bench/results/soak.{json,png}
	@$(BYTECODE)
	TRISTORE_SOAK_MINUTES=$(SOAK_MINUTES) TRISTORE_SOAK_OUT=bench/results $(BIN)/python -m pytest -m soak tests/soak -s $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache .mypy_cache .ruff_cache
