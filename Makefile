# Every target creates the virtualenv on first use, so a fresh clone needs only Python and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint format bench bench-compare bench-manage clean

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

lint: $(STAMP)
	$(BIN)/ruff check src tests bench docs/gen
	$(BIN)/ruff format --check src tests bench docs/gen
	$(BIN)/mypy
	$(BIN)/hadolint deploy/Dockerfile

format: $(STAMP)
	$(BIN)/ruff format src tests bench docs/gen
	$(BIN)/ruff check --fix src tests bench docs/gen

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
