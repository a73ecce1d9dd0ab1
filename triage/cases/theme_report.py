"""The emerging-topic report of a period: themes of the stored submissions as JSON and as an HTML page.

``report_for_period`` reads the period's submissions (their stored embeddings; missing ones are
encoded when an embedder is given), fits a :class:`triage.nlp.themes.ThemeModel` and returns a plain
JSON-able dict: per theme its keywords, size, weekly trend, agencies involved (``systemic`` when
several), PII-masked examples and the emerging test. ``render_html`` turns that dict into one
self-contained page: inline CSS and SVG charts, no script, nothing fetched (it opens offline).
Both the CLI (``triage themes``) and the service (``GET /api/v1/themes``) call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.cases.calendar import local_tz, to_local_date
from triage.errors import InvalidInput
from triage.nlp.text import mask_pii
from triage.nlp.themes import ThemeModel, week_start
from triage.store.tables import Case, Submission

EXAMPLE_CHARS = 280
MAX_PERIOD_DAYS = 731
EXCLUDED_STATES = ("rejected",)  # violating or out-of-scope content must not shape the themes


@dataclass(frozen=True)
class PeriodSubmission:
    """What the report needs of one submission: the masked text, when, which agency, its vector."""

    submission_id: int
    case_id: int
    received: date  # local date
    text: str  # title and content, personal data masked
    agency_code: str | None
    embedding: np.ndarray | None


def _bounds(since: date, until: date) -> tuple[datetime, datetime]:
    if until < since:
        raise InvalidInput(f"the period ends ({until}) before it starts ({since})")
    if (until - since).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidInput(f"a theme report covers at most {MAX_PERIOD_DAYS} days, got {(until - since).days + 1}")
    start = datetime.combine(since, time(0), tzinfo=local_tz()).astimezone(UTC)
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=local_tz()).astimezone(UTC)
    return start, end


def _period_filter(since: date, until: date) -> list[Any]:
    start, end = _bounds(since, until)
    return [Submission.created_at >= start, Submission.created_at < end, Case.state.not_in(EXCLUDED_STATES)]


def period_version(session: Session, since: date, until: date) -> tuple[int, int, str]:
    """A cheap fingerprint of the period's data (count, last id, last case change): a cache key part."""
    row = session.execute(
        select(func.count(Submission.id), func.max(Submission.id), func.max(Case.updated_at))
        .join(Case, Case.id == Submission.case_id)
        .where(*_period_filter(since, until))
    ).one()
    return int(row[0] or 0), int(row[1] or 0), str(row[2] or "")


def load_period(session: Session, since: date, until: date) -> list[PeriodSubmission]:
    """The submissions received in [since, until] (local dates, both included), oldest first."""
    from triage.store.vectors import from_bytes

    rows = session.execute(
        select(
            Submission.id,
            Submission.case_id,
            Submission.created_at,
            Submission.title,
            Submission.content,
            Submission.embedding,
            Case.agency_code,
        )
        .join(Case, Case.id == Submission.case_id)
        .where(*_period_filter(since, until))
        .order_by(Submission.created_at, Submission.id)
    ).all()
    out = []
    for r in rows:
        text = f"{r.title}. {r.content}" if r.title else r.content
        out.append(
            PeriodSubmission(
                submission_id=r.id,
                case_id=r.case_id,
                received=to_local_date(r.created_at),
                text=mask_pii(text),
                agency_code=r.agency_code,
                embedding=None if r.embedding is None else from_bytes(r.embedding),
            )
        )
    return out


def _agency_name(code: str) -> str:
    from triage.nlp.agencies import default_registry

    return default_registry().name_of(code, code)


