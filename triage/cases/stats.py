"""Per-agency handling statistics for a period: the KPI view of the PAKN-SKGP regulation.

For the period [start, end] (local dates, both included): *received* counts cases received, *answered*
those first answered, *on time* those answered no later than their answer deadline. *Backlog* and
*overdue* are a snapshot at the period's end (or today, if the period has not ended): cases received
by then and neither answered nor ended, and those of them already past their deadline. A case counts
for the agency responsible for it now (after any transfer); cases not yet routed count under
``agency_code = None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from triage.cases.calendar import local_tz, to_local_date
from triage.errors import InvalidInput
from triage.nlp.agencies import default_registry
from triage.store.tables import Case

UNROUTED = "(chưa chuyển cơ quan)"


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


def _local_midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=local_tz()).astimezone(UTC)


def agency_stats(
    session: Session, start: date, end: date, *, today: date, agency_code: str | None = None
) -> list[AgencyStats]:
    """One row per agency with any activity in the period (or the one agency asked for)."""
    if end < start:
        raise InvalidInput(f"period end {end} is before its start {start}")
    as_of = min(end, today)
    start_b, end_b = _local_midnight_utc(start), _local_midnight_utc(end + timedelta(days=1))
    snap_b = _local_midnight_utc(as_of + timedelta(days=1))
    stmt = select(Case.agency_code, Case.received_at, Case.answered_at, Case.ended_at, Case.answer_due).where(
        Case.received_at < end_b,
        or_(Case.received_at >= start_b, Case.answered_at.is_(None), Case.answered_at >= start_b),
    )
    if agency_code is not None:
        stmt = stmt.where(Case.agency_code == agency_code)
    registry = default_registry()
    rows: dict[str | None, AgencyStats] = {}

    def row(code: str | None) -> AgencyStats:
        if code not in rows:
            name = UNROUTED if code is None else registry.name_of(code, code)
            rows[code] = AgencyStats(code, name)
        return rows[code]

    if agency_code is not None:
        row(agency_code)
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
    return sorted(rows.values(), key=lambda r: (r.agency_code is None, r.agency_code or ""))
