"""kill -9 the server during a burst of submissions: every acknowledged one survives intact."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from benchmarks.load.run import payload
from benchmarks.load.server import Server
from triage.store.tables import Submission


@pytest.mark.slow
@pytest.mark.usefixtures("encoder_path")
def test_acknowledged_submissions_survive_sigkill(tmp_path: Path) -> None:
    import random

    server = Server(tmp_path)
    server.start()
    acked: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def sender(worker: int) -> None:
        rng = random.Random(worker)
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            i = 0
            while not stop.is_set():
                body = payload(worker * 100_000 + i, rng)
                i += 1
                try:
                    r = client.post("/api/v1/submissions", json=body)
                except httpx.HTTPError:
                    return  # the server died mid-request: that one was never acknowledged
                if r.status_code == 201:
                    with lock:
                        acked[r.json()["tracking_code"]] = body

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 25 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # SIGKILL while requests are in flight
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 25, "the burst did not get going before the kill"

    server.start()  # restart on the same data folder (runs migrations, recovers the WAL)
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            for code in acked:
                assert client.get(f"/api/v1/track/{code}").status_code == 200, code
    finally:
        server.stop()
    engine = create_engine(f"sqlite:///{tmp_path / 'triage.db'}")
    with Session(engine) as s:
        rows = {r.tracking_code: r for r in s.scalars(select(Submission).where(Submission.tracking_code.in_(acked)))}
    assert set(rows) == set(acked)
    for code, body in acked.items():
        assert rows[code].content_raw == body["content"] and rows[code].title_raw == body["title"]
