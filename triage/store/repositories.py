"""Queries with domain names, so callers say what they want rather than how SQL gets it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.orm import Session

from triage.store.db import Database
from triage.store.tables import Assignment, Case, CaseState, Event, Response, ReviewedLabel, Submission, User

# States whose answer deadline is running: RETURNED waits for the submitter, RESPONDED has its answer.
OPEN_STATES: tuple[str, ...] = tuple(
    s.value
    for s in (CaseState.NEW, CaseState.TRIAGED, CaseState.ASSIGNED, CaseState.IN_PROGRESS, CaseState.TRANSFERRED)
)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_key(text: str) -> str:
    """What text search compares: the normalised text, case-folded (SQLite's LOWER only knows ASCII)."""
    return text.casefold()


def masked_search_key(title: str, content: str) -> str:
    """``search_key`` of the title and content with personal data masked (``mask_personal``)."""
    from triage.nlp.text import mask_personal  # deferred: the tagger loads on first use

    return search_key(f"{mask_personal(title)}\n{mask_personal(content)}")


def fill_masked_search(db: Database, limit: int = 200) -> int:
    """Mask up to ``limit`` submissions stored before ``masked_search_text`` existed; how many were done.

    The tagger runs between a read and a short write, never inside a write transaction.
    """
    with db.read() as s:
        rows = s.execute(
            select(Submission.id, Submission.title, Submission.content)
            .where(Submission.masked_search_text.is_(None))
            .order_by(Submission.id)
            .limit(limit)
        ).all()
    keys = {sub_id: masked_search_key(title, content) for sub_id, title, content in rows}
    if keys:
        with db.session() as s:
            for sub_id, key in keys.items():
                s.execute(
                    update(Submission)
                    .where(Submission.id == sub_id, Submission.masked_search_text.is_(None))
                    .values(masked_search_text=key)
                )
    return len(keys)


class Submissions:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_idempotency_key(self, key: str) -> Submission | None:
        return self.session.scalar(select(Submission).where(Submission.idempotency_key == key))

    def by_tracking_code(self, code: str) -> Submission | None:
        return self.session.scalar(select(Submission).where(Submission.tracking_code == code))

    def first_of_cases(self, case_ids: Sequence[int]) -> dict[int, Submission]:
        """Each case's first submission (its title stands for the case in lists), in one query."""
        if not case_ids:
            return {}
        stmt = select(Submission).where(Submission.case_id.in_(list(set(case_ids)))).order_by(Submission.id)
        first: dict[int, Submission] = {}
        for sub in self.session.scalars(stmt):
            first.setdefault(sub.case_id, sub)
        return first

    def of_case(self, case_id: int) -> list[Submission]:
        return list(
            self.session.scalars(select(Submission).where(Submission.case_id == case_id).order_by(Submission.id))
        )


@dataclass(frozen=True)
class CaseFilter:
    """Filters of the staff case list; every one optional."""

    states: Sequence[str] = ()
    agency_code: str | None = None
    kind: str | None = None
    overdue: bool = False
    due_before: date | None = None  # "due soon": open, answer due on or after today and before this date
    text: str | None = None
    masked_text: bool = False  # search ``text`` in the masked text (roles that see masked data)
    assignee_id: int | None = None
    flagged: bool | None = None  # moderation flag raised (and not dismissed) / not raised; None = either
    programme_field: str | None = None  # programme task group code (callers check it against the taxonomy)


class Cases:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, case_id: int, *, for_update: bool = False) -> Case | None:
        """One case; ``for_update`` locks the row on PostgreSQL so concurrent actions take turns."""
        stmt = select(Case).where(Case.id == case_id)
        if for_update and self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return self.session.scalar(stmt.execution_options(populate_existing=True))

    def lock(self, case_ids: Iterable[int]) -> list[Case]:
        """Lock these cases in ascending id order (the lock order of ``triage.cases.audit``); returns them by id."""
        ids = sorted(set(case_ids))
        if not ids:
            return []
        stmt = select(Case).where(Case.id.in_(ids)).order_by(Case.id)
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return list(self.session.scalars(stmt.execution_options(populate_existing=True)))

    def queue_depths(self, *, today: date) -> tuple[dict[str, int], int]:
        """Cases by state, and open cases past their answer deadline (the operator's queue gauges)."""
        rows = self.session.execute(select(Case.state, func.count()).group_by(Case.state)).all()
        overdue = self.session.scalar(
            select(func.count()).select_from(Case).where(Case.state.in_(OPEN_STATES), Case.answer_due < today)
        )
        return {str(state): int(n) for state, n in rows}, int(overdue or 0)

    def _filtered(self, f: CaseFilter, today: date) -> Select[Case]:
        stmt = select(Case)
        if f.states:
            stmt = stmt.where(Case.state.in_(list(f.states)))
        if f.agency_code:
            stmt = stmt.where(Case.agency_code == f.agency_code)
        if f.kind:
            stmt = stmt.where(Case.kind == f.kind)
        if f.assignee_id is not None:
            stmt = stmt.where(Case.assignee_id == f.assignee_id)
        if f.programme_field:
            stmt = stmt.where(Case.programme_field == f.programme_field)
        if f.flagged is not None:
            flag = Case.suggestion[("moderation", "flagged")].as_boolean()
            stmt = stmt.where(flag.is_(True) if f.flagged else or_(flag.is_(None), flag.is_(False)))
        if f.overdue:
            stmt = stmt.where(Case.state.in_(OPEN_STATES), Case.answer_due < today)
        if f.due_before is not None:
            stmt = stmt.where(Case.state.in_(OPEN_STATES), Case.answer_due >= today, Case.answer_due < f.due_before)
        if f.text:
            pattern = _like_pattern(search_key(f.text))
            # Searching the raw text for a masked role would recover masked data prefix by prefix
            # ("số 09", "số 091", ...): that role searches what it is shown.
            column = Submission.masked_search_text if f.masked_text else Submission.search_text
            stmt = stmt.where(exists().where(Submission.case_id == Case.id, column.like(pattern, escape="\\")))
        return stmt

    def find(self, f: CaseFilter, today: date, *, limit: int = 50, offset: int = 0) -> tuple[list[Case], int]:
        """A page of matching cases, newest first, and the total count."""
        stmt = self._filtered(f, today)
        total = int(self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        rows = self.session.scalars(stmt.order_by(Case.received_at.desc(), Case.id.desc()).limit(limit).offset(offset))
        return list(rows), total

    def open_with_deadline(self) -> list[Case]:
        return list(
            self.session.scalars(
                select(Case).where(Case.state.in_(OPEN_STATES), Case.answer_due.is_not(None)).order_by(Case.id)
            )
        )

    def without_suggestion(
        self, limit: int = 100, *, max_failures: int | None = None
    ) -> list[tuple[Case, int, datetime | None]]:
        """NEW cases whose automatic triage failed at intake (retried by the periodic job), each with
        how often a retry failed since (its ``triage_failed`` events) and when last; the least-tried first,
        and none that failed ``max_failures`` times, so cases that always fail cannot starve the rest."""
        failed = (
            select(Event.case_id, func.count().label("n"), func.max(Event.at).label("last"))
            .where(Event.action == "triage_failed")
            .group_by(Event.case_id)
            .subquery()
        )
        n = func.coalesce(failed.c.n, 0)
        stmt = (
            select(Case, n, failed.c.last)
            .outerjoin(failed, failed.c.case_id == Case.id)
            .where(Case.state == "new", Case.suggestion.is_(None))
            .order_by(n, Case.id)
            .limit(limit)
        )
        if max_failures is not None:
            stmt = stmt.where(n < max_failures)
        return [(case, int(count), last) for case, count, last in self.session.execute(stmt)]


class Users:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_username(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(User.username == username))

    def by_ids(self, ids: Sequence[int]) -> dict[int, User]:
        if not ids:
            return {}
        return {u.id: u for u in self.session.scalars(select(User).where(User.id.in_(list(set(ids)))))}

    def handlers_of(self, agency_code: str) -> list[User]:
        """Active handler accounts of one agency (whom a case of that agency may be assigned to)."""
        stmt = (
            select(User)
            .where(User.role == "handler", User.agency_code == agency_code, User.active.is_(True))
            .order_by(User.username)
        )
        return list(self.session.scalars(stmt))


class Timeline:
    """What happened to a case: events, assignments, responses."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def events(self, case_id: int) -> list[Event]:
        return list(self.session.scalars(select(Event).where(Event.case_id == case_id).order_by(Event.seq)))

    def responses(self, case_id: int) -> list[Response]:
        return list(self.session.scalars(select(Response).where(Response.case_id == case_id).order_by(Response.id)))

    def assignments(self, case_id: int) -> list[Assignment]:
        stmt = select(Assignment).where(Assignment.case_id == case_id).order_by(Assignment.id)
        return list(self.session.scalars(stmt))


class Labels:
    def __init__(self, session: Session) -> None:
        self.session = session

    def of_case(self, case_id: int) -> list[ReviewedLabel]:
        stmt = select(ReviewedLabel).where(ReviewedLabel.case_id == case_id).order_by(ReviewedLabel.id)
        return list(self.session.scalars(stmt))

    def all(self) -> list[ReviewedLabel]:
        return list(self.session.scalars(select(ReviewedLabel).order_by(ReviewedLabel.id)))

    def counts(self) -> tuple[int, int]:
        """(reviewed labels, of which confirmations of the suggestion): what a retraining would learn from."""
        total = self.session.scalar(select(func.count()).select_from(ReviewedLabel)) or 0
        confirmed = self.session.scalar(
            select(func.count()).select_from(ReviewedLabel).where(ReviewedLabel.confirmed.is_(True))
        )
        return int(total), int(confirmed or 0)
