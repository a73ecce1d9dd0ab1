"""What the dashboard shows: national series, latest vs target, forecasts, bottlenecks, risk in words.

Agencies' figures become one national value per period by the indicator's aggregation rule:
``sum`` (a cumulative count carries an agency's last figure forward, so a missing report does not
look like a fall), ``weighted_mean`` (weights from ``weight_by``, the same agency and period),
``latest`` (the lead agency's figure, else a contributor's) and ``all_done`` (share of agencies done).
Only figures on file count: submitted, verified or locked (a returned figure is being fixed).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from statistics import median
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.kpi.forecast import LIGHTS, STATUS_LABELS, Forecast, completion, forecast
from triage.kpi.periods import Period
from triage.kpi.registry import Operational, Registry, Strategic
from triage.kpi.workflow import ReportState
from triage.nlp.agencies import default_registry
from triage.store.kpi_tables import KpiReport

COUNTED = (ReportState.SUBMITTED.value, ReportState.VERIFIED.value, ReportState.LOCKED.value)
Figures = dict[str, dict[str, dict[Period, float]]]  # indicator -> agency -> period -> value


def num(x: float | None, digits: int = 2) -> str:
    """Vietnamese number format: 1.234,5 (thousands dot, decimal comma)."""
    if x is None:
        return "—"
    text = f"{x:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{x:,.0f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def agency_name(code: str) -> str:
    try:
        return default_registry().get(code).name
    except Exception:  # an agency retired from the registry still shows by its code
        return code


def load_figures(session: Session) -> Figures:
    out: Figures = defaultdict(lambda: defaultdict(dict))
    rows = session.execute(
        select(KpiReport.indicator, KpiReport.agency_code, KpiReport.period, KpiReport.value).where(
            KpiReport.state.in_(COUNTED), KpiReport.value.is_not(None)
        )
    )
    for r in rows:
        out[r.indicator][r.agency_code][Period.parse(r.period)] = float(r.value)
    return out


def national(op: Operational, figures: Figures) -> dict[Period, float]:
    """One value per period with at least one figure, by ``op.aggregation``."""
    mine = figures.get(op.code, {})
    periods = sorted({p for series in mine.values() for p in series})
    out: dict[Period, float] = {}
    for p in periods:
        if op.aggregation == "sum":
            total = 0.0
            for series in mine.values():
                if p in series:
                    total += series[p]
                elif op.cumulative:
                    earlier = [q for q in series if q < p]
                    total += series[max(earlier)] if earlier else 0.0
            out[p] = total
        elif op.aggregation == "weighted_mean":
            weights = figures.get(op.weight_by or "", {})
            num_, den = 0.0, 0.0
            for agency, series in mine.items():
                if p in series:
                    w = weights.get(agency, {}).get(p, 1.0)
                    num_, den = num_ + series[p] * w, den + w
            if den > 0:
                out[p] = num_ / den
        elif op.aggregation == "latest":
            for agency in op.agencies:
                if p in mine.get(agency, {}):
                    out[p] = mine[agency][p]
                    break
        else:  # all_done: share of agencies whose latest figure so far is 1
            done = 0
            for agency in op.agencies:
                series = {q: v for q, v in mine.get(agency, {}).items() if q <= p}
                done += bool(series) and series[max(series)] >= 1.0
            out[p] = 100.0 * done / len(op.agencies)
    return out


def _years(p: Period) -> float:
    """Time in years at the end of the period (what a deadline is compared with)."""
    d = p.last_day()
    return d.year + (d.timetuple().tm_yday / 366.0)


def _deadline_years(d: date) -> float:
    return d.year + d.timetuple().tm_yday / 366.0


@dataclass
class IndicatorView:
    strategic: Strategic
    series: list[tuple[Period, float]]
    latest: float | None
    latest_period: Period | None
    completion: float | None
    forecast: Forecast
    stale: bool
    problems: dict[str, int] = field(default_factory=dict)  # missing / overdue / returned reports
    bottlenecks: list[dict[str, Any]] = field(default_factory=list)
    agencies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.forecast.status

    @property
    def light(self) -> str:
        return LIGHTS[self.forecast.status]

    def risk_text(self) -> str:
        """The risk in Vietnamese words: where the trend leads, what is needed, what is missing."""
        s, f = self.strategic, self.forecast
        deadline = s.deadline.strftime("%d/%m/%Y")
        parts: list[str] = []
        if f.predicted is not None:
            parts.append(
                f"Theo xu hướng hiện tại, đến {deadline} đạt khoảng {num(f.predicted)} {s.unit} "
                f"(khoảng dự báo {num(f.low)}–{num(f.high)}), mục tiêu {num(s.target)} {s.unit}: "
                f"{STATUS_LABELS[f.status].lower()}."
            )
            if f.slope is not None and f.required_slope is not None:
                parts.append(f"Tốc độ hiện nay {num(f.slope)}/năm, cần {num(f.required_slope)}/năm để kịp mục tiêu.")
        elif self.latest is not None and f.status == "on_track":
            parts.append(f"Đã đạt mục tiêu {num(s.target)} {s.unit}.")
        else:
            parts.append("Chưa đủ số liệu (cần ít nhất 3 kỳ) để dự báo.")
        if self.stale and self.latest_period is not None:
            parts.append(f"Số liệu mới nhất là {self.latest_period.label}: đã cũ.")
        gaps = [f"{n} báo cáo {w}" for w, n in self.problems.items() if n]
        if gaps:
            parts.append("Còn " + ", ".join(gaps) + ".")
        if self.bottlenecks:
            parts.append(f"Điểm nghẽn chính: {self.bottlenecks[0]['name']} ({self.bottlenecks[0]['why']}).")
        return " ".join(parts)


def _growth(series: dict[Period, float]) -> float | None:
    """Relative change per year of a series (slope over its mean level); None with under 2 points."""
    pts = sorted(series.items())
    if len(pts) < 2:
        return None
    ts = [_years(p) for p, _ in pts]
    vs = [v for _, v in pts]
    tbar, vbar = sum(ts) / len(ts), sum(vs) / len(vs)
    sxx = sum((t - tbar) ** 2 for t in ts)
    if sxx == 0 or vbar == 0:
        return None
    return sum((t - tbar) * (v - vbar) for t, v in zip(ts, vs, strict=True)) / sxx / abs(vbar)


def _report_problems(session: Session, codes: list[str], today: date) -> dict[tuple[str, str], dict[str, int]]:
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"thiếu": 0, "bị trả lại": 0, "nộp muộn": 0})
    rows = session.execute(
        select(
            KpiReport.indicator,
            KpiReport.agency_code,
            KpiReport.state,
            KpiReport.due_date,
            KpiReport.first_submitted_at,
        ).where(KpiReport.indicator.in_(codes))
    )
    for r in rows:
        slot = out[(r.indicator, r.agency_code)]
        if r.state == ReportState.DUE.value and r.due_date < today:
            slot["thiếu"] += 1
        elif r.state == ReportState.RETURNED.value:
            slot["bị trả lại"] += 1
        if r.first_submitted_at is not None and r.first_submitted_at.date() > r.due_date:
            slot["nộp muộn"] += 1
    return out


def _bottlenecks(
    s: Strategic,
    children: list[Operational],
    figures: Figures,
    problems: dict[tuple[str, str], dict[str, int]],
    required_growth: float | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Operational indicators and agencies holding ``s`` back, ranked by a score explained in words.

    An indicator lags when its national growth per year is below what the strategic goal needs (its own
    sign follows the direction); an agency lags when its growth is below the median of its peers on the
    same indicator. Missing and returned reports add to both (no figure is the worst kind of lag).
    """
    sign = 1.0 if s.direction == "higher" else -1.0
    ops: list[dict[str, Any]] = []
    agencies: dict[str, dict[str, Any]] = {}
    for op in children:
        nat = national(op, figures)
        g = _growth(nat)
        miss = sum(problems.get((op.code, a), {}).get("thiếu", 0) for a in op.agencies)
        ret = sum(problems.get((op.code, a), {}).get("bị trả lại", 0) for a in op.agencies)
        need = required_growth if required_growth is not None else 0.0
        lag = max(0.0, sign * (need - g)) if g is not None else 0.0
        lag = lag if lag > 0.005 else 0.0
        score = round(100 * lag + 5 * miss + 3 * ret, 1)
        why = []
        if g is not None and lag > 0:
            why.append(f"tăng {num(100 * g, 1)}%/năm, cần {num(100 * need, 1)}%/năm")
        if miss:
            why.append(f"{miss} báo cáo thiếu")
        if ret:
            why.append(f"{ret} báo cáo bị trả lại")
        if score > 0:
            ops.append({"code": op.code, "name": op.name, "score": score, "why": "; ".join(why)})
        growths = {a: _growth(series) for a, series in figures.get(op.code, {}).items()}
        known = [v for v in growths.values() if v is not None]
        mid = median(known) if known else None
        for a in op.agencies:
            slot = agencies.setdefault(a, {"code": a, "name": agency_name(a), "score": 0.0, "why": []})
            ga = growths.get(a)
            if ga is not None and mid is not None and sign * (mid - ga) > 0.005 and len(known) > 2:
                slot["score"] += 100 * sign * (mid - ga)
                slot["why"].append(f"{op.name}: tăng {num(100 * ga, 1)}%/năm, trung vị {num(100 * mid, 1)}%/năm")
            p = problems.get((op.code, a), {})
            if p.get("thiếu") or p.get("bị trả lại"):
                slot["score"] += 5 * p.get("thiếu", 0) + 3 * p.get("bị trả lại", 0)
                slot["why"].append(f"{op.name}: {p.get('thiếu', 0)} thiếu, {p.get('bị trả lại', 0)} bị trả lại")
    ranked_agencies = [
        {**a, "score": round(a["score"], 1), "why": "; ".join(a["why"])}
        for a in agencies.values()
        if round(a["score"], 1) > 0
    ]
    ops.sort(key=lambda x: -x["score"])
    ranked_agencies.sort(key=lambda x: -x["score"])
    return ops, ranked_agencies


