"""The audit trail: every action is an Event, chained to the one before it by SHA-256 and signed by HMAC.

Each event's hash covers a canonical JSON of its own content plus the previous event's hash, so
editing any row breaks that row's hash, deleting one leaves a gap in ``seq`` and a broken link, and
cutting rows off the end no longer matches the chain head. Each event also carries ``mac``, an
HMAC-SHA-256 of its hash under the audit key (``TRIAGE_AUDIT_KEY`` or ``data_dir/audit.key``, never in
the database), and the head carries one over (seq, hash): whoever can write the database but not
read the key can no longer rewrite the tail and rehash it, nor forge the head after cutting it.
Outside the database, the periodic job appends the head to an anchor file (``write_anchor``); a
chain later found shorter than an anchor, or different at an anchored seq, was cut or rewritten.
Submission texts and reply bodies are covered by their SHA-256 in the events' payload.
``verify`` walks the chain and names every problem (sequence number, case, action), which is what
an inspector needs to look further.

Lock order, one for every writer on both backends (a transaction takes locks only in this order):

1. case rows, ascending id (``Cases.get(..., for_update=True)``, ``Cases.lock``);
2. campaign rows, ascending id;
3. the audit head, last: ``record`` only queues the event, and the head is locked and the queued
   events appended when the transaction commits (a ``before_commit`` hook; ``append_pending`` does
   it earlier for a caller that must read its own events before the commit, after its last case lock).

So a transaction holding the head never waits for a case, and two writers never wait on each other
in a circle; the head is also held for the shortest time. Appends are serialised through the single
``audit_head`` row: on PostgreSQL it is read with ``SELECT ... FOR UPDATE`` (the chain never forks);
on SQLite every write transaction already holds the database's write lock (``BEGIN IMMEDIATE``).
Writers that still lose a race (deadlock 40P01, serialization failure 40001, SQLite busy) are run
again by ``Database.transaction``. The event becomes visible only when the caller's transaction
commits, together with the change it records: an action and its record are never separated.

A missing head, or one that does not name the last event, stops every audited write with
``AuditUnavailable`` (503) instead of forking or crashing the chain: ``triage audit verify`` says what
happened and ``triage audit restore-head`` (itself audited) resumes. Chains written before the key
existed keep ``mac`` NULL; ``triage audit seal`` signs them once after checking the plain chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from triage.errors import AuditUnavailable
from triage.store.kpi_tables import KpiEvidence
from triage.store.tables import AuditHead, Event, Response, Submission, utcnow

GENESIS = "0" * 64
HEAD_ID = 1
_PENDING = "audit_pending"
KEY_INFO = "audit_key"
_HOW_TO_RESUME = "run `triage audit verify` to see what happened, then `triage audit restore-head` to resume (audited)"


def canonical(payload: dict[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the same content always gives the same text."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def text_digest(**parts: str | None) -> str:
    """SHA-256 of named texts (a submission's title and content, a reply's body): what the events carry."""
    return hashlib.sha256(canonical(dict(parts)).encode()).hexdigest()


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


def event_mac(key: bytes, digest: str) -> str:
    """HMAC-SHA-256 of an event's hash (the hash already covers its content and its predecessor)."""
    return hmac.new(key, f"event\n{digest}".encode(), hashlib.sha256).hexdigest()


def head_mac(key: bytes, seq: int, digest: str) -> str:
    """HMAC of the head's (seq, hash); a different message from ``event_mac``, so a row's MAC never fits the head."""
    return hmac.new(key, f"head\n{seq}\n{digest}".encode(), hashlib.sha256).hexdigest()


def _head_mac_ok(key: bytes | None, head: AuditHead) -> bool:
    return (
        key is not None and head.mac is not None and hmac.compare_digest(head.mac, head_mac(key, head.seq, head.hash))
    )


def _key(session: Session) -> bytes | None:
    key = session.info.get(KEY_INFO)
    return key if isinstance(key, bytes) else None


def _last_event(session: Session) -> tuple[int, str] | None:
    row = session.execute(select(Event.seq, Event.hash).order_by(Event.seq.desc()).limit(1)).first()
    return None if row is None else (int(row.seq), str(row.hash))


