# Two commands do everything on a fresh machine: `make serve` and `make test` (see README.md).
# The developer loop: `make test-fast` (minutes, SQLite only) and `make lint` (needs only the venv).
SHELL := /bin/bash
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
VENV := .venv/bin
PYTEST := $(VENV)/python -m pytest -q

.PHONY: setup venv models serve test test-fast lint bench same-matter

# Everything: Chromium for the browser tests (apt-get), the virtualenv, the default models.
setup:
	bash scripts/setup.sh

# The virtualenv with the project and its dev tools; no apt-get, no model build (seconds when up to date).
venv:
	bash scripts/setup.sh venv

# The virtualenv and the default models (the encoder), still no apt-get.
models:
	bash scripts/setup.sh models

serve: models
	$(VENV)/triage serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

# The full suite, as CI runs it (.ci/run): both database backends, the slow and the browser tests.
test: setup
	$(PYTEST)

# No `slow` tests, no browser, SQLite only (PostgreSQL not needed): under 3 minutes on 2 cores.
test-fast: models
	$(PYTEST) -m "not slow and not browser" --backends sqlite

lint: venv
	$(VENV)/ruff check triage training service benchmarks tests
	$(VENV)/mypy triage training service benchmarks
	$(VENV)/lint-imports
	$(VENV)/deptry .

bench: setup
	$(VENV)/triage bench

# Refit the shipped same-matter scorer (triage/data/same_matter.npz) from ../shared/data (public splits; seed 0).
same-matter: models
	$(VENV)/python scripts/build_same_matter.py
