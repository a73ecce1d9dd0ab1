"""Delivering the outbox: claim due messages, send them, mark them sent; retry failures with back-off.

Claiming is the jobs table's compare-and-set (``triage.cases.jobs``): due rows are selected (on
PostgreSQL ``FOR UPDATE SKIP LOCKED``, so workers on several hosts do not wait on each other), then
each is moved ``pending -> sending`` by an UPDATE that names its old state; a row another worker took
meanwhile matches nothing. Each message is marked sent in its own commit right after the server
accepted it, so a worker killed at any point leaves at most the one message it was sending in
``sending``; after ``lease`` that one is claimed again. It was not accepted unless the server had
answered 250 before the kill: the only window for a repeat is between that answer and the commit
(microseconds), and the repeat carries the same Message-ID. A failure waits ``backoff * 2**(n-1)``
(capped) before the next attempt; after ``max_attempts`` the message is ``failed`` and kept.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select, update

from triage.cases.followup_secret import redact_secrets
from triage.cases.jobs import worker_name
from triage.cases.notifications import EMAIL, LINK_BASE, SMS
from triage.store.db import Database
from triage.store.outbox_tables import OUTBOX_STATES, OutboxMessage
from triage.store.tables import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """A claimed message, as a sender sees it (links already made absolute)."""

    id: int
    message_id: str
    channel: str
    recipient: str
    subject: str
    body: str
    attempts: int


class Sender(Protocol):
    """Hands one message to a transport; returns when it was accepted, raises when it was not."""

    def send(self, message: Outgoing) -> None: ...


@dataclass
class SmtpSender:
    """E-mail over SMTP (stdlib ``smtplib``); one connection per message, so a dead one never poisons a batch."""

    host: str
    port: int = 25
    sender: str = "PAKN <no-reply@pakn.localhost>"
    user: str | None = None
    password: str | None = None
    security: str = "none"  # none | starttls | ssl
    timeout: float = 20.0

    @classmethod
    def from_settings(cls, settings: Any) -> SmtpSender | None:
        """None when no SMTP host is set (e-mails then wait in the outbox)."""
        if not settings.smtp_host:
            return None
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            user=settings.smtp_user,
            password=password,
            security=settings.smtp_security,
            timeout=settings.smtp_timeout_s,
        )

    def email(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["Message-ID"] = message.message_id
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(utcnow())
        mail.set_content(message.body)
        return mail

    def send(self, message: Outgoing) -> None:
        mail = self.email(message)
        if self.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            if self.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if self.user:
                client.login(self.user, self.password or "")
            client.send_message(mail)


class LoggingSmsSender:
    """The default SMS "gateway": writes the message to the log (a real gateway implements ``Sender``)."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def send(self, message: Outgoing) -> None:
        tail = message.recipient[-3:]
        log.info("SMS to ***%s (%s): %s", tail, message.message_id, message.body)
        self.sent.append(message)


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0  # attempts that failed (retried later or given up)
    given_up: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Outbox:
    """Claim, deliver and account for outbox messages in ``db``."""

    db: Database
    lease: timedelta = timedelta(minutes=5)
    max_attempts: int = 8
    backoff: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(hours=1)
    batch: int = 50
    public_base_url: str = "http://localhost:8000"

    @classmethod
    def from_settings(cls, db: Database, settings: Any) -> Outbox:
        return cls(
            db=db,
            lease=timedelta(seconds=settings.notify_lease_s),
            max_attempts=settings.notify_max_attempts,
            backoff=timedelta(seconds=settings.notify_backoff_s),
            backoff_max=timedelta(seconds=settings.notify_backoff_max_s),
            batch=settings.notify_batch,
            public_base_url=settings.public_base_url.rstrip("/"),
        )

    def wait_after(self, attempts: int) -> timedelta:
        """Exponential back-off: ``backoff`` after the first failure, doubled each time, at most ``backoff_max``."""
        return min(self.backoff * (2 ** max(0, attempts - 1)), self.backoff_max)

    def _due(self, now: datetime, channels: Sequence[str]) -> Any:
        stale = now - self.lease
        return and_(
            OutboxMessage.channel.in_(list(channels)),
            or_(
                and_(OutboxMessage.state == "pending", OutboxMessage.next_attempt_at <= now),
                and_(OutboxMessage.state == "sending", OutboxMessage.claimed_at < stale),
            ),
        )

    def claim(
        self, *, channels: Sequence[str] = (EMAIL, SMS), worker: str | None = None, now: datetime | None = None
    ) -> list[Outgoing]:
        """Up to ``batch`` due messages (pending and due, or claimed by a worker that stopped), now ours."""
        worker = worker or worker_name()
        moment = now or utcnow()

        def attempt(s: Any) -> list[Outgoing]:
            stmt = select(OutboxMessage.id).where(self._due(moment, channels)).order_by(OutboxMessage.id)
            if s.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            ids = list(s.scalars(stmt.limit(self.batch)))
            out: list[Outgoing] = []
            for mid in ids:
                took = s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == mid, self._due(moment, channels))
                    .values(
                        state="sending",
                        claimed_by=worker,
                        claimed_at=moment,
                        attempts=OutboxMessage.attempts + 1,
                    )
                )
                if took.rowcount != 1:  # another worker was faster
                    continue
                row = s.get(OutboxMessage, mid, populate_existing=True)
                if row is not None:
                    out.append(self._outgoing(row))
            return out

        claimed: list[Outgoing] = self.db.transaction(attempt)
        return claimed

    def _outgoing(self, row: OutboxMessage) -> Outgoing:
        return Outgoing(
            id=row.id,
            message_id=row.message_id,
            channel=row.channel,
            recipient=row.recipient,
            subject=row.subject,
            body=row.body.replace(LINK_BASE, self.public_base_url),
            attempts=row.attempts,
        )

    def mark_sent(self, message: Outgoing, *, now: datetime | None = None) -> None:
        """Sent: the stored copy loses the follow-up link's secret key (the citizen has it; nobody else needs it)."""
        with self.db.session() as s:
            body = s.scalar(select(OutboxMessage.body).where(OutboxMessage.id == message.id))
            values: dict[str, Any] = {"state": "sent", "sent_at": now or utcnow(), "last_error": None}
            if body is not None:
                values["body"] = redact_secrets(body)
            s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id, OutboxMessage.state == "sending")
                .values(**values)
            )

    def mark_failed(self, message: Outgoing, error: str, *, now: datetime | None = None) -> bool:
        """Record a failed attempt; True when the message was given up (``failed``), else it is due again later."""
        moment = now or utcnow()
        give_up = message.attempts >= self.max_attempts
        values: dict[str, Any] = {"last_error": error[:2000], "claimed_by": None}
        if give_up:
            values["state"] = "failed"
        else:
            values.update(state="pending", next_attempt_at=moment + self.wait_after(message.attempts))
        with self.db.session() as s:
            s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id, OutboxMessage.state == "sending")
                .values(**values)
            )
        return give_up

    def deliver(
        self, senders: Mapping[str, Sender], *, worker: str | None = None, now: datetime | None = None
    ) -> DeliveryReport:
        """One pass: claim a batch for the channels that have a sender, send each, record each at once."""
        report = DeliveryReport()
        channels = [c for c in (EMAIL, SMS) if senders.get(c) is not None]
        if not channels:
            return report
        for message in self.claim(channels=channels, worker=worker, now=now):
            report.claimed += 1
            try:
                senders[message.channel].send(message)
            except Exception as exc:  # any transport error: the message stays ours to retry later
                report.failed += 1
                reason = f"{type(exc).__name__}: {exc}"
                report.errors.append(reason)
                log.warning("notification %s (attempt %d) failed: %s", message.id, message.attempts, reason)
                if self.mark_failed(message, reason, now=now):
                    report.given_up += 1
                continue
            self.mark_sent(message)
            report.sent += 1
        return report

    def counts(self) -> dict[str, int]:
        """Messages by state (the metrics' and `triage notify status`'s view)."""
        with self.db.read() as s:
            rows = s.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
        out = dict.fromkeys(OUTBOX_STATES, 0)
        out.update({str(state): int(n) for state, n in rows})
        return out

    def retry_failed(self, *, now: datetime | None = None) -> int:
        """Queue the given-up messages again (after the transport was fixed); returns how many."""
        with self.db.session() as s:
            done = s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.state == "failed")
                .values(state="pending", attempts=0, next_attempt_at=now or utcnow())
            )
            return int(getattr(done, "rowcount", 0) or 0)


def default_senders(settings: Any, *, sms: Sender | None = None) -> dict[str, Sender]:
    """E-mail over SMTP when a host is set; SMS through ``sms`` (default: the logging sender)."""
    senders: dict[str, Sender] = {SMS: sms or LoggingSmsSender()}
    smtp = SmtpSender.from_settings(settings)
    if smtp is not None:
        senders[EMAIL] = smtp
    return senders
