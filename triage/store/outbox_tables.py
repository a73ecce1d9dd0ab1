"""Tables of the two-way channel's outgoing side: the notification outbox and published answers.

An ``OutboxMessage`` is written in the same transaction as the event it reports (a receipt, a case
returned or answered, a deadline missed), so a rolled-back event leaves no message and a committed
one always has its message. The delivery worker claims rows (``state`` pending -> sending, a
compare-and-set) and marks them sent; see ``triage.cases.notifications``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from triage.store.tables import Base, utcnow

OUTBOX_STATES = ("pending", "sending", "sent", "failed")


class OutboxMessage(Base):
    """One message to send (e-mail or SMS); ``message_id`` is fixed at enqueue, so every retry carries it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(8))  # email | sms
    event: Mapped[str] = mapped_column(String(32))  # receipt | returned | answered | overdue
    case_id: Mapped[int | None] = mapped_column(Integer, index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PublishedAnswer(Base):
    """An answered case an agency published (with the submitter's consent), personal data masked.

    The texts are copies made at publication: a later edit of the case does not change what the public
    read. ``unpublished_at`` set = withdrawn from /hoi-dap (the row stays, so the audit trail can name it).
    """

    __tablename__ = "published_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    agency_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    field: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column()
    published_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    unpublished_at: Mapped[datetime | None] = mapped_column()
