"""Data quality as DHIS2 does it: validation rules, outliers against an agency's own history, reporting rates.

* Validation rules come from the registry (left side, operator, right side, importance); they are run
  when a figure is entered and on demand, over one agency's figures. A violation is recorded on the
  report for the coordinator; it does not refuse the figure (the agency may be right, the rule wrong).
* Outliers: robust z-score of the new value against the agency's earlier values of the indicator
  (median and MAD, so one earlier outlier does not hide the next); for a cumulative count, against
  its earlier increments. Flagged, never refused.
* Reporting rates per agency (and period): complete, on time, late, missing, from the reports' dates.
"""

from __future__ import annotations

import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from statistics import median
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.cases.calendar import to_local_date
from triage.kpi.periods import Period
from triage.kpi.registry import Registry, Rule, Side
from triage.store.kpi_tables import KpiReport

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9),
    "!=": lambda a, b: not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9),
}
REPORTED = ("submitted", "verified", "locked", "returned")  # a value is on file (returned: to be fixed)
MIN_HISTORY = 4  # earlier values needed before a value can be called an outlier


@dataclass(frozen=True)
class Violation:
    rule: str
    name: str
    importance: str
    period: str
    left: float
    operator: str
    right: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "name": self.name,
            "importance": self.importance,
            "period": self.period,
            "left": self.left,
            "operator": self.operator,
            "right": self.right,
        }


def _values(session: Session, agency: str, indicators: Iterable[str]) -> dict[tuple[str, str], float]:
    rows = session.execute(
        select(KpiReport.indicator, KpiReport.period, KpiReport.value).where(
            KpiReport.agency_code == agency,
            KpiReport.indicator.in_(list(indicators)),
            KpiReport.value.is_not(None),
            KpiReport.state.in_(REPORTED),
        )
    )
    return {(r.indicator, r.period): float(r.value) for r in rows}


def _side(side: Side, period: Period, values: dict[tuple[str, str], float]) -> float | None:
    if side.constant is not None:
        return side.constant * side.factor
    got = values.get((side.indicator or "", str(period.shift(side.period_offset))))
    return None if got is None else got * side.factor


def check_rule(rule: Rule, period: Period, values: dict[tuple[str, str], float]) -> Violation | None:
    """The violation of ``rule`` at ``period``, or None when it holds or a side has no value yet."""
    left, right = _side(rule.left, period, values), _side(rule.right, period, values)
    if left is None or right is None or _OPS[rule.operator](left, right):
        return None
    return Violation(rule.code, rule.name, rule.importance, str(period), left, rule.operator, right)


def validate(session: Session, registry: Registry, agency: str, indicator: str, period: str) -> list[Violation]:
    """Rules touching ``indicator`` checked wherever this figure takes part (its period, and the period
    after it for a rule comparing with the previous period)."""
    rules = registry.rules_for(indicator)
    if not rules:
        return []
    needed = {s.indicator for r in rules for s in (r.left, r.right) if s.indicator}
    values = _values(session, agency, needed)
    here = Period.parse(period)
    found: list[Violation] = []
    for rule in rules:
        anchors = {here.shift(-s.period_offset) for s in (rule.left, rule.right) if s.indicator == indicator}
        for anchor in sorted(anchors):
            v = check_rule(rule, anchor, values)
            if v is not None:
                found.append(v)
    return found


def validate_all(session: Session, registry: Registry, agency: str | None = None) -> list[tuple[str, Violation]]:
    """Every rule over every agency's figures (on demand): (agency, violation) pairs."""
    agencies = [agency] if agency else sorted({o for op in registry.operational for o in op.agencies})
    out: list[tuple[str, Violation]] = []
    for code in agencies:
        needed = {s.indicator for r in registry.validation_rules for s in (r.left, r.right) if s.indicator}
        values = _values(session, code, needed)
        periods = sorted({Period.parse(p) for (_, p) in values})
        for rule in registry.validation_rules:
            for p in periods:
                v = check_rule(rule, p, values)
                if v is not None:
                    out.append((code, v))
    return out


def robust_z(value: float, history: list[float]) -> float | None:
    """0.6745 (x - median) / MAD of ``history``; None with too little history. A flat history makes any
    change infinite (a constant series that suddenly moves is exactly what a coordinator should see)."""
    if len(history) < MIN_HISTORY:
        return None
    med = median(history)
    mad = median(abs(h - med) for h in history)
    if mad == 0:
        spread = sum(abs(h - med) for h in history) / len(history)
        if spread == 0:
            return 0.0 if math.isclose(value, med) else math.copysign(math.inf, value - med)
        return (value - med) / (1.2533 * spread)
    return 0.6745 * (value - med) / mad


def outlier(
    session: Session, registry: Registry, agency: str, indicator: str, period: str, value: float, threshold: float
) -> dict[str, Any] | None:
    """A flag when ``value`` is far from the agency's own earlier values (increments for a cumulative count)."""
    op = registry.operational_by_code(indicator)
    here = Period.parse(period)
    rows = session.execute(
        select(KpiReport.period, KpiReport.value).where(
            KpiReport.agency_code == agency,
            KpiReport.indicator == indicator,
            KpiReport.value.is_not(None),
            KpiReport.state.in_(REPORTED),
        )
    )
    earlier = sorted((Period.parse(r.period), float(r.value)) for r in rows if Period.parse(r.period) < here)
    series = [v for _, v in earlier]
    x = value
    if op.cumulative:
        if not series:
            return None
        x = value - series[-1]
        series = [b - a for a, b in pairwise(series)]
    z = robust_z(x, series)
    if z is None or abs(z) <= threshold:
        return None
    ref = median(series)
    return {
        "z": None if math.isinf(z) else round(z, 2),
        "median": ref,
        "value": x,
        "threshold": threshold,
        "increments": op.cumulative,
    }


@dataclass
class Rates:
    """Reporting counts of one agency (or one agency and period)."""

    expected: int = 0
    complete: int = 0
    on_time: int = 0
    late: int = 0
    missing: int = 0
    pending: int = 0  # not yet due and not yet sent

    @property
    def completeness(self) -> float:
        return 100.0 * self.complete / self.expected if self.expected else 0.0

    @property
    def timeliness(self) -> float:
        return 100.0 * self.on_time / self.expected if self.expected else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "complete": self.complete,
            "on_time": self.on_time,
            "late": self.late,
            "missing": self.missing,
            "pending": self.pending,
            "completeness": round(self.completeness, 1),
            "timeliness": round(self.timeliness, 1),
        }


def reporting_rates(session: Session, today: date, *, by_period: bool = False) -> dict[tuple[str, str], Rates]:
    """Counts per (agency, period or '*'): a report past its deadline is expected; sent on or before it is on
    time, after it late, not at all missing; one not yet due counts only as pending."""
    out: dict[tuple[str, str], Rates] = defaultdict(Rates)
    rows = session.execute(
        select(KpiReport.agency_code, KpiReport.period, KpiReport.due_date, KpiReport.first_submitted_at)
    )
    for r in rows:
        rates = out[(r.agency_code, r.period if by_period else "*")]
        sent = r.first_submitted_at
        if r.due_date >= today and sent is None:
            rates.pending += 1
            continue
        rates.expected += 1
        if sent is None:
            rates.missing += 1
            continue
        rates.complete += 1
        if to_local_date(sent) <= r.due_date:
            rates.on_time += 1
        else:
            rates.late += 1
    return dict(out)
