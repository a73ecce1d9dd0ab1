#!/usr/bin/env bash
# Restore drill: restore a backup made by scripts/backup.sh into a scratch database and folder, then
# check it the way an operator would after a real restore: the sums match, migrations are current,
# the audit chain verifies against the restored anchors (`triage audit verify`), and counts print.
# Production is never touched; the scratch database is dropped at the end.
#   TRIAGE_DRILL_PG=postgresql://postgres@127.0.0.1:5432/test scripts/restore_drill.sh /backups/2026-12-04
# TRIAGE_DRILL_PG: a database on the server to restore into (its server gets a scratch database).
# TRIAGE_AUDIT_KEY: as in production (dev backups carry data_dir/audit.key instead).
set -euo pipefail
backup=${1:?usage: scripts/restore_drill.sh BACKUP_DIR}
triage=${TRIAGE_BIN:-$(dirname "$0")/../.venv/bin/triage}
[ -x "$triage" ] || triage=triage
backup=$(cd "$backup" && pwd)
(cd "$backup" && sha256sum --check --quiet SHA256SUMS) || { echo "drill FAILED: checksums differ" >&2; exit 1; }

work=$(mktemp -d)
scratch=""
admin=${TRIAGE_DRILL_PG:-postgresql://postgres@127.0.0.1:5432/test}
cleanup() {
  if [ -n "$scratch" ]; then psql "$admin" -qc "DROP DATABASE IF EXISTS \"$scratch\"" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/data"
tar --extract --gzip --file="$backup/data.tar.gz" --directory="$work/data"

if [ -f "$backup/db.dump" ]; then
  scratch="triage_restore_drill_$$"
  psql "$admin" -qc "CREATE DATABASE \"$scratch\"" >/dev/null
  target="${admin%/*}/$scratch"
  pg_restore --no-owner --no-privileges --exit-on-error --dbname="$target" "$backup/db.dump"
  export TRIAGE_DATABASE_URL="${target/postgresql:/postgresql+psycopg:}"
else
  cp "$backup/triage.db" "$work/data/triage.db"
  export TRIAGE_DATABASE_URL="sqlite:///$work/data/triage.db"
fi
export TRIAGE_DATA_DIR="$work/data"
unset TRIAGE_AUDIT_ANCHOR_FILE  # the restored folder's anchors, not production's file

"$triage" db upgrade >/dev/null
"$triage" audit verify || { echo "drill FAILED: the restored audit chain does not verify" >&2; exit 1; }
"$triage" db counts
echo "drill passed: $backup restores and verifies"
