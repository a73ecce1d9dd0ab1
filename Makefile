# Two commands do everything on a fresh machine: `make serve` and `make test` (see README.md).
SHELL := /bin/bash
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
VENV := .venv/bin

.PHONY: setup models serve test lint bench

setup:
	bash scripts/setup.sh

models: setup

serve: setup
	$(VENV)/triage serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

test: setup
	$(VENV)/python -m pytest -q

lint: setup
	$(VENV)/ruff check triage training service benchmarks tests
	$(VENV)/mypy triage training service benchmarks

bench: setup
	$(VENV)/triage bench
