"""Background jobs in the database: queued by any worker, claimed by exactly one runner, seen by all.

A job row is the single truth of its state, stage, progress and result, so every worker and host
answers for it and a restart loses nothing. Claiming is a compare-and-set (``state='queued'`` ->
``'running'`` on one id), preceded on PostgreSQL by ``FOR UPDATE SKIP LOCKED`` so runners on
several hosts do not queue behind each other's row locks; on SQLite (one process) the same
compare-and-set is enough. A running job whose runner stopped heartbeating (killed, host lost) is
queued again once (``MAX_ATTEMPTS``), then failed with the reason.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from triage.errors import Conflict, NotFound
from triage.store.db import Database
from triage.store.tables import ACTIVE_JOB_STATES, Job, utcnow

MAX_ATTEMPTS = 2
STATES = ("queued", "running", "succeeded", "failed")


@dataclass(frozen=True)
class JobView:
    """A job as the API shows it."""

    id: str
    kind: str
    requested_by: str
    created_at: datetime
    state: str
    stage: str
    progress: float
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str | None
    worker: str | None
    payload: dict[str, Any] | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(
            id=job.id,
            kind=job.kind,
            requested_by=job.requested_by,
            created_at=job.created_at,
            state=job.state,
            stage=job.stage,
            progress=job.progress,
            finished_at=job.finished_at,
            result=job.result,
            error=job.error,
            worker=job.worker,
            payload=job.payload,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "requested_by": self.requested_by,
            "created_at": self.created_at,
            "state": self.state,
            "stage": self.stage,
            "progress": round(self.progress, 3),
            "finished_at": self.finished_at,
            "result": self.result,
            "error": self.error,
        }


def worker_name() -> str:
    """host:pid, stored on the jobs this process runs."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


class JobQueue:
    """Enqueue, claim, report and finish jobs in ``db``."""

    def __init__(self, db: Database, *, stale_after: timedelta = timedelta(minutes=5)) -> None:
        self.db = db
        self.stale_after = stale_after

    def enqueue(
        self, kind: str, *, requested_by: str, payload: dict[str, Any] | None = None, session: Any = None
    ) -> JobView:
        """A new queued job; Conflict while another job of ``kind`` is queued or running.

        With ``session`` the row is added to that transaction (e.g. with its audit event).
        """
        job = Job(
            id=uuid.uuid4().hex[:12],
            kind=kind,
            state="queued",
            stage="queued",
            progress=0.0,
            requested_by=requested_by,
            created_at=utcnow(),
            attempts=0,
            payload=payload,
        )
        if session is not None:
            self._check_free(session, kind)
            session.add(job)
            session.flush()  # the unique index refuses a second active job here
            return JobView.of(job)
        try:
            with self.db.session() as s:
                self._check_free(s, kind)
                s.add(job)
                s.flush()
                return JobView.of(job)
        except IntegrityError:
            raise self._busy(kind) from None

    def _check_free(self, s: Any, kind: str) -> None:
        active = s.scalar(select(Job.id).where(Job.kind == kind, Job.state.in_(ACTIVE_JOB_STATES)).limit(1))
        if active is not None:
            raise Conflict(f"{kind} job {active} is still queued or running; one job at a time")

    def _busy(self, kind: str) -> Conflict:
        with self.db.read() as s:
            active = s.scalar(select(Job.id).where(Job.kind == kind, Job.state.in_(ACTIVE_JOB_STATES)).limit(1))
        return Conflict(f"{kind} job {active or '?'} is still queued or running; one job at a time")

    def get(self, job_id: str) -> JobView:
        with self.db.read() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id!r}")
            return JobView.of(job)

    def active(self, kind: str) -> JobView | None:
        with self.db.read() as s:
            job = s.scalar(select(Job).where(Job.kind == kind, Job.state.in_(ACTIVE_JOB_STATES)).limit(1))
            return None if job is None else JobView.of(job)

    def due(self, kind: str, *, every: timedelta, now: datetime | None = None) -> bool:
        """True when no job of ``kind`` was queued within ``every`` (a periodic job's turn has come)."""
        with self.db.read() as s:
            last = s.scalar(select(func.max(Job.created_at)).where(Job.kind == kind))
        return last is None or last <= (now or utcnow()) - every

    def prune(self, kind: str, *, older_than: timedelta) -> int:
        """Forget finished jobs of ``kind`` older than ``older_than`` (periodic jobs leave one row a pass)."""
        cutoff = utcnow() - older_than
        with self.db.session() as s:
            old = Job.kind == kind, Job.state.in_(("succeeded", "failed")), Job.created_at < cutoff
            n = int(s.scalar(select(func.count()).select_from(Job).where(*old)) or 0)
            s.execute(delete(Job).where(*old))
            return n

    def counts(self) -> dict[str, int]:
        """Jobs by state, every kind (the metrics' job gauge)."""
        with self.db.read() as s:
            rows = s.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        out = dict.fromkeys(STATES, 0)
        out.update({str(state): int(n) for state, n in rows})
        return out

    def claim(self, kinds: Sequence[str], *, worker: str | None = None) -> JobView | None:
        """The oldest queued job of ``kinds``, now running here; None when there is none."""
        worker = worker or worker_name()
        self.recover()

        def attempt(s: Any) -> JobView | None:
            stmt = select(Job.id).where(Job.state == "queued", Job.kind.in_(list(kinds))).order_by(Job.created_at)
            if s.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            job_id = s.scalar(stmt.limit(1))
            if job_id is None:
                return None
            now = utcnow()
            claimed = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "queued")
                .values(
                    state="running",
                    stage="starting",
                    started_at=now,
                    heartbeat_at=now,
                    worker=worker,
                    attempts=Job.attempts + 1,
                )
            )
            if claimed.rowcount != 1:  # another runner was faster
                return None
            job = s.get(Job, job_id, populate_existing=True)
            return None if job is None else JobView.of(job)

        result: JobView | None = self.db.transaction(attempt)
        return result

    def report(self, job_id: str, stage: str, progress: float) -> None:
        """Progress of a running job (also its heartbeat)."""
        with self.db.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "running")
                .values(stage=stage[:200], progress=max(0.0, min(1.0, progress)), heartbeat_at=utcnow())
            )

    def finish(self, job_id: str, result: dict[str, Any] | None) -> None:
        with self.db.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(state="succeeded", stage="done", progress=1.0, result=result, finished_at=utcnow())
            )

    def fail(self, job_id: str, error: str) -> None:
        with self.db.session() as s:
            s.execute(
                update(Job).where(Job.id == job_id).values(state="failed", error=error[:4000], finished_at=utcnow())
            )

    def recover(self, *, now: datetime | None = None) -> int:
        """Queue again (once) the running jobs whose runner stopped heartbeating; fail them after that."""
        cutoff = (now or utcnow()) - self.stale_after
        with self.db.session() as s:
            stale = list(s.scalars(select(Job).where(Job.state == "running", Job.heartbeat_at < cutoff)))
            for job in stale:
                if job.attempts < MAX_ATTEMPTS:
                    job.state, job.stage, job.worker = "queued", "queued again: its runner stopped", None
                else:
                    job.state, job.finished_at = "failed", utcnow()
                    job.error = f"its runner {job.worker} stopped {job.attempts} times; start it again"
            return len(stale)
