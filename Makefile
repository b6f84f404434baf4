# Every target creates the virtualenv on first use, so a fresh clone needs only Python and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test soak lint format bench bench-compare bench-manage clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/jobbie server --data-dir ./data

test: $(STAMP)
	$(BIN)/python -m pytest

# The fault campaign at length (RELIABILITY.md): 20 kill -9 runs, 100 examples of the lifecycle
# model, a full disk, SIGTERM under load, 50 SSE streams; figures appended to soak-report.jsonl.
FAULT_TESTS := tests/integration/test_crash.py tests/integration/test_disk_full.py \
	tests/integration/test_faults.py tests/integration/test_event_streams.py \
	tests/integration/test_lifecycle_model.py
soak: $(STAMP)
	JOBBIE_CRASH_RUNS=20 JOBBIE_MODEL_EXAMPLES=100 JOBBIE_FAULT_REPORT=soak-report.jsonl \
		$(BIN)/python -m pytest -s --timeout 1800 $(FAULT_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/hadolint deploy/Dockerfile

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python -m bench.run

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

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