def indicator_view(
    session: Session, registry: Registry, s: Strategic, today: date, figures: Figures | None = None
) -> IndicatorView:
    """Everything the dashboard says about one strategic indicator."""
    figures = load_figures(session) if figures is None else figures
    measure = registry.operational_by_code(s.measure)
    nat = national(measure, figures)
    points = sorted(nat.items())
    base = Period.parse(s.baseline.period)
    series = list(points)
    if base.frequency == measure.period and base not in nat:
        series = sorted([(base, s.baseline.value), *points])
    fc = forecast(
        [_years(p) for p, _ in series],
        [v for _, v in series],
        deadline=_deadline_years(s.deadline),
        target=s.target,
        direction=s.direction,
    )
    latest_p, latest_v = points[-1] if points else (None, None)
    current = Period.containing(today, measure.period)
    stale = latest_p is not None and latest_p.index < current.index - 2
    children = registry.children(s.code)
    probs = _report_problems(session, [o.code for o in children], today)
    totals = {"thiếu": 0, "bị trả lại": 0}
    for p in probs.values():
        for k in totals:
            totals[k] += p.get(k, 0)
    required_growth = None
    if fc.required_slope is not None and latest_v:
        required_growth = fc.required_slope / abs(latest_v)
    ops, agencies = _bottlenecks(s, children, figures, probs, required_growth)
    return IndicatorView(
        strategic=s,
        series=series,
        latest=latest_v,
        latest_period=latest_p,
        completion=completion(latest_v, s.baseline.value, s.target),
        forecast=fc,
        stale=stale,
        problems=totals,
        bottlenecks=ops,
        agencies=agencies,
    )


def dashboard(session: Session, registry: Registry, today: date) -> list[IndicatorView]:
    """One view per strategic indicator, in registry order."""
    figures = load_figures(session)
    return [indicator_view(session, registry, s, today, figures) for s in registry.strategic]
