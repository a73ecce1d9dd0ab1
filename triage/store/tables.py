"""Tables of the service: what citizens sent, the cases built from it, and every decision on record.

Times are stored as naive UTC (``UTCDateTime``) so that SQLite and PostgreSQL give back the very
same value: the audit chain hashes them, and one microsecond of drift would look like tampering.
Deadlines are local (Asia/Ho_Chi_Minh) dates, because the law counts days, not hours.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy import text as sa_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class CaseState(StrEnum):
    """Where a case stands; values are the stored and serialised form (the workflow owns the moves)."""

    NEW = "new"
    TRIAGED = "triaged"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RETURNED = "returned"
    TRANSFERRED = "transferred"
    RESPONDED = "responded"
    CLOSED = "closed"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


# Stable constraint names, so Alembic migrations stay the same on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# None is SQL NULL (not the JSON text 'null'), so "no suggestion yet" can be found with IS NULL.
NULLABLE_JSON = JSON(none_as_null=True)


def utcnow() -> datetime:
    """The current moment, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database (identical on both backends)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: NULLABLE_JSON,
        bytes: LargeBinary(),
    }


class Agency(Base):
    """A body that can be responsible for a case; mirrored from the packaged registry at start-up."""

    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    parent: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class User(Base):
    """A staff account; ``agency_code`` scopes a handler to its agency's cases."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    agency_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Case(Base):
    """The unit of work: one or more submissions on the same matter, moving through the workflow."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    agency_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"), index=True)
    field: Mapped[str | None] = mapped_column(String(200))
    # The programme's task group (Resolution 57 by default): a taxonomy code, suggested at intake, a clerk
    # may correct it when routing; the catch-all's code ("other") when none fits, NULL before any triage.
    programme_field: Mapped[str | None] = mapped_column(String(32), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    received_at: Mapped[datetime] = mapped_column(index=True)
    forward_due: Mapped[date | None] = mapped_column(Date)
    answer_due: Mapped[date | None] = mapped_column(Date, index=True)
    suggestion: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)
    model_version: Mapped[str | None] = mapped_column(String(200))
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    escalated_for: Mapped[str | None] = mapped_column(String(40))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    # The case's id in the system it was imported from (``triage import``); NULL for cases filed here.
    external_id: Mapped[str | None] = mapped_column(String(200), index=True, unique=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    submissions: Mapped[list[Submission]] = relationship(
        back_populates="case", order_by="Submission.id", foreign_keys="Submission.case_id"
    )


class Campaign(Base):
    """Near-identical submissions received close together (a petition drive, a shared template).

    Grouped automatically at intake (``triage.cases.campaigns``); one answer can then serve every open
    case of the group. ``size`` counts the cases in it.
    """

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    size: Mapped[int] = mapped_column(Integer, default=0, index=True)


class Submission(Base):
    """What a citizen, organisation, business or expert sent, kept exactly as sent plus normalised."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(32), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    submitter_type: Mapped[str] = mapped_column(String(20))
    title_raw: Mapped[str] = mapped_column(Text)
    content_raw: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text)
    # The same with personal data masked (``mask_personal``): what roles that see masked text search.
    # NULL for rows stored before it existed, until the periodic job fills them in.
    masked_search_text: Mapped[str | None] = mapped_column(Text)
    province_raw: Mapped[str | None] = mapped_column(String(200))
    province_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    contact_address: Mapped[str | None] = mapped_column(String(500))
    # Where the matter is (all optional): the ward or commune (the canonical post-2025 name when it is
    # recognised, else as typed), a street address, and a phone's latitude / longitude.
    ward: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    # SHA-256 of the secret follow-up token given on the receipt (the token itself is never stored).
    followup_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    forward_due: Mapped[date] = mapped_column(Date)  # as promised in the receipt (a retry gets the same)
    answer_due: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The submitter agreed that an answer may be published (masked) on /hoi-dap; asked on the form, default no.
    publish_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_text("false"))

    case: Mapped[Case] = relationship(back_populates="submissions", foreign_keys=[case_id])


class Assignment(Base):
    """Who was given a case, by whom and when (the history; ``Case.assignee_id`` is the current one)."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    agency_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"))
    assignee_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assigned_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Response(Base):
    """An agency's answer to a case."""

    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    agency_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"))
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewedLabel(Base):
    """A human routing decision on a case: training data for the next router (confirmed or corrected)."""

    __tablename__ = "reviewed_labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    field: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    suggested_agency_code: Mapped[str | None] = mapped_column(String(16))
    confirmed: Mapped[bool] = mapped_column(Boolean)
    model_version: Mapped[str | None] = mapped_column(String(200))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    """One entry of the audit trail, chained to the previous one by SHA-256 (see ``triage.cases.audit``).

    ``seq`` is the position in the chain (1, 2, ...); ``prev_ref`` repeats the previous event's
    case and action so that a deleted row can still be named by the one after it. No foreign keys:
    the trail must outlive and describe anything, including rows that were removed.
    """

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    before: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)
    model_version: Mapped[str | None] = mapped_column(String(200))
    prev_ref: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # HMAC-SHA-256 of ``hash`` under the audit key (outside the database); NULL before the key existed.
    mac: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_events_case_id", "case_id"),)


