"""The audit chain cannot be cut or rewritten unnoticed, and a broken head stops writes with a clear error.

Each test plays a database writer (plain SQL, no key) against a chain written by the real core
(intake, casework, accounts, the eval slice) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from service.http_errors import status_of
from tests.db import BACKENDS, FreshDatabases
from training.dataset import freeze_labels
from triage.cases import audit
from triage.cases.accounts import create_user, principal_of, update_user
from triage.cases.casework import Casework
from triage.cases.intake import NewSubmission, receive
from triage.errors import AuditUnavailable
from triage.store.db import Database, init_db
from triage.store.tables import Event, ReviewedLabel

KEY = secrets.token_urlsafe(32).encode()
NEW = NewSubmission(
    kind="phan_anh",
    submitter_type="citizen",
    title="Hồ sơ cấp phép chậm",
    content="Hồ sơ xin giấy phép kinh doanh nộp từ tháng 3 vẫn chưa có kết quả.",
)


@pytest.fixture(params=BACKENDS)
def keyed(request: pytest.FixtureRequest, fresh_databases: FreshDatabases) -> Iterator[Database]:
    """A migrated database opened with an audit key, as the service and the CLI open it."""
    db = Database(fresh_databases.new(request.param), audit_key=KEY)
    init_db(db)
    yield db
    db.dispose()


def report(db: Database, **kw: object) -> audit.AuditReport:
    with db.read() as s:
        return audit.verify(s, **kw)  # type: ignore[arg-type]


def kinds(r: audit.AuditReport) -> set[str]:
    return {p.kind for p in r.problems}


def sql(db: Database, statement: str, **params: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


def stage(db: Database) -> tuple[int, int]:
    """Two submissions, one routed, assigned and answered by a handler: a chain with texts and a reply."""
    first = receive(db, NEW)
    receive(db, NewSubmission(**{**NEW.__dict__, "title": "Đèn đường hỏng"}))
    with db.session() as s:
        admin = principal_of(create_user(s, username="admin1", password="x" * 12, role="admin"))
        handler = create_user(s, username="hd1", password="x" * 12, role="handler", agency_code="BKHCN")
    with db.session() as s:
        work = Casework(s, admin)
        work.route(first.case_id, agency="BKHCN")
        work.assign(first.case_id, assignee=handler.username)
    with db.session() as s:
        work = Casework(s, principal_of(handler))
        work.start(first.case_id)
        work.respond(first.case_id, body="Sở đã xử lý hồ sơ của ông/bà.")
    return first.case_id, handler.id


def test_deleted_head_is_reported_and_stops_writes_with_a_clear_error(keyed: Database) -> None:
    stage(keyed)
    assert report(keyed).ok
    sql(keyed, "DELETE FROM audit_head")
    r = report(keyed)
    assert "head" in kinds(r), r.lines()  # the old verify said "intact"
    # The old code crashed the intake on the primary key (IntegrityError: a 500); now a 503 that says what to run.
    with pytest.raises(AuditUnavailable, match="restore-head") as err:
        receive(keyed, NEW)
    assert status_of(err.value) == 503
    with keyed.session() as s:
        audit.restore_head(s, actor="ops")
    receive(keyed, NEW)  # writes resume, and the restore itself is on record
    with keyed.read() as s:
        actions = list(s.scalars(select(Event.action).order_by(Event.seq)))
    assert "audit_head_restored" in actions and actions[-1] == "submit"


def test_cut_tail_with_a_head_rewritten_to_match_is_detected(keyed: Database) -> None:
    stage(keyed)
    with keyed.read() as s:
        last = s.scalar(select(Event.seq).order_by(Event.seq.desc()))
        prev = s.get(Event, last - 2)
        assert prev is not None
    sql(keyed, "DELETE FROM events WHERE seq > :seq", seq=prev.seq)
    # A careful writer also moves the head back (the old verify then found nothing to complain about).
    sql(keyed, "UPDATE audit_head SET seq = :seq, hash = :h, mac = :m", seq=prev.seq, h=prev.hash, m=prev.mac)
    r = report(keyed)
    assert not r.ok and "head" in kinds(r), r.lines()
    with pytest.raises(AuditUnavailable):  # the forged head is not written on
        receive(keyed, NEW)


def test_anchor_outside_the_database_catches_a_cut_even_without_the_key(keyed: Database, tmp_path: Path) -> None:
    stage(keyed)
    anchors = tmp_path / "anchors.log"
    with keyed.read() as s:
        assert audit.write_anchor(s, anchors)
        assert not audit.write_anchor(s, anchors)  # the head did not move: no new line
        head_seq = s.scalar(select(Event.seq).order_by(Event.seq.desc()))
    sql(keyed, "DELETE FROM events WHERE seq >= :seq", seq=head_seq - 1)
    sql(keyed, "DELETE FROM audit_head")
    r = report(keyed, key=None, anchors=anchors)
    assert "anchor" in kinds(r), r.lines()


def test_rewritten_and_rehashed_tail_is_caught_by_the_mac(keyed: Database) -> None:
    stage(keyed)
    with keyed.session() as s:  # rewrite an event and rehash everything after it, as the old chain allowed
        events = list(s.scalars(select(Event).order_by(Event.seq)))
        events[2].after = {**(events[2].after or {}), "state": "rejected"}
        prev = events[1].hash
        for ev in events[2:]:
            ev.prev_hash = prev
            ev.hash = audit.row_hash(ev)
            prev = ev.hash
        s.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    assert report(keyed, key=None).ok  # hashes alone: a perfect forgery
    r = report(keyed)
    assert "forged" in kinds(r) and {p.seq for p in r.problems if p.kind == "forged"} >= {3}, r.lines()


def test_submission_text_and_reply_body_are_covered(keyed: Database) -> None:
    case_id, _ = stage(keyed)
    assert report(keyed).ok
    sql(keyed, "UPDATE submissions SET content_raw = 'nội dung khác' WHERE case_id = :c", c=case_id)
    sql(keyed, "UPDATE responses SET body = 'Đã xong.' WHERE case_id = :c", c=case_id)
    details = [p.detail for p in report(keyed).problems if p.kind == "text"]
    assert any("submission" in d and "edited" in d for d in details), details
    assert any("response" in d and "edited" in d for d in details), details


def test_account_and_eval_slice_changes_are_audited(keyed: Database) -> None:
    case_id, _ = stage(keyed)
    with keyed.session() as s:
        update_user(s, "hd1", actor="cli:root", active=False)
        update_user(s, "hd1", actor="cli:root", role="analyst")
    with keyed.session() as s:
        label = s.scalar(select(ReviewedLabel.id).where(ReviewedLabel.case_id == case_id))
        assert label is not None
        assert freeze_labels(s, [label], actor="cli:root") == 1
    with keyed.read() as s:
        rows = list(s.execute(select(Event.action, Event.actor, Event.after).order_by(Event.seq)))
    created = [r for r in rows if r.action == "account_create"]
    assert {r.after["username"] for r in created} == {"admin1", "hd1"}
    updates = [r.after for r in rows if r.action == "account_update"]
    assert updates[0]["active"] is False and updates[1]["role"] == "analyst"
    assert [r.after["how"] for r in rows if r.action == "eval_slice"] == ["freeze"]
    assert report(keyed).ok


def test_chain_from_before_the_key_is_reported_unsigned_then_sealed(
    fresh_databases: FreshDatabases, keyed: Database
) -> None:
    legacy = Database(keyed.url)  # an older process: no key, no MACs
    receive(legacy, NEW)
    legacy.dispose()
    r = report(keyed)
    assert kinds(r) == {"unsigned", "head"}, r.lines()
    with keyed.session() as s:
        assert audit.seal(s, actor="ops") == 1
    assert report(keyed).ok