def _short(text: str, limit: int = EXAMPLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def build_report(
    items: Sequence[PeriodSubmission],
    since: date,
    until: date,
    *,
    embedder: Any = None,
    window: int = 2,
    min_submissions: int = 30,
    min_size: int = 5,
    min_growth: float = 1.5,
    alpha: float = 0.05,
    random_state: int = 0,
    model: ThemeModel | None = None,
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """The report dict for ``items`` (see the module docstring); themes empty below ``min_submissions``."""
    _bounds(since, until)
    missing = [i for i, it in enumerate(items) if it.embedding is None]
    vectors: list[np.ndarray | None] = [it.embedding for it in items]
    if missing and embedder is not None:
        encoded = embedder.encode([items[i].text for i in missing])
        for i, vec in zip(missing, encoded, strict=True):
            vectors[i] = np.asarray(vec, dtype=np.float32)
    keep = [i for i, v in enumerate(vectors) if v is not None]
    first_week, last_week = week_start(since), week_start(until)
    weeks = [first_week + timedelta(weeks=k) for k in range((last_week - first_week).days // 7 + 1)]
    report: dict[str, Any] = {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "generated_at": (generated_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "submissions": len(items),
        "without_embedding": len(items) - len(keep),
        "weeks": [w.isoformat() for w in weeks],
        "totals_by_week": [0] * len(weeks),
        "window_weeks": window,
        "alpha": alpha,
        "min_size": min_size,
        "min_growth": min_growth,
        "outliers": 0,
        "outlier_share": None,
        "themes": [],
        "emerging": [],
        "note": None,
    }
    for it in items:
        col = (week_start(it.received) - first_week).days // 7
        if 0 <= col < len(weeks):
            report["totals_by_week"][col] += 1
    if len(keep) < min_submissions:
        report["note"] = f"too few submissions with embeddings ({len(keep)} < {min_submissions}) to find themes"
        return report
    texts = [items[i].text for i in keep]
    model = model or ThemeModel(random_state=random_state)
    model.fit(
        texts,
        timestamps=[items[i].received for i in keep],
        embeddings=np.stack([np.asarray(vectors[i], dtype=np.float32) for i in keep]),
        agencies=[items[i].agency_code for i in keep],
    )
    _, counts = model.themes_over_time(until=until, weeks=len(weeks))
    tests: dict[int, Any] = {}
    if len(weeks) > window:
        try:
            tests = {
                e.theme: e
                for e in model.emerging(
                    window=window, until=until, min_size=min_size, min_growth=min_growth, alpha=alpha
                )
            }
        except InvalidInput as exc:  # e.g. nothing in the baseline weeks
            report["note"] = f"no emerging test: {exc}"
    else:
        report["note"] = f"the period spans {len(weeks)} week(s): the emerging test needs more than {window}"
    themes = []
    for theme in model.themes_:
        e = tests.get(theme.id)
        themes.append(
            {
                "id": theme.id,
                "label": theme.label,
                "keywords": theme.keywords,
                "size": theme.size,
                "share": round(theme.size / len(keep), 4),
                "trend": [int(c) for c in counts[theme.id]],
                "agencies": [{"code": c, "name": _agency_name(c), "count": n} for c, n in theme.agencies.items()],
                "systemic": theme.systemic,
                "examples": [
                    {"case_id": items[keep[r]].case_id, "text": _short(texts[r])} for r in theme.representatives
                ],
                "emerging": None
                if e is None
                else {
                    "recent": e.recent,
                    "baseline": e.baseline,
                    "expected": e.expected,
                    "growth": e.growth,
                    "growth_low": e.growth_low,
                    "p_value": round(e.p_value, 6),
                    "q_value": round(e.q_value, 6),
                    "significant": e.significant,
                    "score": e.score,
                },
            }
        )
    report["themes"] = themes
    report["emerging"] = [e.theme for e in tests.values() if e.significant]
    report["emerging"].sort(key=lambda t: -tests[t].score)
    report["outliers"] = int(np.sum(model.labels_ < 0))
    report["outlier_share"] = round(model.outlier_share_, 4)
    report["systemic"] = [t["id"] for t in themes if t["systemic"]]
    return report


def report_for_period(
    session: Session, since: date, until: date, *, embedder: Any = None, **options: Any
) -> dict[str, Any]:
    """Themes and emerging topics of the submissions received in [since, until] (see :func:`build_report`)."""
    return build_report(load_period(session, since, until), since, until, embedder=embedder, **options)


def emerging_only(report: dict[str, Any]) -> dict[str, Any]:
    """The report cut to its significant emerging themes, best first (``GET /api/v1/reports/emerging``)."""
    by_id = {t["id"]: t for t in report["themes"]}
    out = {k: v for k, v in report.items() if k != "themes"}
    out["themes"] = [by_id[i] for i in report["emerging"]]
    out["tested"] = sum(1 for t in report["themes"] if t["emerging"] is not None)
    return out


# ---------------------------------------------------------------------------------------- HTML

_PALETTE = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bc4c00", "#0969da", "#57606a"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1rem;
color:#1f2328;line-height:1.45}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin-top:1.6rem}h3{font-size:1.05rem;margin:.2rem 0}
.muted{color:#57606a}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem}
.card{border:1px solid #d0d7de;border-radius:6px;padding:.8rem}.card.emerging{border-color:#d1242f;border-width:2px}
.badge{display:inline-block;font-size:.75rem;padding:0 .4rem;border-radius:1rem;background:#eaeef2;margin-left:.3rem}
.badge.up{background:#ffebe9;color:#a40e26}.badge.sys{background:#fff8c5;color:#7d4e00}
.kw{display:inline-block;background:#ddf4ff;border-radius:3px;padding:0 .3rem;margin:.1rem;font-size:.85rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #d0d7de;padding:.25rem .4rem;text-align:left}
td.n,th.n{text-align:right}svg{max-width:100%;height:auto}svg text{font-size:11px;fill:#1f2328}
blockquote{margin:.3rem 0;padding:.2rem .6rem;border-left:3px solid #d0d7de;color:#3d444d;font-size:.9rem}
"""


def _bars_svg(title: str, labels: list[str], values: list[int], highlight: set[int]) -> str:
    """Horizontal bars (theme sizes); highlighted rows (emerging) in red."""
    width, row, label_w = 640, 20, 260
    height = row * max(1, len(labels)) + 8
    peak = max([*values, 1])
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 4 + i * row
        w = (width - label_w - 50) * value / peak
        colour = "#d1242f" if i in highlight else "#1f6feb"
        short = label if len(label) <= 42 else label[:41] + "…"
        parts.append(f'<text x="0" y="{y + 13}">{escape(short)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{colour}">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _lines_svg(title: str, weeks: list[str], series: list[tuple[str, list[int]]], window: int) -> str:
    """Weekly counts of a few themes as lines; the recent window shaded."""
    width, height, left, bottom, top = 640, 240, 36, 40, 10
    n = len(weeks)
    peak = max([max(vals) for _, vals in series if vals] + [1])
    step = (width - left - 10) / max(1, n - 1)
    plot_h = height - top - bottom

    def xy(i: int, v: float) -> str:
        return f"{left + i * step:.1f},{top + plot_h - plot_h * v / peak:.1f}"

    full_h = height + 18 * len(series)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {full_h}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    if n > window:
        x0 = left + (n - window - 0.5) * step
        parts.append(
            f'<rect x="{x0:.1f}" y="{top}" width="{width - 10 - x0:.1f}" height="{plot_h}" fill="#fff1e5">'
            f"<title>{window} tuần gần nhất</title></rect>"
        )
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#8c959f"/>')
    parts.append(f'<text x="0" y="{top + 8}">{peak}</text><text x="0" y="{top + plot_h}">0</text>')
    for i, wk in enumerate(weeks):
        if n <= 16 or i % max(1, n // 12) == 0:
            parts.append(f'<text x="{left + i * step - 14:.1f}" y="{top + plot_h + 14}">{escape(wk[5:])}</text>')
    for k, (name, vals) in enumerate(series):
        colour = _PALETTE[k % len(_PALETTE)]
        points = " ".join(xy(i, v) for i, v in enumerate(vals))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        y = height + 18 * k + 4
        parts.append(f'<rect x="{left}" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{left + 18}" y="{y + 10}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _spark_svg(values: list[int], label: str) -> str:
    width, height = 160, 32
    peak = max([*values, 1])
    step = width / max(1, len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (height - 4) * v / peak:.1f}" for i, v in enumerate(values))
    return (
        f'<svg class="spark" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"<title>{escape(label)}</title>"
        f'<polyline points="{points}" fill="none" stroke="#1f6feb" stroke-width="2"/></svg>'
    )


def render_html(report: dict[str, Any], *, max_themes: int = 30) -> str:
    """One self-contained HTML page (inline CSS and SVG, no script, no link out) for ``report``."""
    themes = report["themes"]
    emerging = set(report["emerging"])
    order = [t for t in themes if t["id"] in emerging]
    order.sort(key=lambda t: report["emerging"].index(t["id"]))
    order += [t for t in themes if t["id"] not in emerging]
    shown = order[:max_themes]
    out = [
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Chủ đề nổi bật {escape(report['since'])} – {escape(report['until'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Chủ đề và vấn đề nổi lên: {escape(report['since'])} – {escape(report['until'])}</h1>",
        f'<p class="muted">{report["submissions"]} phản ánh · {len(themes)} chủ đề',
    ]
    if report.get("outlier_share") is not None:
        out.append(f" · {100 * report['outlier_share']:.1f} % không thuộc chủ đề nào")
    out.append(
        f" · {len(emerging)} chủ đề đang nổi lên ({report['window_weeks']} tuần gần nhất so với các tuần trước, "
        f"kiểm định nhị thức, Benjamini-Hochberg q ≤ {report['alpha']}) · lập lúc {escape(report['generated_at'])}</p>"
    )
    if report.get("note"):
        out.append(f'<p class="muted">Ghi chú: {escape(str(report["note"]))}</p>')
    if not themes:
        out.append("<p>Chưa đủ dữ liệu để tìm chủ đề trong kỳ này.</p></body></html>")
        return "".join(out)
    out.append("<h2>Chủ đề đang nổi lên</h2>")
    if emerging:
        out.append(
            '<table><thead><tr><th>Chủ đề</th><th class="n">Gần đây</th><th class="n">Kỳ vọng</th>'
            '<th class="n">Tăng (×)</th><th class="n">Tăng tối thiểu (95 %)</th><th class="n">q</th>'
            "<th>Cơ quan</th></tr></thead><tbody>"
        )
        for t in order[: len(emerging)]:
            e = t["emerging"]
            agencies = ", ".join(a["name"] for a in t["agencies"][:3])
            sys_badge = ' <span class="badge sys">liên ngành</span>' if t["systemic"] else ""
            out.append(
                f"<tr><td>{escape(t['label'])}{sys_badge}"
                f'</td><td class="n">{e["recent"]}</td><td class="n">{e["expected"]:.1f}</td>'
                f'<td class="n">{e["growth"]:.2f}</td><td class="n">{e["growth_low"]:.2f}</td>'
                f'<td class="n">{e["q_value"]:.2g}</td><td>{escape(agencies)}</td></tr>'
            )
        out.append("</tbody></table>")
    else:
        out.append("<p>Không có chủ đề nào tăng có ý nghĩa thống kê trong kỳ này.</p>")
    top = order[: min(6, len(order))]
    out.append("<h2>Số phản ánh mỗi tuần</h2>")
    out.append(
        _lines_svg(
            "Số phản ánh mỗi tuần theo chủ đề",
            report["weeks"],
            [(t["label"], t["trend"]) for t in top],
            report["window_weeks"],
        )
    )
    out.append("<h2>Quy mô các chủ đề</h2>")
    out.append(
        _bars_svg(
            "Số phản ánh của mỗi chủ đề",
            [t["label"] for t in shown],
            [t["size"] for t in shown],
            {i for i, t in enumerate(shown) if t["id"] in emerging},
        )
    )
    out.append('<h2>Chi tiết</h2><div class="grid">')
    for t in shown:
        cls = "card emerging" if t["id"] in emerging else "card"
        badges = ""
        if t["id"] in emerging:
            badges += f'<span class="badge up">đang nổi lên ×{t["emerging"]["growth"]:.1f}</span>'
        if t["systemic"]:
            badges += '<span class="badge sys">liên ngành</span>'
        out.append(f'<section class="{cls}"><h3>{escape(t["label"])}{badges}</h3>')
        out.append(f'<p class="muted">{t["size"]} phản ánh ({100 * t["share"]:.1f} %)</p>')
        out.append("<p>" + "".join(f'<span class="kw">{escape(k)}</span>' for k in t["keywords"]) + "</p>")
        out.append(_spark_svg(t["trend"], f"Số phản ánh mỗi tuần: {t['label']}"))
        if t["agencies"]:
            names = ", ".join(f"{escape(a['name'])} ({a['count']})" for a in t["agencies"][:5])
            out.append(f'<p class="muted">Cơ quan: {names}</p>')
        for ex in t["examples"]:
            out.append(f"<blockquote>{escape(ex['text'])}</blockquote>")
        out.append("</section>")
    out.append("</div></body></html>")
    return "".join(out)