class AuditHead(Base):
    """The single row holding the chain's last (seq, hash): appends lock it, so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    ref: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)  # the last event's case and action
    mac: Mapped[str | None] = mapped_column(String(64))  # HMAC of (seq, hash) under the audit key


class EvalSliceEntry(Base):
    """A text frozen into the evaluation slice: never trained on; the slice grows only by explicit command.

    Keyed by the de-duplication key of the text (not a label id), so a later label for the same text
    (a re-routed case) stays in the slice too and can never leak into training.
    """

    __tablename__ = "eval_slice"

    text_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(16), index=True)
    label_id: Mapped[int | None] = mapped_column(ForeignKey("reviewed_labels.id"))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class RateBucket(Base):
    """One client's token bucket for a rate-limited endpoint, shared by every worker and host.

    ``key`` names the limit and the client ("route:203.0.113.7"); ``tokens`` is what was left at
    ``stamp`` (seconds since the epoch); the refill is computed when the bucket is next used.
    """

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    stamp: Mapped[float] = mapped_column(Float, index=True)


class LoginFailure(Base):
    """Failed sign-ins of one account or one client address, and the lockout they earned."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "account:lan" or "address:203.0.113.7"
    failures: Mapped[int] = mapped_column(Integer)
    last_failure: Mapped[float] = mapped_column(Float, index=True)  # seconds since the epoch
    locked_until: Mapped[float] = mapped_column(Float)


ACTIVE_JOB_STATES = ("queued", "running")


class Job(Base):
    """A background job (a retrain, for now) that every worker and host sees: one runner claims it.

    At most one job of a kind is queued or running at a time (a partial unique index, so two workers
    asked at once cannot both start one); progress and the result live here, so any worker answers
    for it and a restart does not lose it.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index(
            "uq_jobs_active_kind",
            "kind",
            unique=True,
            sqlite_where=sa_text("state IN ('queued', 'running')"),
            postgresql_where=sa_text("state IN ('queued', 'running')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)  # queued | running | succeeded | failed
    stage: Mapped[str] = mapped_column(String(200), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    requested_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)  # host:pid of the runner
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class ThemeRecord(Base):
    """A theme as kept between theme reports, so next week's report gives the same theme the same id and label.

    ``id`` is the theme's key across periods; ``centroid`` its mean embedding (float32 unit
    vector) when last seen; ``first_seen``/``last_seen`` the periods' first and last days in which
    a report found it.
    """

    __tablename__ = "themes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(Text)
    centroid: Mapped[bytes] = mapped_column(LargeBinary)
    first_seen: Mapped[date] = mapped_column(Date)
    last_seen: Mapped[date] = mapped_column(Date, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# The monitoring tables live in their own module on the same metadata; importing it here puts them in
# ``Base.metadata`` wherever the tables are loaded (migrations, create_all, the schema check).
from triage.store import citizen_tables as _citizen_tables  # noqa: E402,F401  (its tables join this metadata)
from triage.store import kpi_tables as _kpi_tables  # noqa: E402,F401

# The outbox and published answers live in their own module on the same metadata (imported here so that
# every user of ``Base.metadata``, Alembic included, sees them).
from triage.store import outbox_tables as _outbox_tables  # noqa: E402, F401
