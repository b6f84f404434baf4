# Every target creates the virtualenv on first use, so a fresh clone needs only Python and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-postgres soak lint format docs docs-serve lock lock-upgrade bench bench-postgres bench-compare bench-manage bench-fairness clean

install: $(STAMP)

# The pinned versions of requirements/dev.txt (`make lock`), plus Jobbie itself in editable
# mode. Naming the extras too lets a dependency added to pyproject.toml but not locked yet
# install anyway, until the next `make lock`.
$(STAMP): pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt -e '.[dev,docs,postgres]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/jobbie server --data-dir ./data

# Everything on SQLite (the contract suite on both backends, and the suites that test the
# PostgreSQL cluster itself), then every HTTP suite again with every server on PostgreSQL
# (tests/backends.py): both backends pass the same suites. Without a PostgreSQL server
# (outside CI) the PostgreSQL parts skip, saying how to enable them. `env`, not a bare
# assignment: make then runs pytest without /bin/sh in between (the CLI tests detect the
# calling shell for completion scripts, and sh has none).
HTTP_SUITES := tests/integration tests/client tests/cli tests/ui
# Already run in the first pass: they start their own servers on PostgreSQL.
PG_ONLY := $(addprefix --ignore=tests/integration/test_,pgbouncer.py postgres_cluster.py \
	postgres_outage.py)
test: $(STAMP)
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory test-postgres

# The second half of `make test` alone: every HTTP suite on PostgreSQL.
test-postgres: $(STAMP)
	env JOBBIE_TEST_BACKEND=postgres $(BIN)/python -m pytest $(HTTP_SUITES) $(PG_ONLY)

# The fault campaign at length (RELIABILITY.md): 20 kill -9 runs (10 more on three servers
# sharing PostgreSQL, and a PostgreSQL crash), 100 examples of the lifecycle
# model, a full disk, SIGTERM under load, 50 SSE streams; figures appended to soak-report.jsonl.
FAULT_TESTS := tests/integration/test_crash.py tests/integration/test_disk_full.py \
	tests/integration/test_faults.py tests/integration/test_event_streams.py \
	tests/integration/test_lifecycle_model.py tests/integration/test_postgres_cluster.py \
	tests/integration/test_postgres_outage.py
soak: $(STAMP)
	JOBBIE_CRASH_RUNS=20 JOBBIE_CLUSTER_RUNS=10 JOBBIE_MODEL_EXAMPLES=100 \
		JOBBIE_FAULT_REPORT=soak-report.jsonl \
		$(BIN)/python -m pytest -s --timeout 1800 $(FAULT_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench docs/gen
	$(BIN)/ruff format --check src tests bench docs/gen
	$(BIN)/mypy
	$(BIN)/hadolint deploy/Dockerfile

format: $(STAMP)
	$(BIN)/ruff format src tests bench docs/gen
	$(BIN)/ruff check --fix src tests bench docs/gen

# The documentation site (MkDocs + Material) into build/site; --strict fails on any warning
# (a broken link or anchor, a missing page, an unknown generated section).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:8000

# Lock files from pyproject.toml: requirements/dev.txt (dev + docs extras: make install, CI)
# and requirements/docker.txt (runtime only: the Docker image). Re-run after changing a
# dependency; pins still allowed by pyproject.toml are kept. lock-upgrade takes the newest.
LOCK := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --strip-extras \
        --no-emit-index-url --no-emit-find-links
# Needs only pip-tools in the virtualenv, not the lock files it writes.
$(BIN)/pip-compile:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.4'

lock: $(BIN)/pip-compile
	$(LOCK) $(LOCK_ARGS) --extra dev --extra docs --extra postgres -o requirements/dev.txt pyproject.toml
	$(LOCK) $(LOCK_ARGS) --extra postgres -o requirements/docker.txt pyproject.toml

lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

# Options pass through: make bench BENCH_ARGS='--database postgres --servers 2 --quick'
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# SQLite, PostgreSQL and two servers on PostgreSQL in one interleaved run (needs PostgreSQL at
# 127.0.0.1:5432, user postgres; creates and drops jobbie_bench_* databases):
# make bench-postgres POSTGRES_BENCH_ARGS='--quick'
bench-postgres: $(STAMP)
	$(BIN)/python -m bench.cluster $(POSTGRES_BENCH_ARGS)

# Jobbie vs Huey and RQ in one run (needs Redis at 127.0.0.1:6379 for RQ; uses and flushes db 13).
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

# Options pass through: make bench-compare COMPARE_ARGS='--quick --json bench/results/cmp.json'
bench-compare: $(BENCH_STAMP)
	$(BIN)/python -m bench.compare $(COMPARE_ARGS)

# Not part of `bench`: loads 1,000,000 jobs and takes several minutes.
bench-manage: $(STAMP)
	$(BIN)/python -m bench.manage

# Claim cost of fair queueing over 10,000 keys and 1,000,000 pending jobs, on SQLite and then on
# PostgreSQL (127.0.0.1:5432, user postgres; creates and drops a jobbie_fair_* database).
# make bench-fairness FAIRNESS_ARGS='--jobs 100000 --keys 1000'
PG_BENCH_DSN ?= postgresql://postgres@127.0.0.1:5432/postgres
bench-fairness: $(STAMP)
	$(BIN)/python -m bench.fairness $(FAIRNESS_ARGS)
	$(BIN)/python -m bench.fairness --database $(PG_BENCH_DSN) $(FAIRNESS_ARGS)

clean:
	rm -rf $(VENV) build dist site .pytest_cache .mypy_cache .ruff_cache
