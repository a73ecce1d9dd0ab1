"""The audit trail: hash chain, tamper detection that names the row, no forks under concurrency."""

from __future__ import annotations

import itertools
import threading

from sqlalchemy import select, text
from typer.testing import CliRunner

from triage.cases import audit
from triage.cli import app
from triage.config import get_settings
from triage.store.db import Database, audit_key
from triage.store.tables import Event


def fill(db: Database, n: int = 5) -> None:
    with db.session() as s:
        for i in range(1, n + 1):
            audit.record(
                s,
                actor=f"clerk{i}",
                action=["submit", "triage", "assign", "start", "respond"][(i - 1) % 5],
                case_id=100 + i,
                before={"state": "new", "i": i},
                after={"state": "triaged", "ghi chú": "Đã xử lý", "score": 0.1 + i},
                model_version="e5|agency:cold-start" if i == 1 else None,
            )


def report(db: Database) -> audit.AuditReport:
    with db.read() as s:
        return audit.verify(s)


def test_intact_chain_verifies(empty_db: Database) -> None:
    fill(empty_db)
    r = report(empty_db)
    assert r.ok and r.checked == 5 and r.head_seq == 5
    with empty_db.read() as s:
        events = list(s.scalars(select(Event).order_by(Event.seq)))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert events[1].prev_ref == {"case_id": 101, "action": "submit"}
    assert events[0].model_version == "e5|agency:cold-start"


def test_edited_row_is_named(empty_db: Database) -> None:
    fill(empty_db)
    with empty_db.engine.begin() as conn:
        conn.execute(text("UPDATE events SET after = :a WHERE seq = 3"), {"a": '{"state": "closed"}'})
    r = report(empty_db)
    assert not r.ok
    [p] = r.problems
    assert (p.kind, p.seq, p.case_id, p.action) == ("edited", 3, 103, "assign")
    assert "EDITED: event seq=3 (case 103, action 'assign')" in "\n".join(r.lines())


def test_edited_actor_or_time_is_named(empty_db: Database) -> None:
    fill(empty_db)
    with empty_db.engine.begin() as conn:
        conn.execute(text("UPDATE events SET actor = 'someone-else' WHERE seq = 1"))
        conn.execute(text("UPDATE events SET at = '2020-01-01 00:00:00' WHERE seq = 4"))
    assert [(p.kind, p.seq) for p in report(empty_db).problems] == [("edited", 1), ("edited", 4)]


def test_deleted_row_is_named_by_the_next_one(empty_db: Database) -> None:
    fill(empty_db)
    with empty_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE seq = 2"))
    [p] = report(empty_db).problems
    assert (p.kind, p.seq, p.case_id, p.action) == ("deleted", 2, 102, "triage")
    assert "seq 2 missing before seq 3" in p.detail


def test_deleted_last_row_is_named_by_the_head(empty_db: Database) -> None:
    fill(empty_db)
    with empty_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE seq = 5"))
    [p] = report(empty_db).problems
    assert (p.kind, p.seq, p.case_id, p.action) == ("deleted", 5, 105, "respond")


def test_rewritten_and_rehashed_row_breaks_the_next_link(empty_db: Database) -> None:
    fill(empty_db)
    with empty_db.session() as s:
        ev = s.get(Event, 2)
        assert ev is not None
        ev.after = {"state": "rejected"}
        ev.hash = audit.row_hash(ev)  # a careful forger recomputes the row's own hash
    problems = report(empty_db).problems
    assert [(p.kind, p.seq) for p in problems] == [("relinked", 3)]


def test_canonical_form_ignores_key_order() -> None:
    assert audit.canonical({"b": 1, "a": [1, 2]}) == audit.canonical({"a": [1, 2], "b": 1}) == '{"a":[1,2],"b":1}'


def test_concurrent_appends_never_fork(empty_db: Database) -> None:
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            for i in range(10):
                with empty_db.session() as s:
                    audit.record(s, actor=f"w{w}", action="note", case_id=w * 100 + i, after={"i": i})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    r = report(empty_db)
    assert r.ok and r.checked == 60 and r.head_seq == 60


def test_cli_verify_exit_codes(empty_db: Database) -> None:
    # Written with the key the CLI uses (TRIAGE_AUDIT_KEY or data_dir/audit.key), so the MACs check out too.
    keyed = Database(empty_db.url, audit_key=audit_key(get_settings()))
    fill(keyed)
    keyed.dispose()
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--url", empty_db.url])
    assert ok.exit_code == 0 and "intact: 5 events" in ok.output
    with empty_db.engine.begin() as conn:
        conn.execute(text("UPDATE events SET after = NULL WHERE seq = 4"))
        conn.execute(text("DELETE FROM events WHERE seq = 2"))
    bad = runner.invoke(app, ["audit", "verify", "--url", empty_db.url])
    assert bad.exit_code == 1
    assert "TAMPERED: 2 problem(s)" in bad.output
    assert "DELETED: event seq=2 (case 102, action 'triage')" in bad.output
    assert "EDITED: event seq=4 (case 104, action 'start')" in bad.output
