"""Charts as inline SVG built on the server: no chart library, no script, nothing fetched.

Each chart is ``role="img"`` with a title and a description, and every bar carries its number as
text, so the figures can be read without colour and by a screen reader.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from markupsafe import Markup

WIDTH = 320  # viewBox units ≈ CSS px in a desktop column; the SVG scales down on a phone
LABEL_H = 16
BAR_H = 11
GAP = 10
VALUE_W = 40
HIGHLIGHT_CSS = "s-overdue"  # the alert colour of app.css
PALETTE = ("#1d4ed8", "#b91c1c", "#15803d", "#d97706", "#7c3aed", "#0f766e")  # lines, told apart by the legend


@dataclass(frozen=True)
class Series:
    name: str
    css: str  # a class in app.css (fill colour), e.g. "s-received"


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: float, pct: bool) -> str:
    if pct:
        return f"{value:.0f}%".replace(".", ",")
    return f"{int(value):,}".replace(",", ".")


def bar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    values: Sequence[Sequence[float | None]],
    *,
    max_value: float | None = None,
    pct: bool = False,
    highlight: Collection[int] = (),
) -> Markup:
    """Horizontal grouped bars, each group under its label (``values[series][row]``).

    Rows in ``highlight`` (e.g. emerging themes) are drawn in the alert colour, and their label says so.
    """
    legend = 22 if len(series) > 1 else 0
    group = LABEL_H + BAR_H * len(series) + GAP
    height = legend + group * max(1, len(labels)) + 4
    peak = max_value or max([v for vs in values for v in vs if v is not None] + [1.0])
    plot_w = WIDTH - VALUE_W
    cid = escape(chart_id)
    parts = [
        f'<svg class="chart" id="{cid}" role="img" viewBox="0 0 {WIDTH} {height}" aria-labelledby="{cid}-t">',
        f'<title id="{cid}-t">{escape(title)}</title>',
    ]
    x = 0
    for s in series if len(series) > 1 else ():  # legend
        parts.append(f'<rect class="{escape(s.css)}" x="{x}" y="3" width="12" height="12"/>')
        parts.append(f'<text class="legend" x="{x + 16}" y="13">{escape(s.name)}</text>')
        x += 28 + 7 * len(s.name)
    if not labels:
        parts.append(f'<text class="empty" x="0" y="{legend + 14}">Không có số liệu trong kỳ này.</text>')
    for i, label in enumerate(labels):
        y = legend + i * group
        parts.append(f'<text class="axis" x="0" y="{y + 12}">{escape(_short(label, 60))}</text>')
        for j, s in enumerate(series):
            css = HIGHLIGHT_CSS if i in highlight else s.css
            value = values[j][i]
            by = y + LABEL_H + j * BAR_H
            if value is None:
                parts.append(f'<text class="value" x="0" y="{by + BAR_H - 2}">—</text>')
                continue
            w = 0.0 if peak <= 0 else plot_w * max(0.0, float(value)) / peak
            parts.append(
                f'<rect class="bar {escape(css)}" x="0" y="{by}" width="{w:.1f}" height="{BAR_H - 2}">'
                f"<title>{escape(label)} — {escape(s.name)}: {_fmt(value, pct)}</title></rect>"
            )
            parts.append(f'<text class="value" x="{w + 4:.1f}" y="{by + BAR_H - 2}">{_fmt(value, pct)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(counts: Sequence[int | float], *, label: str, width: int = 120, height: int = 28) -> Markup:
    """A small trend line (e.g. a theme's submissions per week)."""
    if not counts:
        return Markup("")
    peak = max(max(counts), 1)
    step = width / max(1, len(counts) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (height - 4) * c / peak:.1f}" for i, c in enumerate(counts))
    return Markup(
        f'<svg class="spark" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f'<title>{escape(label)}</title><polyline points="{points}"/></svg>'
    )


def line_chart(
    chart_id: str,
    title: str,
    weeks: Sequence[date],
    names: Sequence[str],
    values: Sequence[Sequence[int]],
    *,
    shade_last: int = 0,
) -> Markup:
    """Weekly counts of a few series (``values[series][week]``) as lines, a legend under the plot.

    The last ``shade_last`` weeks (the window an emerging test compares) are shaded.
    """
    series = list(zip(names, values, strict=True))
    height, left, bottom, top = 200, 30, 30, 8
    n = len(weeks)
    peak = max([max(vals) for _, vals in series if vals] + [1])
    step = (WIDTH - left - 6) / max(1, n - 1)
    plot_h = height - top - bottom
    cid = escape(chart_id)
    full_h = height + 18 * len(series)
    parts = [
        f'<svg class="chart" id="{cid}" role="img" viewBox="0 0 {WIDTH} {full_h}" aria-labelledby="{cid}-t">',
        f'<title id="{cid}-t">{escape(title)}</title>',
    ]
    if 0 < shade_last < n:
        x0 = left + (n - shade_last - 0.5) * step
        parts.append(
            f'<rect x="{x0:.1f}" y="{top}" width="{WIDTH - 6 - x0:.1f}" height="{plot_h}" fill="#fff1e5">'
            f"<title>{shade_last} tuần gần nhất</title></rect>"
        )
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - 6}" y2="{top + plot_h}" stroke="#8c959f"/>')
    parts.append(f'<text class="value" x="0" y="{top + 8}">{peak}</text>')
    parts.append(f'<text class="value" x="0" y="{top + plot_h}">0</text>')
    every = 1 if n <= 8 else max(1, n // 6)
    for i, week in enumerate(weeks):
        if i % every == 0:
            x = left + i * step - 12
            parts.append(f'<text class="value" x="{x:.1f}" y="{top + plot_h + 14}">{week:%d/%m}</text>')
    for k, (name, vals) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        points = " ".join(f"{left + i * step:.1f},{top + plot_h - plot_h * v / peak:.1f}" for i, v in enumerate(vals))
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{escape(name)}: {', '.join(str(v) for v in vals)}</title></polyline>"
        )
        y = height + 18 * k + 2
        parts.append(f'<rect x="{left}" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text class="legend" x="{left + 18}" y="{y + 10}">{escape(_short(name, 45))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _dec(value: float) -> str:
    """Up to two decimals, Vietnamese style (1.234,56)."""
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def trajectory_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    target: float,
    target_label: str,
    forecast: tuple[str, float, float, float] | None = None,
) -> Markup:
    """An indicator's reported values per period as a line, its target as a dashed line and, when given, the
    forecast at the deadline (label, predicted, low, high) as a point with its interval at the right edge."""
    height, left, bottom, top = 190, 44, 30, 10
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    extra = [target] + ([forecast[1], forecast[2], forecast[3]] if forecast else [])
    known = [v for _, v in pts] + extra
    lo, hi = min(known), max(known)
    if hi == lo:
        hi, lo = hi + 1, lo - 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad
    n = len(labels) + (1 if forecast else 0)
    step = (WIDTH - left - 16) / max(1, n - 1)
    plot_h = height - top - bottom

    def y(v: float) -> float:
        return top + plot_h - plot_h * (v - lo) / (hi - lo)

    cid = escape(chart_id)
    parts = [
        f'<svg class="chart" id="{cid}" role="img" viewBox="0 0 {WIDTH} {height + 20}" aria-labelledby="{cid}-t">',
        f'<title id="{cid}-t">{escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - 6}" y2="{top + plot_h}" stroke="#8c959f"/>',
        f'<text class="value" x="0" y="{top + 8}">{escape(_dec(hi))}</text>',
        f'<text class="value" x="0" y="{top + plot_h}">{escape(_dec(lo))}</text>',
        f'<line x1="{left}" y1="{y(target):.1f}" x2="{WIDTH - 6}" y2="{y(target):.1f}" stroke="#cf222e" '
        f'stroke-dasharray="6 4"><title>{escape(target_label)}</title></line>',
        f'<text class="legend" x="{WIDTH - 150}" y="{y(target) - 4:.1f}">{escape(_short(target_label, 28))}</text>',
    ]
    every = 1 if n <= 5 else -(-n // 5)  # at most about five labels: they must not overlap on a phone
    for i, label in enumerate([*labels, *([forecast[0]] if forecast else [])]):
        if i % every == 0 or i == n - 1:
            parts.append(
                f'<text class="value" x="{left + i * step - 14:.1f}" y="{top + plot_h + 16}">{escape(label)}</text>'
            )
    if pts:
        line = " ".join(f"{left + i * step:.1f},{y(v):.1f}" for i, v in pts)
        shown = ", ".join(f"{labels[i]}: {_dec(v)}" for i, v in pts)
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{PALETTE[0]}" stroke-width="2">'
            f"<title>{escape(shown)}</title></polyline>"
        )
    if forecast:
        x = left + (n - 1) * step
        parts.append(
            f'<line x1="{x:.1f}" y1="{y(forecast[3]):.1f}" x2="{x:.1f}" y2="{y(forecast[2]):.1f}" stroke="#6e7781" '
            f'stroke-width="6" stroke-opacity="0.4"/>'
            f'<circle cx="{x:.1f}" cy="{y(forecast[1]):.1f}" r="4" fill="#6e7781">'
            f"<title>Dự báo {escape(forecast[0])}: {escape(_dec(forecast[1]))} "
            f"({escape(_dec(forecast[2]))}–{escape(_dec(forecast[3]))})</title></circle>"
        )
        if pts:
            i, v = pts[-1]
            parts.append(
                f'<line x1="{left + i * step:.1f}" y1="{y(v):.1f}" x2="{x:.1f}" y2="{y(forecast[1]):.1f}" '
                'stroke="#6e7781" stroke-dasharray="3 3"/>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
