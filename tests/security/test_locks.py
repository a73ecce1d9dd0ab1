"""One lock order for every writer: concurrent intake, case actions and escalation never deadlock or lose a row.

Intake groups a petition copy with the earlier copies (locking those cases) while handlers act on
the same cases and the escalation job walks the overdue ones. Before the lock order, intake held
the audit head and then waited for a case that an action held while it waited for the head: on
PostgreSQL one of them died with "deadlock detected" (a 500 for the citizen).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.db import BACKENDS, FreshDatabases
from triage.cases import audit
from triage.cases.accounts import Principal, create_user, principal_of
from triage.cases.casework import Casework
from triage.cases.escalation import escalate
from triage.cases.intake import NewSubmission, receive
from triage.cases.pipeline import CampaignPolicy, Pipeline
from triage.nlp.agency_router import AgencyRouter
from triage.store.case_index import CaseIndex
from triage.store.db import Database, init_db
from triage.store.repositories import Cases
from triage.store.tables import Case, Submission

PAST = datetime.now(UTC) - timedelta(days=90)


def petition(n: int) -> NewSubmission:
    return NewSubmission(
        kind="kien_nghi",
        submitter_type="citizen",
        title="Phản đối trạm trộn bê tông sát khu dân cư Hòa Bình 7",
        content=(
            "Chúng tôi là cư dân khu phố Hòa Bình 7 kiến nghị đình chỉ hoạt động của trạm trộn bê tông sát khu "
            f"dân cư, gây bụi, tiếng ồn suốt ngày đêm. Người ký tên số {n}."
        ),
    )


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, fresh_databases: FreshDatabases) -> Iterator[Database]:
    d = Database(fresh_databases.new(request.param), audit_key=b"k" * 32, pool_size=12)
    init_db(d)
    yield d
    d.dispose()


def test_concurrent_intake_actions_and_escalation_finish_without_errors(db: Database, embedder: Any) -> None:
    pipeline = Pipeline(
        embedder=embedder,
        agency_router=AgencyRouter(embedder=embedder).fit(),
        similar=CaseIndex(db),
        campaigns=CampaignPolicy(threshold=0.9, window_days=400, min_size=2),
    )
    # Earlier copies, overdue (received long ago), routed and in a handler's hands.
    staged = [receive(db, petition(i), pipeline=pipeline, now=PAST).case_id for i in range(6)]
    with db.session() as s:
        admin = principal_of(create_user(s, username="admin", password="x" * 12, role="admin"))
        create_user(s, username="hd", password="x" * 12, role="handler", agency_code="BXD")
    for cid in staged:
        with db.session() as s:
            work = Casework(s, admin)
            work.route(cid, agency="BXD")
            work.assign(cid, assignee="hd")
    with db.read() as s:
        grouped = {c.campaign_id for c in s.scalars(select(Case).where(Case.id.in_(staged)))}
    assert len(grouped) == 1 and None not in grouped  # the copies are one campaign: intake locks them

    errors: list[BaseException] = []
    done = threading.Event()

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # every failure is reported below, none is swallowed
                errors.append(exc)

        return run

    sent = 8

    def intake(offset: int) -> None:
        for i in range(sent):
            receive(db, petition(100 + offset * sent + i), pipeline=pipeline)

    def act(who: Principal, order: list[int]) -> None:
        k = 0
        while not done.is_set():  # a handler's actions on the same cases, newest first, until intake is over
            for cid in order:
                with db.session() as s:
                    Casework(s, who).moderate(cid, decision="confirm", note=f"lần {k}")
            k += 1

    def escalation() -> None:
        while not done.is_set():
            with db.session() as s:
                escalate(s, today=datetime.now(UTC).date())
            with db.session() as s:  # make the cases escalate again on the next pass (locked in id order too)
                for case in Cases(s).lock(staged):
                    case.escalated_for = None

    intakes = [threading.Thread(target=guarded(lambda o=o: intake(o))) for o in range(3)]
    others = [
        threading.Thread(target=guarded(lambda: act(admin, sorted(staged, reverse=True)))),
        threading.Thread(target=guarded(lambda: act(admin, sorted(staged)))),
        threading.Thread(target=guarded(escalation)),
    ]
    for t in others + intakes:
        t.start()
    for t in intakes:
        t.join()
    done.set()
    for t in others:
        t.join()

    assert errors == [], [f"{type(e).__name__}: {e}"[:300] for e in errors]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == len(staged) + 3 * sent  # none lost
        r = audit.verify(s)
    assert r.ok, r.lines()
