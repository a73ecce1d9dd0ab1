#!/usr/bin/env bash
# Back up pakn-triage: the database (pg_dump custom format, or a consistent SQLite copy) and the data
# folder (keys, audit anchors, case index, MLflow store), with SHA-256 sums. Run on the host that
# serves, with the service's environment (TRIAGE_DATABASE_URL, TRIAGE_DATA_DIR).
#   scripts/backup.sh /backups/2026-12-04
# Restore: see docs/deploy.md; scripts/restore_drill.sh checks a backup without touching production.
set -euo pipefail
out=${1:?usage: scripts/backup.sh OUT_DIR}
data=${TRIAGE_DATA_DIR:-var}
url=${TRIAGE_DATABASE_URL:-}
py=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
[ -x "$py" ] || py=python3
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [[ "$url" == postgresql* ]]; then
  libpq=${url/+psycopg/}  # SQLAlchemy's driver suffix means nothing to libpq
  pg_dump --format=custom --no-owner --no-privileges --file="$out/db.dump" "$libpq"
  echo "database: PostgreSQL dump $(du -h "$out/db.dump" | cut -f1)"
else
  db=${url#sqlite:///}
  [ -n "$url" ] || db="$data/triage.db"
  # sqlite3's online backup: a consistent copy while the service writes.
  "$py" - "$db" "$out/triage.db" <<'PY'
import sqlite3, sys
src, dst = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
with dst:
    src.backup(dst)
src.close(); dst.close()
PY
  echo "database: SQLite copy $(du -h "$out/triage.db" | cut -f1)"
fi

# The data folder without the live SQLite files (copied above) and without caches rebuilt at start-up.
tar --create --gzip --file="$out/data.tar.gz" --directory="$data" \
  --exclude='./triage.db' --exclude='./triage.db-*' --exclude='./theme-cache' .
(cd "$out" && sha256sum -- * | grep -v ' SHA256SUMS$' > SHA256SUMS)
echo "data folder: $(du -h "$out/data.tar.gz" | cut -f1); sums in $out/SHA256SUMS"