def _signed(session: Session, seq: int) -> bool:
    return session.scalar(select(Event.mac).where(Event.seq == seq)) is not None


def _lock_head(session: Session) -> AuditHead:
    """The head row, locked; ``AuditUnavailable`` when it is missing or does not name the last event."""
    stmt = select(AuditHead).where(AuditHead.id == HEAD_ID)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    head = session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
    last = _last_event(session)
    if head is None:
        if last is not None:
            raise AuditUnavailable(
                f"the audit chain head is missing while {last[0]} events are on record; no audited change can be "
                f"written until it is restored: {_HOW_TO_RESUME}"
            )
        # A first append ever (the migration creates the head; a concurrent one is caught by the primary key).
        head = AuditHead(id=HEAD_ID, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
        return head
    if (head.seq, head.hash) != (last or (0, GENESIS)):
        found = "no events" if last is None else f"the last event is seq {last[0]}"
        raise AuditUnavailable(
            f"the audit chain head names seq {head.seq} but {found}: the trail was cut or the head edited; "
            f"no audited change can be written until this is resolved: {_HOW_TO_RESUME}"
        )
    key = _key(session)
    # A head over signed events must carry its own MAC (NULL only on a chain from before the key).
    must_sign = key is not None and head.seq and (head.mac is not None or _signed(session, head.seq))
    if must_sign and not _head_mac_ok(key, head):
        raise AuditUnavailable(
            f"the audit chain head (seq {head.seq}) does not carry a valid MAC: it was rewritten without the "
            f"audit key (or the key changed); no audited change can be written: {_HOW_TO_RESUME}"
        )
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
    """Queue one event in the caller's transaction; it is chained and written when that transaction commits.

    The returned Event gets its ``seq`` and ``hash`` at the commit (or at ``append_pending``): the
    head is locked last, after every case the transaction locks (see the lock order above).
    """
    ev = new_event(
        actor=actor, action=action, case_id=case_id, before=before, after=after, model_version=model_version, at=at
    )
    session.info.setdefault(_PENDING, []).append(ev)
    return ev


def new_event(
    *,
    actor: str,
    action: str,
    case_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    model_version: str | None = None,
    at: datetime | None = None,
) -> Event:
    """An event not yet chained (``record`` queues one; ``append_many`` writes many at once)."""
    moment = (at or utcnow()).astimezone(UTC)
    # Round to what both backends store (microseconds) and normalise JSON before hashing.
    return Event(
        at=moment,
        actor=actor,
        case_id=case_id,
        action=action,
        before=_jsonable(before),
        after=_jsonable(after),
        model_version=model_version,
    )


def _chain(session: Session, events: list[Event]) -> None:
    """Lock the head and give ``events`` their seq, links, hashes and MACs; moves the head past them."""
    head = _lock_head(session)
    key = _key(session)
    for ev in events:
        ev.seq = head.seq + 1
        ev.prev_ref = _jsonable(head.ref) if head.seq else None
        ev.prev_hash = head.hash
        ev.hash = row_hash(ev)
        ev.mac = None if key is None else event_mac(key, ev.hash)
        head.seq, head.hash = ev.seq, ev.hash
        head.ref = {"case_id": ev.case_id, "action": ev.action}
    head.mac = None if key is None else head_mac(key, head.seq, head.hash)


def append_pending(session: Session) -> list[Event]:
    """Lock the head and append the queued events now (call after the transaction's last case lock)."""
    pending: list[Event] = session.info.pop(_PENDING, None) or []
    if not pending:
        return []
    _chain(session, pending)
    session.add_all(pending)
    session.flush()
    return pending


_EVENT_COLUMNS: tuple[str, ...] = ("seq", "at", "actor", "case_id", "action", "before", "after", "model_version")
_EVENT_COLUMNS += ("prev_ref", "prev_hash", "hash", "mac")


def append_many(session: Session, events: list[Event]) -> int:
    """Chain and insert many events (from ``new_event``) with multi-row INSERTs: an import's thousands.

    Anything already queued by ``record`` goes first. Call it last in the transaction (it locks the head).
    """
    append_pending(session)
    if not events:
        return 0
    _chain(session, events)
    rows = [{c: getattr(ev, c) for c in _EVENT_COLUMNS} for ev in events]
    for start in range(0, len(rows), 2000):
        session.execute(insert(Event), rows[start : start + 2000])
    session.flush()  # the head row's new (seq, hash, mac)
    return len(rows)


@sa_event.listens_for(Session, "before_commit")
def _append_on_commit(session: Session) -> None:
    append_pending(session)


@sa_event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def restore_head(session: Session, *, actor: str) -> Event:
    """Point a missing or stale head at the last event on record, and say so in the trail itself.

    What was cut cannot come back; the ``audit_head_restored`` event keeps the old head (if any) so
    that the cut stays visible after writes resume. ``verify`` still reports what it finds.
    """
    stmt = select(AuditHead).where(AuditHead.id == HEAD_ID)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    head = session.execute(stmt).scalar_one_or_none()
    last = _last_event(session)
    before = None if head is None else {"seq": head.seq, "hash": head.hash}
    seq, digest = last or (0, GENESIS)
    ref = None
    if last is not None:
        row = session.execute(select(Event.case_id, Event.action).where(Event.seq == seq)).one()
        ref = {"case_id": row.case_id, "action": row.action}
    key = _key(session)
    mac = None if key is None else head_mac(key, seq, digest)
    if head is None:
        session.add(AuditHead(id=HEAD_ID, seq=seq, hash=digest, ref=ref, mac=mac))
    else:
        head.seq, head.hash, head.ref, head.mac = seq, digest, ref, mac
    session.flush()
    return record(session, actor=actor, action="audit_head_restored", before=before, after={"seq": seq, "hash": digest})


def seal(session: Session, *, actor: str) -> int:
    """Sign the events written before the audit key existed (``mac`` NULL); returns how many were signed.

    The migration path for chains from before the key: refused unless the plain SHA-256 chain
    verifies intact, and recorded as an ``audit_seal`` event. Run it once, right after upgrading.
    """
    key = _key(session)
    if key is None:
        raise AuditUnavailable("sealing needs the audit key (TRIAGE_AUDIT_KEY or data_dir/audit.key)")
    report = verify(session, key=None)
    if not report.ok:
        raise AuditUnavailable("the chain is not intact, so it is not sealed:\n" + "\n".join(report.lines()))
    rows = list(session.execute(select(Event.seq, Event.hash).where(Event.mac.is_(None)).order_by(Event.seq)))
    for row in rows:
        session.execute(update(Event).where(Event.seq == row.seq).values(mac=event_mac(key, str(row.hash))))
    head = session.get(AuditHead, HEAD_ID)
    if head is not None:
        head.mac = head_mac(key, head.seq, head.hash)
    session.flush()
    record(session, actor=actor, action="audit_seal", after={"signed": len(rows)})
    return len(rows)


# ---- anchors outside the database -----------------------------------------------------------------
def write_anchor(session: Session, path: Path) -> bool:
    """Append the head (seq, hash, time) to ``path`` when it moved since the last line; returns whether it did.

    The file lives outside the database (the data folder, or a log shipped elsewhere), so whoever
    rewrites the database cannot make an anchored seq disappear unnoticed.
    """
    head = session.get(AuditHead, HEAD_ID)
    if head is None or head.seq == 0:
        return False
    anchors = read_anchors(path)
    if anchors and anchors[-1][:2] == (head.seq, head.hash):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    line = f"{head.seq} {head.hash} {utcnow().isoformat(timespec='seconds')}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())  # one write in append mode: lines from several workers never interleave
    finally:
        os.close(fd)
    return True


def read_anchors(path: Path | None) -> list[tuple[int, str, str]]:
    """The (seq, hash, time) lines of an anchor file; none when there is no file."""
    if path is None or not Path(path).exists():
        return []
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            out.append((int(parts[0]), parts[1], parts[2] if len(parts) > 2 else ""))
    return out


# ---- verification ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One finding: which row, what is wrong with it."""

    kind: str  # "edited" | "deleted" | "relinked" | "unsigned" | "forged" | "head" | "text" | "anchor"
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
    keyed: bool = False
    anchors: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        how = "HMAC-checked" if self.keyed else "hashes only, no audit key given"
        if self.ok:
            return [
                f"audit trail intact: {self.checked} events, head at seq {self.head_seq} "
                f"({how}; {self.anchors} anchor(s) checked)"
            ]
        return [f"audit trail TAMPERED: {len(self.problems)} problem(s) in {self.checked} events ({how})"] + [
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


_DEFAULT_KEY: Any = object()


def verify(session: Session, *, key: Any = _DEFAULT_KEY, anchors: Path | None = None) -> AuditReport:
    """Check every event's hash, link and MAC, the head, the covered texts and the anchors; name each problem.

    ``key``: the audit key (default: the one the session's database was opened with; None checks
    hashes only). ``anchors``: an anchor file written by ``write_anchor``.
    """
    key = _key(session) if key is _DEFAULT_KEY else key
    report = AuditReport(keyed=key is not None)
    head = session.get(AuditHead, HEAD_ID)
    report.head_seq = head.seq if head else 0
    anchored = {seq: (digest, at) for seq, digest, at in read_anchors(anchors)}
    report.anchors = len(anchored)
    seen_at: dict[int, str] = {}
    submitted: dict[int, tuple[int, str]] = {}  # submission id -> (seq, text digest)
    replied: dict[int, tuple[int, str]] = {}  # response id -> (seq, body digest)
    evidence: dict[int, tuple[int, str]] = {}  # KPI evidence id -> (seq, file or link digest)
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
        if key is not None:
            if ev.mac is None:
                report.problems.append(
                    Problem(
                        "unsigned",
                        ev.seq,
                        ev.case_id,
                        ev.action,
                        "no MAC: written without the audit key, or its MAC was stripped "
                        "(chains from before the key: `triage audit seal` once after upgrading)",
                    )
                )
            elif not hmac.compare_digest(ev.mac, event_mac(key, ev.hash)):
                report.problems.append(
                    Problem(
                        "forged",
                        ev.seq,
                        ev.case_id,
                        ev.action,
                        "MAC does not match: the row was rewritten and rehashed without the audit key",
                    )
                )
        if ev.seq in anchored:
            seen_at[ev.seq] = ev.hash
        after = ev.after if isinstance(ev.after, dict) else {}
        if ev.action in ("submit", "import") and after.get("text_sha256") and after.get("submission_id") is not None:
            submitted[int(after["submission_id"])] = (ev.seq, str(after["text_sha256"]))
        if ev.action in ("respond", "import") and after.get("body_sha256") and after.get("response_id") is not None:
            replied[int(after["response_id"])] = (ev.seq, str(after["body_sha256"]))
        if ev.action.startswith("kpi_") and isinstance(after.get("evidence"), list):
            for ref in after["evidence"]:
                if isinstance(ref, dict) and ref.get("evidence_id") is not None and ref.get("sha256"):
                    evidence[int(ref["evidence_id"])] = (ev.seq, str(ref["sha256"]))
        expected_seq, prev_hash = ev.seq + 1, ev.hash
    last_seq = expected_seq - 1
    _check_head(report, head, last_seq, prev_hash, key)
    _check_anchors(report, anchored, seen_at, last_seq)
    _check_texts(report, session, submitted, replied)
    _check_evidence(report, session, evidence)
    return report


def _check_head(report: AuditReport, head: AuditHead | None, last_seq: int, last_hash: str, key: Any) -> None:
    if head is None:
        if last_seq:
            report.problems.append(
                Problem(
                    "head",
                    last_seq,
                    None,
                    None,
                    f"the chain head (audit_head) is missing: rows may have been cut after seq {last_seq}",
                )
            )
        return
    if head.seq != last_seq or (head.seq and head.hash != last_hash):
        if head.seq > last_seq:
            gone = f"seq {head.seq}" if head.seq == last_seq + 1 else f"seq {last_seq + 1}..{head.seq}"
            detail = f"{gone} missing after seq {last_seq}: the chain head names it (rows deleted at the end)"
            ref = head.ref or {}
            report.problems.append(Problem("deleted", head.seq, ref.get("case_id"), ref.get("action"), detail))
        else:
            detail = f"last event seq {last_seq} does not match the chain head (seq {head.seq})"
            report.problems.append(Problem("relinked", last_seq, None, None, detail))
    if key is not None and head.seq and not _head_mac_ok(key, head):
        report.problems.append(
            Problem(
                "head",
                head.seq,
                None,
                None,
                "the chain head's MAC is missing or wrong: the head was rewritten without the audit key",
            )
        )


def _check_anchors(
    report: AuditReport, anchored: dict[int, tuple[str, str]], seen: dict[int, str], last_seq: int
) -> None:
    for seq, (digest, at) in sorted(anchored.items()):
        if seq > last_seq:
            report.problems.append(
                Problem(
                    "anchor",
                    seq,
                    None,
                    None,
                    f"the anchor file saw seq {seq} (at {at or '?'}) but the chain ends at seq {last_seq}: "
                    "rows were cut off the end",
                )
            )
            break
        if seen.get(seq) != digest:
            report.problems.append(
                Problem("anchor", seq, None, None, "the event at this seq differs from the anchored hash (rewritten)")
            )


def _check_texts(
    report: AuditReport, session: Session, submitted: dict[int, tuple[int, str]], replied: dict[int, tuple[int, str]]
) -> None:
    """Submission texts and reply bodies must still have the digests their events recorded."""
    if submitted:
        found: set[int] = set()
        stmt = select(Submission.id, Submission.case_id, Submission.title_raw, Submission.content_raw).where(
            Submission.id >= min(submitted)
        )
        for row in session.execute(stmt.execution_options(yield_per=1000)):
            entry = submitted.get(int(row.id))
            if entry is None:
                continue
            found.add(int(row.id))
            if text_digest(title=row.title_raw, content=row.content_raw) != entry[1]:
                report.problems.append(
                    Problem("text", entry[0], row.case_id, "submit", f"submission {row.id}: its text was edited")
                )
        for sid in sorted(set(submitted) - found):
            report.problems.append(Problem("text", submitted[sid][0], None, "submit", f"submission {sid} was deleted"))
    if replied:
        counts: Counter[int] = Counter()
        first = min(replied)
        replies = select(Response.id, Response.case_id, Response.body).where(Response.id >= first)
        for reply in session.execute(replies.execution_options(yield_per=1000)):
            entry = replied.get(int(reply.id))
            counts[int(reply.id)] += 1
            if entry is None:
                report.problems.append(
                    Problem("text", 0, reply.case_id, "respond", f"response {reply.id} has no audit event (inserted)")
                )
            elif text_digest(body=reply.body) != entry[1]:
                report.problems.append(
                    Problem("text", entry[0], reply.case_id, "respond", f"response {reply.id}: its body was edited")
                )
        for rid in sorted(set(replied) - set(counts)):
            report.problems.append(Problem("text", replied[rid][0], None, "respond", f"response {rid} was deleted"))


def _check_evidence(report: AuditReport, session: Session, recorded: dict[int, tuple[int, str]]) -> None:
    """KPI evidence rows, and the files they name, must still have the SHA-256 their events recorded."""
    rows = {e.id: e for e in session.scalars(select(KpiEvidence))}
    for eid, (seq, digest) in sorted(recorded.items()):
        row = rows.pop(eid, None)
        if row is None:
            report.problems.append(Problem("evidence", seq, None, "kpi", f"evidence {eid} was deleted"))
            continue
        if row.sha256 != digest:
            report.problems.append(Problem("evidence", seq, None, "kpi", f"evidence {eid}: its hash was edited"))
        elif row.kind == "file" and row.path:
            try:
                with open(row.path, "rb") as fh:
                    actual = hashlib.file_digest(fh, "sha256").hexdigest()
            except OSError:
                report.problems.append(
                    Problem("evidence", seq, None, "kpi", f"evidence {eid}: file {row.path} is gone")
                )
                continue
            if actual != digest:
                report.problems.append(
                    Problem("evidence", seq, None, "kpi", f"evidence {eid}: file {row.path} was changed")
                )
    for eid in sorted(rows):
        report.problems.append(Problem("evidence", 0, None, "kpi", f"evidence {eid} has no audit event (inserted)"))


def count(session: Session) -> int:
    """Number of events on record."""
    return int(session.scalar(select(func.count()).select_from(Event)) or 0)
