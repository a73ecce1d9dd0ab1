"""Background jobs in the database (issue 24, item 2): one at a time per kind, claimed by exactly one
runner even when many race, progress visible to all, a dead runner's job queued again once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.db import BACKENDS, FreshDatabases
from triage.cases.jobs import MAX_ATTEMPTS, JobQueue
from triage.errors import Conflict, NotFound
from triage.store.db import Database, init_db
from triage.store.tables import utcnow


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, fresh_databases: FreshDatabases) -> Iterator[Database]:
    d = Database(fresh_databases.new(request.param), pool_size=12)
    init_db(d)
    yield d
    d.dispose()


def test_one_active_job_per_kind(db: Database) -> None:
    queue = JobQueue(db)
    first = queue.enqueue("retrain", requested_by="admin", payload={"seed": "x"})
    assert first.state == "queued" and queue.active("retrain") == first
    with pytest.raises(Conflict, match=first.id):
        queue.enqueue("retrain", requested_by="other")
    other_kind = queue.enqueue("index_rebuild", requested_by="admin")  # other kinds are independent
    assert other_kind.id != first.id
    claimed = queue.claim(["retrain"], worker="host-a:1")
    assert claimed is not None and claimed.id == first.id and claimed.state == "running"
    queue.finish(first.id, {"version": 3})
    done = queue.get(first.id)
    assert done.state == "succeeded" and done.result == {"version": 3} and done.finished_at is not None
    assert queue.enqueue("retrain", requested_by="admin").state == "queued"  # free again
    with pytest.raises(NotFound):
        queue.get("ffff")


def test_racing_runners_claim_each_job_exactly_once(db: Database) -> None:
    queue = JobQueue(db)
    kinds = [f"kind{i}" for i in range(6)]
    for kind in kinds:
        queue.enqueue(kind, requested_by="admin")
    claims: list[tuple[str, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def runner(name: str) -> None:
        start.wait()
        while True:
            job = JobQueue(db).claim(kinds, worker=name)
            if job is None:
                return
            with lock:
                claims.append((job.id, name))

    threads = [threading.Thread(target=runner, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ids = [job_id for job_id, _ in claims]
    assert len(ids) == len(kinds) and len(set(ids)) == len(kinds)  # each once, none lost
    assert queue.counts()["running"] == len(kinds)


def test_progress_is_stored_and_failures_keep_their_reason(db: Database) -> None:
    queue = JobQueue(db)
    job = queue.enqueue("retrain", requested_by="admin")
    assert queue.claim(["retrain"]) is not None
    queue.report(job.id, "encoding", 0.4)
    seen = JobQueue(db).get(job.id)  # another worker's view
    assert (seen.stage, seen.progress) == ("encoding", 0.4)
    queue.fail(job.id, "ValueError: not enough labels")
    failed = queue.get(job.id)
    assert failed.state == "failed" and failed.error == "ValueError: not enough labels"
    assert queue.claim(["retrain"]) is None


def test_a_stale_job_is_queued_again_once_then_failed(db: Database) -> None:
    queue = JobQueue(db, stale_after=timedelta(minutes=5))
    job = queue.enqueue("retrain", requested_by="admin")
    assert queue.claim(["retrain"], worker="dead:1") is not None
    assert queue.recover(now=utcnow() + timedelta(minutes=1)) == 0  # still heartbeating recently
    assert queue.recover(now=utcnow() + timedelta(minutes=10)) == 1
    again = queue.get(job.id)
    assert again.state == "queued" and "stopped" in again.stage
    for _ in range(MAX_ATTEMPTS - 1):
        assert queue.claim(["retrain"], worker="dead:2") is not None
        queue.recover(now=utcnow() + timedelta(minutes=10))
    final = queue.get(job.id)
    assert final.state == "failed" and "dead:2" in (final.error or "")
    assert queue.enqueue("retrain", requested_by="admin").state == "queued"
