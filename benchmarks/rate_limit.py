"""What the shared rate limiter costs per request: ``SharedTokenBucket.take`` on SQLite and PostgreSQL.

Each call is one short write transaction (upsert the client's bucket row, lock it, refill, spend).
Measured: the median over 5 repeats of the mean time of ``calls`` takes spread over 50 clients, on a
fresh SQLite file and a fresh PostgreSQL schema (local, 127.0.0.1). Baseline in the same run: the
same token-bucket arithmetic on a dict in one process (what a per-worker limiter cost, before it was
shared across workers and hosts).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import median_time
from triage.cases.throttle import SharedTokenBucket
from triage.store.db import Database, init_db

PG_DSN = os.environ.get("TRIAGE_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=5")


def _local(calls: int) -> Callable[[], None]:
    buckets: dict[str, tuple[float, float]] = {}

    def run() -> None:
        for i in range(calls):
            key, now = f"route:10.0.0.{i % 50}", time.time()
            tokens, stamp = buckets.get(key, (20.0, now))
            tokens = min(20.0, tokens + (now - stamp) * 1e6 / 60)
            buckets[key] = (tokens - 1.0 if tokens >= 1 else tokens, now)

    return run


def _shared(db: Database, calls: int) -> Callable[[], None]:
    bucket = SharedTokenBucket(db, per_minute=1e6, burst=20, prefix="route")

    def run() -> None:
        for i in range(calls):
            bucket.take(f"10.0.0.{i % 50}")

    return run


def rate_limit(say: Callable[[str], None], *, quick: bool = False) -> dict[str, Any]:
    """Mean milliseconds per ``take`` on each backend, beside the in-process baseline."""
    import psycopg

    calls = 50 if quick else 200
    out: dict[str, Any] = {"calls_per_repeat": calls, "clients": 50, "repeats": 5}
    out["in_process_baseline_ms"] = round(median_time(_local(calls)) / calls * 1000, 4)
    with tempfile.TemporaryDirectory(prefix="rate-limit-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'triage.db'}")
        init_db(db)
        out["sqlite_ms"] = round(median_time(_shared(db, calls)) / calls * 1000, 3)
        db.dispose()
    schema = f"rate_limit_{secrets.token_hex(4)}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        p = dict(item.split("=", 1) for item in PG_DSN.split())
        where = f"{p.get('user', 'postgres')}@{p.get('host', '127.0.0.1')}:{p.get('port', '5432')}/{p['dbname']}"
        db = Database(f"postgresql+psycopg://{where}?options=-csearch_path%3D{schema}")
        init_db(db)
        out["postgresql_ms"] = round(median_time(_shared(db, calls)) / calls * 1000, 3)
        db.dispose()
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    say(f"rate limit: {out}")
    return out
