"""The service's notification worker: a daemon thread delivering the outbox every ``notify_poll_s`` seconds.

Every worker and host may run one: the outbox's claim (``triage.cases.outbox``) hands each message to
exactly one of them, so starting several only shares the load. `triage notify run` is the same loop
outside the service.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from triage.cases.outbox import DeliveryReport, Outbox, Sender, default_senders
from triage.config import Settings
from triage.store.db import Database

log = logging.getLogger("triage.service.notify")


@dataclass
class Notifier:
    settings: Settings
    db: Database
    senders: dict[str, Sender] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        if not self.senders:
            self.senders = default_senders(self.settings)
        self.outbox = Outbox.from_settings(self.db, self.settings)

    def run_once(self) -> DeliveryReport:
        """Deliver until nothing is due (a batch at a time)."""
        total = DeliveryReport()
        while not self._stop.is_set():
            report = self.outbox.deliver(self.senders)
            total.claimed += report.claimed
            total.sent += report.sent
            total.failed += report.failed
            total.given_up += report.given_up
            if report.claimed < self.outbox.batch:
                break
        return total

    def start(self) -> None:
        if self._thread is not None or self.settings.notify_poll_s <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.run_once()
                if report.sent or report.failed:
                    log.info("notifications: %d sent, %d failed attempt(s)", report.sent, report.failed)
            except Exception:  # the database or the transport may be away for a moment
                log.exception("delivering notifications failed; trying again at the next poll")
            self._stop.wait(self.settings.notify_poll_s)
