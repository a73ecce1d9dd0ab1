"""Early warning: will a series reach its target by the deadline? A trend with a prediction interval.

An ordinary least-squares line through the last ``window`` points (time in years), extended to the
deadline with its prediction interval (Student t, ``level`` two-sided): the target inside the interval
is *at risk*, beyond its favourable end *on track*, beyond the unfavourable end *off track*. Three
points are the minimum; a target already reached counts as on track. ``naive_status`` is the baseline
the benchmark compares with: the last value against the straight path from the baseline to the target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from scipy import stats

Status = Literal["on_track", "at_risk", "off_track", "no_data"]
STATUS_LABELS: dict[str, str] = {
    "on_track": "Đúng tiến độ",
    "at_risk": "Có nguy cơ chậm",
    "off_track": "Chậm tiến độ",
    "no_data": "Chưa đủ dữ liệu",
}
LIGHTS: dict[str, str] = {"on_track": "green", "at_risk": "amber", "off_track": "red", "no_data": "grey"}
MIN_POINTS = 3


@dataclass(frozen=True)
class Forecast:
    status: Status
    predicted: float | None  # value at the deadline on the trend
    low: float | None
    high: float | None
    slope: float | None  # per year
    required_slope: float | None  # per year, from the last point to the target
    points: int


def _good(value: float, target: float, direction: str) -> bool:
    return value >= target if direction == "higher" else value <= target


def forecast(
    times: Sequence[float],
    values: Sequence[float],
    *,
    deadline: float,
    target: float,
    direction: str,
    level: float = 0.8,
    window: int = 8,
) -> Forecast:
    """Status at ``deadline`` (same time unit as ``times``, years) from the trend of the last ``window`` points."""
    pts = sorted(zip(times, values, strict=True))[-window:]
    n = len(pts)
    if n == 0:
        return Forecast("no_data", None, None, None, None, None, 0)
    last_t, last_v = pts[-1]
    left = max(deadline - last_t, 1e-9)
    required = (target - last_v) / left
    if n < MIN_POINTS:
        status: Status = "on_track" if _good(last_v, target, direction) else "no_data"
        return Forecast(status, None, None, None, None, required, n)
    ts = [t for t, _ in pts]
    vs = [v for _, v in pts]
    tbar, vbar = sum(ts) / n, sum(vs) / n
    sxx = sum((t - tbar) ** 2 for t in ts)
    if sxx == 0:
        return Forecast("no_data", None, None, None, None, required, n)
    slope = sum((t - tbar) * (v - vbar) for t, v in zip(ts, vs, strict=True)) / sxx
    icpt = vbar - slope * tbar
    resid = [v - (icpt + slope * t) for t, v in zip(ts, vs, strict=True)]
    s = math.sqrt(sum(r * r for r in resid) / (n - 2)) if n > 2 else 0.0
    pred = icpt + slope * deadline
    q = float(stats.t.ppf(0.5 + level / 2, max(n - 2, 1)))
    half = q * s * math.sqrt(1 + 1 / n + (deadline - tbar) ** 2 / sxx)
    low, high = pred - half, pred + half
    if _good(last_v, target, direction):
        status = "on_track"
    elif direction == "higher":
        status = "on_track" if low >= target else "off_track" if high < target else "at_risk"
    else:
        status = "on_track" if high <= target else "off_track" if low > target else "at_risk"
    return Forecast(status, pred, low, high, slope, required, n)


def naive_status(
    baseline_t: float,
    baseline_v: float,
    last_t: float,
    last_v: float,
    *,
    deadline: float,
    target: float,
    direction: str,
) -> Status:
    """Baseline rule: on track when the last value is at or past the straight path from baseline to target."""
    span = deadline - baseline_t
    if span <= 0:
        return "on_track" if _good(last_v, target, direction) else "off_track"
    path = baseline_v + (target - baseline_v) * min(max((last_t - baseline_t) / span, 0.0), 1.0)
    return "on_track" if _good(last_v, path, direction) else "off_track"


def completion(latest: float | None, baseline: float, target: float) -> float | None:
    """Share of the way from baseline to target already covered, 0-100 (direction follows from the numbers)."""
    if latest is None:
        return None
    if target == baseline:
        return 100.0
    return round(max(0.0, min(100.0, 100.0 * (latest - baseline) / (target - baseline))), 1)
