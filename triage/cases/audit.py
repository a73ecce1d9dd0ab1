"""The audit trail: every action is an Event, chained to the one before it by SHA-256.

Each event's hash covers a canonical JSON of its own content plus the previous event's hash, so
editing any row breaks that row's hash, deleting one leaves a gap in ``seq`` and a broken link, and
cutting rows off the end no longer matches the chain head. ``verify`` walks the chain and names
every problem (sequence number, case, action), which is what an inspector needs to look further.

Appends are serialised through the single ``audit_head`` row: on PostgreSQL it is read with
``SELECT ... FOR UPDATE`` (concurrent requests queue behind it, so the chain never forks); on
SQLite every write transaction already holds the database's write lock (``BEGIN IMMEDIATE``).
The event becomes visible only when the caller's transaction commits, together with the change it
records: an action and its record are never separated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.store.tables import AuditHead, Event, utcnow

GENESIS = "0" * 64
HEAD_ID = 1


def canonical(payload: dict[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the same content always gives the same text."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _jsonable(value: Any) -> Any:
    """What a JSON column gives back after a round trip (tuples become lists, keys become strings)."""
    return None if value is None else json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _at_text(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def event_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    case_id: int | None,
    action: str,
    before: Any,
    after: Any,
    model_version: str | None,
    prev_ref: Any,
    prev_hash: str,
) -> str:
    """SHA-256 over the previous hash and the canonical JSON of the row's content."""
    body = canonical(
        {
            "seq": seq,
            "at": _at_text(at),
            "actor": actor,
            "case_id": case_id,
            "action": action,
            "before": before,
            "after": after,
            "model_version": model_version,
            "prev_ref": prev_ref,
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def row_hash(event: Any) -> str:
    """The hash ``event`` (an Event or a row with its columns) should carry given its stored content."""
    return event_hash(
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        case_id=event.case_id,
        action=event.action,
        before=event.before,
        after=event.after,
        model_version=event.model_version,
        prev_ref=event.prev_ref,
        prev_hash=event.prev_hash,
    )


def _lock_head(session: Session) -> AuditHead:
    stmt = select(AuditHead).where(AuditHead.id == HEAD_ID)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    head = session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
    if head is None:
        # The migration creates the head; a concurrent first append is caught by the primary key.
        head = AuditHead(id=HEAD_ID, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    case_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    model_version: str | None = None,
    at: datetime | None = None,
) -> Event:
    """Append one event in the caller's transaction (it commits with the change it describes)."""
    head = _lock_head(session)
    prev_ref = _jsonable(head.ref) if head.seq else None
    moment = (at or utcnow()).astimezone(UTC)
    # Round to what both backends store (microseconds) and normalise JSON before hashing.
    before_j, after_j = _jsonable(before), _jsonable(after)
    seq = head.seq + 1
    fields: dict[str, Any] = {
        "seq": seq,
        "at": moment,
        "actor": actor,
        "case_id": case_id,
        "action": action,
        "before": before_j,
        "after": after_j,
        "model_version": model_version,
        "prev_ref": prev_ref,
        "prev_hash": head.hash,
    }
    event = Event(**fields, hash=event_hash(**fields))
    session.add(event)
    head.seq, head.hash = seq, event.hash
    head.ref = {"case_id": case_id, "action": action}
    session.flush()
    return event


@dataclass(frozen=True)
class Problem:
    """One finding: which row, what is wrong with it."""

    kind: str  # "edited" | "deleted" | "relinked"
    seq: int
    case_id: int | None
    action: str | None
    detail: str

    def __str__(self) -> str:
        where = f"event seq={self.seq}"
        if self.case_id is not None or self.action is not None:
            where += f" (case {self.case_id}, action {self.action!r})"
        return f"{self.kind.upper()}: {where}: {self.detail}"


@dataclass
class AuditReport:
    """The result of ``verify``: how many events were checked and every problem found."""

    checked: int = 0
    head_seq: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        if self.ok:
            return [f"audit trail intact: {self.checked} events, head at seq {self.head_seq}"]
        return [f"audit trail TAMPERED: {len(self.problems)} problem(s) in {self.checked} events"] + [
            f"  {p}" for p in self.problems
        ]


def _events(session: Session, batch: int = 1000) -> Iterator[Any]:
    """All events in chain order as plain rows, page by page (a long trail never sits in memory at once)."""
    cols = [getattr(Event, c.key) for c in Event.__table__.columns]
    last = 0
    while True:
        rows = list(session.execute(select(*cols).where(Event.seq > last).order_by(Event.seq).limit(batch)))
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(session: Session) -> AuditReport:
    """Check every event's hash, every link and the chain head; name each edited or deleted row."""
    report = AuditReport()
    head = session.get(AuditHead, HEAD_ID)
    report.head_seq = head.seq if head else 0
    expected_seq, prev_hash = 1, GENESIS
    for ev in _events(session):
        report.checked += 1
        if ev.seq > expected_seq:
            ref = ev.prev_ref or {}
            missing = f"seq {expected_seq}" if ev.seq == expected_seq + 1 else f"seq {expected_seq}..{ev.seq - 1}"
            report.problems.append(
                Problem(
                    "deleted",
                    ev.seq - 1,
                    ref.get("case_id"),
                    ref.get("action"),
                    f"{missing} missing before seq {ev.seq} (the row(s) were deleted)",
                )
            )
        elif ev.prev_hash != prev_hash:
            report.problems.append(
                Problem(
                    "relinked",
                    ev.seq,
                    ev.case_id,
                    ev.action,
                    "prev_hash does not match the previous event's hash (the previous row was rewritten)",
                )
            )
        if row_hash(ev) != ev.hash:
            report.problems.append(
                Problem("edited", ev.seq, ev.case_id, ev.action, "content does not match its hash (row edited)")
            )
        expected_seq, prev_hash = ev.seq + 1, ev.hash
    last_seq = expected_seq - 1
    if head is not None and (head.seq != last_seq or (head.seq and head.hash != prev_hash)):
        if head.seq > last_seq:
            gone = f"seq {head.seq}" if head.seq == last_seq + 1 else f"seq {last_seq + 1}..{head.seq}"
            detail = f"{gone} missing after seq {last_seq}: the chain head names it (rows deleted at the end)"
            ref = head.ref or {}
            report.problems.append(Problem("deleted", head.seq, ref.get("case_id"), ref.get("action"), detail))
        else:
            detail = f"last event seq {last_seq} does not match the chain head (seq {head.seq})"
            report.problems.append(Problem("relinked", last_seq, None, None, detail))
    return report


def count(session: Session) -> int:
    """Number of events on record."""
    return int(session.scalar(select(func.count()).select_from(Event)) or 0)
