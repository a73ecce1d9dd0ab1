"""kill -9 a real `triage serve` while it delivers 100 queued notifications: after a restart each one
reached the local SMTP server exactly once (counted by Message-ID), on both backends."""

from __future__ import annotations

import os
import signal
import time
from email.message import Message
from pathlib import Path

import pytest
from sqlalchemy import func, select

from benchmarks.load.server import Server
from tests.smtp import LocalSmtp
from triage.cases.notifications import EMAIL, Notice, enqueue
from triage.store.db import Database, init_db
from triage.store.outbox_tables import OutboxMessage

QUEUED = 100
KILL_AT = 30  # the service dies while handing over this message, before the server's 250 reply


@pytest.mark.slow
@pytest.mark.usefixtures("encoder_path")
def test_sigkill_with_100_queued_notifications_delivers_each_exactly_once(
    tmp_path: Path, empty_db_url: str, smtp_server: LocalSmtp
) -> None:
    db = Database(empty_db_url)
    init_db(db)
    server = Server(
        tmp_path,
        extra_env={
            "TRIAGE_DATABASE_URL": empty_db_url,
            "TRIAGE_SMTP_HOST": smtp_server.host,
            "TRIAGE_SMTP_PORT": str(smtp_server.port),
            "TRIAGE_NOTIFY_POLL_S": "0.2",
            "TRIAGE_NOTIFY_BATCH": "10",
            "TRIAGE_NOTIFY_LEASE_S": "3",
            "TRIAGE_MODEL_POLL_S": "0",
        },
    )
    box = smtp_server.mailbox
    killed: list[int] = []

    def kill_mid_delivery(msg: Message) -> str | None:
        if killed or len(box.messages) < KILL_AT - 1:
            return None
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)  # before answering 250: this message was not accepted
        killed.append(server.proc.pid)
        return "421 Service shutting down"

    box.refuse = kill_mid_delivery
    server.start()
    # Queued once the service is up (in one transaction): queued before, its notifier could reach the
    # kill while the start-up check still waits for /health, and the check would see a dead server.
    try:
        with db.session() as s:
            for i in range(QUEUED):
                notice = Notice(subject=f"Thông báo {i}", body=f"Nội dung thông báo số {i}.", sms="")
                enqueue(s, event="receipt", channel=EMAIL, recipient=f"dan{i}@example.vn", notice=notice, case_id=None)
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert killed, f"the service never got to message {KILL_AT}; see {tmp_path / 'server.log'}"
        assert server.proc is not None and server.proc.wait(timeout=10) == -signal.SIGKILL
        assert len(box.messages) == KILL_AT - 1
        with db.read() as s:  # rows claimed by the dead process are still 'sending' (none lost, none marked sent)
            states = dict(s.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all())
        assert states.get("sent") == KILL_AT - 1 and states.get("sending", 0) >= 1
        box.refuse = None
        server.start()  # restart: the stale claims expire after the lease and are delivered
        deadline = time.monotonic() + 90
        while len(box.messages) < QUEUED and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # a duplicate would arrive right after the last message
    finally:
        server.stop()
    counts = box.message_ids()
    with db.read() as s:
        rows = {r.message_id: r.state for r in s.scalars(select(OutboxMessage))}
    db.dispose()
    assert len(counts) == QUEUED, f"{QUEUED - len(counts)} message(s) lost"
    assert max(counts.values()) == 1, f"duplicates: {[m for m, n in counts.items() if n > 1]}"
    assert set(counts) == set(rows) and set(rows.values()) == {"sent"}
