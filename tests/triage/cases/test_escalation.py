"""Escalation: due-soon and overdue per agency, one event per missed deadline, idempotent."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from triage.cases.escalation import escalate
from triage.store.db import Database
from triage.store.tables import Case, Event


def add_case(db: Database, state: str, answer_due: str, forward_due: str, agency: str | None) -> int:
    now = datetime(2026, 1, 5, 2, tzinfo=UTC)
    with db.session() as s:
        c = Case(
            state=state,
            kind="phan_anh",
            agency_code=agency,
            received_at=now,
            updated_at=now,
            answer_due=date.fromisoformat(answer_due),
            forward_due=date.fromisoformat(forward_due),
        )
        s.add(c)
        s.flush()
        return c.id


def escalations(db: Database, case_id: int) -> list[dict[str, object]]:
    with db.read() as s:
        q = select(Event.after).where(Event.case_id == case_id, Event.action == "escalate").order_by(Event.seq)
        return [dict(a or {}) for a in s.scalars(q)]


def test_escalate(empty_db: Database) -> None:
    db = empty_db
    late = add_case(db, "in_progress", "2026-04-01", "2026-03-20", "BTC")
    soon = add_case(db, "assigned", "2026-04-09", "2026-03-27", "BTC")  # 3 working days left on 4 April (Sat)
    unrouted = add_case(db, "new", "2026-04-20", "2026-04-03", None)  # forward deadline missed
    paused = add_case(db, "returned", "2026-03-01", "2026-02-20", "BYT")  # waiting for the submitter
    answered = add_case(db, "responded", "2026-03-01", "2026-02-20", "BYT")
    today = date(2026, 4, 6)  # Monday
    with db.session() as s:
        report = escalate(s, today=today)
    flags = {f.case_id: f for f in report.flags}
    assert set(flags) == {late, soon, unrouted}
    assert (flags[late].status, flags[late].deadline, flags[late].escalated_now) == ("overdue", "answer", True)
    assert flags[late].working_days_left < 0
    assert (flags[soon].status, flags[soon].escalated_now) == ("due_soon", False)
    assert (flags[unrouted].deadline, flags[unrouted].status) == ("forward", "overdue")
    assert report.recorded == 2
    assert set(report.by_agency()) == {"BTC", None}
    assert escalations(db, late)[0]["deadline"] == "answer"
    assert escalations(db, unrouted)[0]["deadline"] == "forward"
    assert escalations(db, paused) == escalations(db, answered) == []
    for day in (today, date(2026, 4, 7)):  # again the same day and the next: nothing new
        with db.session() as s:
            assert escalate(s, today=day).recorded == 0
    with db.session() as s:  # a new deadline (after a transfer) can be escalated again
        c = s.get(Case, late)
        assert c is not None
        c.answer_due = date(2026, 4, 8)
    with db.session() as s:
        assert escalate(s, today=date(2026, 4, 9)).recorded >= 1
    assert [e["due"] for e in escalations(db, late)] == ["2026-04-01", "2026-04-08"]
