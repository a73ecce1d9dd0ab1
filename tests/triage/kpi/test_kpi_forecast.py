"""Periods, the report state table, and the forecast on series with known outcomes."""

from __future__ import annotations

import random
from datetime import date

import pytest

from triage.errors import InvalidInput, InvalidTransition
from triage.kpi.forecast import completion, forecast, naive_status
from triage.kpi.periods import Period
from triage.kpi.workflow import TRANSITIONS, ReportAction, ReportState, allowed_actions, apply, report_deadline


def test_periods_parse_print_and_span() -> None:
    q = Period.parse("2025-Q3")
    assert (str(q), q.label, q.first_day(), q.last_day()) == (
        "2025-Q3",
        "Quý 3/2025",
        date(2025, 7, 1),
        date(2025, 9, 30),
    )
    assert str(q.shift(2)) == "2026-Q1" and str(Period.parse("2025-M12").shift(1)) == "2026-M01"
    assert Period.parse("2025").last_day() == date(2025, 12, 31)
    assert Period.containing(date(2025, 11, 3), "quarter") == Period.parse("2025-Q4")
    with pytest.raises(InvalidInput):
        Period.parse("2025-Q5")


def test_report_deadline_counts_vietnamese_working_days() -> None:
    # Q4 2025 ends on Wed 31/12; 1/1 is a holiday, then 10 working days -> Thu 15/01/2026.
    assert report_deadline(Period.parse("2025-Q4"), 10) == date(2026, 1, 15)


def test_every_transition_and_every_refusal() -> None:
    for (state, action), nxt in TRANSITIONS.items():
        assert apply(state, action, reason="lý do") is nxt
    for state in ReportState:
        for action in ReportAction:
            if (state, action) not in TRANSITIONS:
                with pytest.raises(InvalidTransition, match="allowed actions"):
                    apply(state, action, reason="x")
    with pytest.raises(InvalidInput, match="requires a reason"):
        apply(ReportState.SUBMITTED, ReportAction.RETURN)
    with pytest.raises(InvalidInput, match="requires a reason"):
        apply(ReportState.LOCKED, ReportAction.CORRECT, reason=" ")
    assert allowed_actions("locked") == [ReportAction.CORRECT]


def _series(slope: float, noise: float, seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    ts = [2025 + i / 4 for i in range(8)]
    return ts, [10 + slope * (t - 2025) + rng.gauss(0, noise) for t in ts]


def test_forecast_says_on_track_off_track_and_at_risk() -> None:
    on = forecast(*_series(4.0, 0.1, 1), deadline=2030, target=25, direction="higher")
    off = forecast(*_series(1.0, 0.1, 2), deadline=2030, target=25, direction="higher")
    near = forecast(*_series(3.0, 1.5, 3), deadline=2030, target=25, direction="higher")
    assert (on.status, off.status, near.status) == ("on_track", "off_track", "at_risk")
    assert off.low is not None and off.high is not None and off.low < off.predicted < off.high  # type: ignore[operator]
    assert off.required_slope is not None and off.slope is not None and off.required_slope > off.slope
    # lower is better: a rank falling fast enough
    falling = forecast([2024, 2025, 2026], [71, 66, 61], deadline=2030, target=50, direction="lower")
    assert falling.status == "on_track"
    assert forecast([2025], [1.0], deadline=2030, target=2, direction="higher").status == "no_data"


def test_naive_baseline_and_completion() -> None:
    assert naive_status(2024, 0, 2027, 60, deadline=2030, target=100, direction="higher") == "on_track"
    assert naive_status(2024, 0, 2027, 40, deadline=2030, target=100, direction="higher") == "off_track"
    assert completion(1.0, 0.5, 2.0) == pytest.approx(33.3)
    assert completion(60, 71, 50) == pytest.approx(52.4)  # a rank: lower is better
    assert completion(None, 0, 1) is None
