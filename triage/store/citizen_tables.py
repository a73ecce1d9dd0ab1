"""Tables of the citizen channel: uploaded files (any feature's) and what the citizen sent after the receipt.

``Attachment`` is generic: ``owner`` names the feature ("submission", "followup", a KPI report's
evidence...) and ``owner_id`` its row; ``case_id`` is set when the file belongs to a case, so the
case's access rules decide who may download it. The bytes live in the file store (``triage.store.files``),
named by ``sha256``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from triage.store.tables import Base, utcnow


class Attachment(Base):
    """One stored file: who owns it, what it is (by content), its digest and the name to serve it under."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_owner", "owner", "owner_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[int | None] = mapped_column(Integer)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FollowUp(Base):
    """What the submitter did through the follow-up link: added information, withdrew, rated an answer."""

    __tablename__ = "followups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    kind: Mapped[str] = mapped_column(String(16))  # information | withdraw | rating
    rating: Mapped[str | None] = mapped_column(String(16))  # solved | partly | not_solved
    response_id: Mapped[int | None] = mapped_column(ForeignKey("responses.id"))  # the answer rated
    body: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)
