"""Per-agency handling statistics for a period: the KPI view of the PAKN-SKGP regulation.

For the period [start, end] (local dates, both included): *received* counts cases received, *answered*
those first answered, *on time* those answered no later than their answer deadline. *Backlog* and
*overdue* are a snapshot at the period's end (or today, if the period has not ended): cases received
by then and neither answered nor ended, and those of them already past their deadline. A case counts
for the agency responsible for it now (after any transfer); cases not yet routed count under
``agency_code = None``. The same counts per programme field (``programme_field_stats``: the
Resolution-57 task groups by default) show where the programme's matters stand; cases stored before
any triage count under ``code = None``. Both take the other's filter, so a report can be narrowed to
one agency or one programme field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from triage.cases.calendar import local_tz, to_local_date
from triage.errors import InvalidInput
from triage.nlp.agencies import default_registry
from triage.nlp.programme_fields import ProgrammeTaxonomy, default_taxonomy
from triage.store.tables import Case

UNROUTED = "(chưa chuyển cơ quan)"
UNCLASSIFIED = "(chưa phân loại)"


@dataclass
class AgencyStats:
    agency_code: str | None
    agency_name: str
    received: int = 0
    answered: int = 0
    answered_on_time: int = 0
    backlog: int = 0
    overdue: int = 0

    @property
    def on_time_pct(self) -> float | None:
        """Share of the period's answers given on time, in percent; None when nothing was answered."""
        return None if not self.answered else round(100.0 * self.answered_on_time / self.answered, 1)


@dataclass
class ProgrammeFieldStats:
    """The period's counts for one programme field (``code`` None: cases never triaged)."""

    code: str | None
    name: str
    received: int = 0
    answered: int = 0
    answered_on_time: int = 0
    backlog: int = 0
    overdue: int = 0

    @property
    def on_time_pct(self) -> float | None:
        return None if not self.answered else round(100.0 * self.answered_on_time / self.answered, 1)


def _local_midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=local_tz()).astimezone(UTC)


def _tally(
    session: Session,
    start: date,
    end: date,
    *,
    today: date,
    key: Any,
    row: Callable[[str | None], AgencyStats | ProgrammeFieldStats],
    agency_code: str | None = None,
    programme_field: str | None = None,
) -> None:
    """Count the period's cases into ``row(key of the case)``: received, answered, on time, backlog, overdue."""
    if end < start:
        raise InvalidInput(f"period end {end} is before its start {start}")
    as_of = min(end, today)
    start_b, end_b = _local_midnight_utc(start), _local_midnight_utc(end + timedelta(days=1))
    snap_b = _local_midnight_utc(as_of + timedelta(days=1))
    stmt = select(key, Case.received_at, Case.answered_at, Case.ended_at, Case.answer_due).where(
        Case.received_at < end_b,
        or_(Case.received_at >= start_b, Case.answered_at.is_(None), Case.answered_at >= start_b),
    )
    if agency_code is not None:
        stmt = stmt.where(Case.agency_code == agency_code)
    if programme_field is not None:
        stmt = stmt.where(Case.programme_field == programme_field)
    for code, received, answered, ended, due in session.execute(stmt):
        if start_b <= received < end_b:
            row(code).received += 1
        if answered is not None and start_b <= answered < end_b:
            r = row(code)
            r.answered += 1
            if due is not None and to_local_date(answered) <= due:
                r.answered_on_time += 1
        open_at_snapshot = (
            received < snap_b and (answered is None or answered >= snap_b) and (ended is None or ended >= snap_b)
        )
        if open_at_snapshot:
            r = row(code)
            r.backlog += 1
            if due is not None and due < as_of:
                r.overdue += 1


def agency_stats(
    session: Session,
    start: date,
    end: date,
    *,
    today: date,
    agency_code: str | None = None,
    programme_field: str | None = None,
) -> list[AgencyStats]:
    """One row per agency with any activity in the period (or the one agency asked for).

    ``programme_field`` counts only the cases of that programme field (a code the caller checked).
    """
    registry = default_registry()
    rows: dict[str | None, AgencyStats] = {}

    def row(code: str | None) -> AgencyStats:
        if code not in rows:
            name = UNROUTED if code is None else registry.name_of(code, code)
            rows[code] = AgencyStats(code, name)
        return rows[code]

    if agency_code is not None:
        row(agency_code)
    _tally(session, start, end, today=today, key=Case.agency_code, row=row, agency_code=agency_code,
           programme_field=programme_field)  # fmt: skip
    return sorted(rows.values(), key=lambda r: (r.agency_code is None, r.agency_code or ""))


def programme_field_stats(
    session: Session,
    start: date,
    end: date,
    *,
    today: date,
    taxonomy: ProgrammeTaxonomy | None = None,
    agency_code: str | None = None,
    programme_field: str | None = None,
) -> list[ProgrammeFieldStats]:
    """One row per programme field of the taxonomy, in its order (zeros included, so a report shows every
    task group), then codes of another taxonomy still stored, then cases never triaged if any."""
    taxonomy = taxonomy or default_taxonomy()
    rows: dict[str | None, ProgrammeFieldStats] = {}

    def row(code: str | None) -> ProgrammeFieldStats:
        if code not in rows:
            name = UNCLASSIFIED if code is None else taxonomy.name_of(code, code) or code
            rows[code] = ProgrammeFieldStats(code, name)
        return rows[code]

    for f in taxonomy.fields:
        if programme_field is None or f.code == programme_field:
            row(f.code)
    _tally(session, start, end, today=today, key=Case.programme_field, row=row, agency_code=agency_code,
           programme_field=programme_field)  # fmt: skip
    order = {c: i for i, c in enumerate(taxonomy.codes)}
    return sorted(rows.values(), key=lambda r: (r.code is None, order.get(r.code or "", len(order)), r.code or ""))
