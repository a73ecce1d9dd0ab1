"""A retrain is a job every worker sees (issue 24, item 2): two apps on one database, as two hosts.

Host B (no job runner) starts a retrain; host A sees it at once, refuses a second one (one at a time
across hosts), and its runner claims and runs it at its next poll; B then reports A's outcome. With no reviewed labels
the retrain fails with its reason: what matters here is who runs it and who can see it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.app import create_app
from service.state import ServiceState
from tests.db import BACKENDS, FreshDatabases
from triage.cases.accounts import create_user
from triage.config import Settings
from triage.store.tables import Event, Job

PASSWORD = "mật-khẩu-đủ-dài-123"


@pytest.fixture(scope="module", params=BACKENDS)
def hosts(
    request: pytest.FixtureRequest,
    encoder_path: Path,
    fresh_databases: FreshDatabases,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, TestClient]]:
    url = fresh_databases.new(str(request.param))
    secret = secrets.token_urlsafe(40)
    registry = tmp_path_factory.mktemp("mlflow")
    with ExitStack() as stack:
        clients = []
        for name, poll in (("a", 3600.0), ("b", 0.0)):  # A polls rarely: the test wakes it
            settings = Settings(
                encoder_path=encoder_path,
                database_url=url,
                data_dir=tmp_path_factory.mktemp(f"host-{name}"),
                jwt_secret=secret,
                audit_key=secret,  # one key for all hosts, as in production
                mlflow_uri=f"sqlite:///{registry / 'mlflow.db'}",
                job_poll_s=poll,
                model_poll_s=0,
                escalate_interval_s=0,
            )
            clients.append(stack.enter_context(TestClient(create_app(settings))))
        yield clients[0], clients[1]


def svc(client: TestClient) -> ServiceState:
    state: ServiceState = client.app.state.svc  # type: ignore[attr-defined]
    return state


def test_a_retrain_started_on_one_host_runs_once_and_every_host_sees_it(hosts: tuple[TestClient, TestClient]) -> None:
    a, b = hosts
    with svc(a).db.session() as s:
        create_user(s, username="quan-tri", password=PASSWORD, role="admin")
    token = b.post("/api/v1/auth/token", data={"username": "quan-tri", "password": PASSWORD}).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}

    started = b.post("/api/v1/models/retrain", headers=admin)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    assert a.get(f"/api/v1/models/jobs/{job_id}", headers=admin).json()["id"] == job_id
    busy = a.post("/api/v1/models/retrain", headers=admin)
    assert busy.status_code == 409 and "one job at a time" in busy.json()["detail"]
    manager = svc(a).models
    assert manager is not None
    manager._wake.set()  # A's next poll, now: its runner claims the job B queued

    deadline = time.monotonic() + 120
    while True:
        seen_on_b = b.get(f"/api/v1/models/jobs/{job_id}", headers=admin).json()
        if seen_on_b["state"] in ("succeeded", "failed"):
            break
        assert time.monotonic() < deadline, seen_on_b
        time.sleep(0.2)
    assert seen_on_b == a.get(f"/api/v1/models/jobs/{job_id}", headers=admin).json()
    assert seen_on_b["state"] == "failed" and seen_on_b["error"].startswith("InvalidInput: ")
    with svc(a).db.read() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.attempts == 1  # claimed once, by A's runner (B has none)
        retrains = s.scalar(select(func.count()).select_from(Event).where(Event.action == "model_retrain"))
    assert retrains == 1
    again = a.post("/api/v1/models/retrain", headers=admin)  # free again once it ended
    assert again.status_code == 202, again.text


def test_the_periodic_pass_runs_its_shared_part_once_per_interval_across_hosts(
    hosts: tuple[TestClient, TestClient],
) -> None:
    from datetime import timedelta

    from service.app import MAINTENANCE, periodic_pass
    from triage.cases.jobs import JobQueue
    from triage.store.tables import utcnow

    a, b = hosts
    queue = JobQueue(svc(a).db)
    queue.prune(MAINTENANCE, older_than=timedelta(0))
    assert periodic_pass(svc(a), interval=600) is True
    assert periodic_pass(svc(b), interval=600) is False  # A's pass counts for B too
    assert periodic_pass(svc(a), interval=600) is False
    with svc(a).db.read() as s:
        rows = list(s.scalars(select(Job).where(Job.kind == MAINTENANCE)))
    assert len(rows) == 1 and rows[0].state == "succeeded"
    assert not queue.due(MAINTENANCE, every=timedelta(seconds=480))
    assert queue.due(MAINTENANCE, every=timedelta(seconds=480), now=utcnow() + timedelta(minutes=9))
    assert periodic_pass(svc(b), interval=0.001) is True  # a short interval: B's turn
    assert queue.prune(MAINTENANCE, older_than=timedelta(0)) == 2


def test_the_periodic_pass_escalates_overdue_kpi_reports_once_across_hosts(
    hosts: tuple[TestClient, TestClient],
) -> None:
    """Resolution-57 reports past their working-day deadline escalate in the shared pass, as
    `triage kpi remind` does (``escalated_at`` and one ``kpi_overdue`` event each), once only."""
    from datetime import timedelta

    from service.app import MAINTENANCE, periodic_pass
    from service.kpi import ensure_due, today
    from triage.cases.jobs import JobQueue
    from triage.kpi.reports import overdue
    from triage.store.kpi_tables import KpiReport

    a, b = hosts

    def events() -> dict[int, int]:
        with svc(a).db.read() as s:
            rows = s.scalars(select(Event).where(Event.action == "kpi_overdue"))
            out: dict[int, int] = {}
            for e in rows:
                rid = int((e.after or {})["report_id"])
                out[rid] = out.get(rid, 0) + 1
            return out

    queue = JobQueue(svc(a).db)
    queue.prune(MAINTENANCE, older_than=timedelta(0))
    assert periodic_pass(svc(a), interval=600) is True
    # The pass itself made every closed period's reports due (nobody opened a KPI page), then escalated the late.
    assert ensure_due(svc(a)) == 0
    day = today(svc(a))
    with svc(a).db.read() as s:
        late = list(overdue(s, day))
        assert late, "no report past its deadline to escalate"
        assert all(r.escalated_at is not None for r in late)
        pending = {r.id for r in late}
    after = events()
    assert {rid: after.get(rid) for rid in pending} == dict.fromkeys(pending, 1)
    with svc(a).db.read() as s:
        early = (KpiReport.escalated_at.is_not(None), KpiReport.due_date >= day)
        not_yet = s.scalar(select(func.count()).select_from(KpiReport).where(*early))
    assert not_yet == 0  # a report not yet late is left alone
    assert periodic_pass(svc(b), interval=600) is False  # A's pass counts for B
    queue.prune(MAINTENANCE, older_than=timedelta(0))
    assert periodic_pass(svc(b), interval=600) is True  # the next interval's pass, on B
    assert events() == after  # nothing escalated twice
