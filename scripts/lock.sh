#!/usr/bin/env bash
# Write the lock files from pyproject.toml: exact versions with SHA-256 hashes, for pip --require-hashes.
#   requirements/serve.lock   what `triage serve` needs (no extras)
#   requirements/dev.lock     development, tests and training (extras dev + train; torch is the local CPU build)
# Versions are held to what the current .venv runs (its `pip freeze` is a constraint), so the lock is the
# tested set; run it after changing a dependency in pyproject.toml, then scripts/setup.sh venv.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-}
if [ -z "$UV" ]; then
  tool=$(mktemp -d)
  python3 -m venv "$tool" && "$tool/bin/pip" install --quiet uv==0.13.9
  UV="$tool/bin/uv"
fi
installed=$(mktemp)
VENV=${VENV:-.venv}  # the environment whose versions the lock keeps
"$VENV/bin/pip" freeze --exclude-editable 2>/dev/null | grep -v '^-e\|pakn' > "$installed"
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --index-strategy unsafe-best-match
  --find-links /opt/wheels --extra-index-url file:///opt/pypi/simple --constraint "$installed" --no-header
  --annotation-style line)
# Into fresh files: uv reads an existing output as preferences, and old hashes can make it fail.
out=$(mktemp -d)
"$UV" pip compile pyproject.toml "${common[@]}" -o "$out/serve.lock"
"$UV" pip compile pyproject.toml --extra dev --extra train "${common[@]}" -o "$out/dev.lock"
sed -i "s#, -c $installed##; s#-c $installed#installed#" "$out"/*.lock
mkdir -p requirements && mv "$out"/serve.lock "$out"/dev.lock requirements/
rm -rf "$installed" "$out"
