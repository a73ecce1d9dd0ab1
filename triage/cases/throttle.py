"""Rate limits and login lockouts kept in the database, so every worker and host applies one limit.

Why the database and not process memory or Redis: with several workers (``triage serve --workers``)
or hosts, per-process buckets multiply the limit by the number of processes; the database is already
the one shared store of a deployment (SQLite file or PostgreSQL), so no new service is needed for the
default install. Each check is one short transaction on one row (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite's write lock), which costs about a millisecond beside the ~175 ms of CPU an
endpoint it guards spends. Neither table is locked by any other writer, so these transactions never
take part in a lock cycle with cases or the audit head (a lockout's audit event comes after the row).

Times are seconds since the epoch from an injected clock (the service passes its own, so tests move
time instead of sleeping); wall-clock time rather than a monotonic clock, because it is shared by all
processes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from triage.cases import audit
from triage.errors import RateLimited
from triage.store.db import Database
from triage.store.tables import LoginFailure, RateBucket

Clock = Callable[[], float]
Row = TypeVar("Row", RateBucket, LoginFailure)
PRUNE_EVERY = 1000  # calls between sweeps of rows that no longer hold anything


def _lock_row(session: Session, table: type[RateBucket] | type[LoginFailure], key: str, **fresh: float) -> None:
    """Create the row when missing, without a race between two first requests (ON CONFLICT DO NOTHING)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(table).values(key=key, **fresh).on_conflict_do_nothing(index_elements=["key"]))


def _locked(session: Session, table: type[Row], key: str) -> Row:
    """The row of ``key``, locked until the transaction ends (SQLite: the write lock already is)."""
    stmt = select(table).where(table.key == key)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.execute(stmt.execution_options(populate_existing=True)).scalar_one()


def _printable(text: str) -> str:
    """A key the database stores as text: PostgreSQL refuses NUL, so no control character goes in."""
    return "".join(c if c.isprintable() else "?" for c in text)


@dataclass
class SharedTokenBucket:
    """A token bucket per key: ``burst`` calls at once, then one every ``60 / per_minute`` seconds."""

    db: Database
    per_minute: float
    burst: int
    prefix: str
    clock: Clock = time.time
    _calls: int = field(default=0, init=False)

    @property
    def rate(self) -> float:
        return self.per_minute / 60.0

    def take(self, client: str) -> float:
        """0 when the call may go ahead (a token is spent), else the seconds until one is there."""
        now = self.clock()
        key = f"{self.prefix}:{_printable(client)}"[:200]
        with self.db.session() as s:
            _lock_row(s, RateBucket, key, tokens=float(self.burst), stamp=now)
            row = _locked(s, RateBucket, key)
            tokens = min(float(self.burst), row.tokens + max(0.0, now - row.stamp) * self.rate)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
            row.tokens, row.stamp = (tokens - 1.0 if tokens >= 1.0 else tokens), max(now, row.stamp)
        self._calls += 1
        if self._calls % PRUNE_EVERY == 0:
            self.prune(now)
        return wait

    def retry_after(self, client: str) -> int:
        """``take`` rounded up to whole seconds, as the Retry-After header wants."""
        wait = self.take(client)
        return 0 if wait <= 0 else max(1, math.ceil(wait))

    def prune(self, now: float | None = None) -> int:
        """Forget buckets that have refilled: they are indistinguishable from new ones."""
        full_after = self.burst / self.rate
        cutoff = (self.clock() if now is None else now) - full_after
        with self.db.session() as s:
            stale = delete(RateBucket).where(RateBucket.key.startswith(f"{self.prefix}:"), RateBucket.stamp < cutoff)
            result = s.execute(stale)
        return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class LoginPolicy:
    """How many failures earn a lockout, and how long it lasts (doubling per further failure)."""

    max_failures: int = 5
    max_failures_per_address: int = 20
    lockout_s: float = 30.0
    lockout_max_s: float = 3600.0

    def lockout(self, failures: int, limit: int) -> float:
        """Seconds locked after the ``failures``-th failure (0 below the limit): exponential back-off."""
        if failures < limit:
            return 0.0
        return min(self.lockout_max_s, self.lockout_s * 2.0 ** min(failures - limit, 30))


@dataclass
class LoginThrottle:
    """Failed sign-ins per account and per client address; a lockout refuses attempts before any hashing.

    Checking before the password is verified means a locked account or address costs no argon2 time.
    The account key is taken whether or not the account exists, so lockouts say nothing about which
    names are real. A success clears the account's count, not the address's: otherwise an attacker
    could reset the address counter by signing in to an account of their own between guesses.
    """

    db: Database
    policy: LoginPolicy = field(default_factory=LoginPolicy)
    clock: Clock = time.time

    @staticmethod
    def keys(username: str, address: str) -> list[str]:
        return [f"account:{_printable(username.strip()[:64])}", f"address:{_printable(address[:100])}"]

    def check(self, username: str, address: str) -> None:
        """Raise RateLimited while the account or the address is locked out."""
        now = self.clock()
        keys = self.keys(username, address)
        with self.db.read() as s:
            rows = list(s.scalars(select(LoginFailure).where(LoginFailure.key.in_(keys))))
        waits = [(row.locked_until - now, row.key) for row in rows if row.locked_until > now]
        if waits:
            wait, key = max(waits)
            raise RateLimited(_reason(key, wait), retry_after=math.ceil(wait))

    def failed(self, username: str, address: str) -> None:
        """Count one failure for the account and the address; audit and raise when it starts a lockout."""
        now = self.clock()
        account, client = self.keys(username, address)
        limits = {account: self.policy.max_failures, client: self.policy.max_failures_per_address}
        started: list[tuple[str, int, float]] = []
        with self.db.session() as s:
            for key in sorted(limits):  # one order for every writer of this table
                _lock_row(s, LoginFailure, key, failures=0, last_failure=now, locked_until=0.0)
                row = _locked(s, LoginFailure, key)
                stale = now - row.last_failure > self.policy.lockout_max_s
                row.failures = 1 if stale else row.failures + 1
                row.last_failure = now
                wait = self.policy.lockout(row.failures, limits[key])
                if wait:
                    row.locked_until = now + wait
                    started.append((key, row.failures, wait))
            for key, failures, wait in started:
                kind, _, who = key.partition(":")
                audit.record(
                    s,
                    actor="system",
                    action="login.lockout",
                    after={kind: who, "failures": failures, "locked_s": round(wait, 3)},
                )
        if started:
            key, _, wait = max(started, key=lambda t: t[2])
            raise RateLimited(_reason(key, wait), retry_after=math.ceil(wait))

    def succeeded(self, username: str) -> None:
        """Forget the account's failures after a correct password."""
        key = self.keys(username, "")[0]
        with self.db.session() as s:
            s.execute(delete(LoginFailure).where(LoginFailure.key == key))

    def prune(self) -> int:
        """Drop rows whose failures are forgotten anyway (older than the longest lockout)."""
        cutoff = self.clock() - self.policy.lockout_max_s
        with self.db.session() as s:
            result = s.execute(
                delete(LoginFailure).where(LoginFailure.last_failure < cutoff, LoginFailure.locked_until < cutoff)
            )
        return int(getattr(result, "rowcount", 0) or 0)


def _reason(key: str, wait: float) -> str:
    what = "this account" if key.startswith("account:") else "this address"
    return f"too many failed sign-ins for {what}; try again in {math.ceil(wait)} s"
