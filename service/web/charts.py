"""Charts as inline SVG built on the server: no chart library, no script, nothing fetched.

Each chart is ``role="img"`` with a title and a description, and every bar carries its number as
text, so the figures can be read without colour and by a screen reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 640
ROW = 26
LABEL_W = 210
PAD = 8


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
) -> Markup:
    """Horizontal grouped bars: one row per label, one bar per series (``values[series][row]``)."""
    n_series = max(1, len(series))
    bar_h = max(6, (ROW - 6) // n_series)
    top = 24 if len(series) > 1 else 4
    height = top + ROW * max(1, len(labels)) + PAD
    peak = max_value or max([v for vs in values for v in vs if v is not None] + [1.0])
    plot_w = WIDTH - LABEL_W - 60
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'aria-labelledby="{escape(chart_id)}-t" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
    ]
    if len(series) > 1:  # legend
        x = LABEL_W
        for s in series:
            parts.append(f'<rect class="{escape(s.css)}" x="{x}" y="4" width="12" height="12"/>')
            parts.append(f'<text class="legend" x="{x + 16}" y="14">{escape(s.name)}</text>')
            x += 24 + 8 * len(s.name)
    if not labels:
        parts.append(f'<text class="empty" x="{PAD}" y="{top + 16}">Không có số liệu trong kỳ này.</text>')
    for i, label in enumerate(labels):
        y = top + i * ROW
        parts.append(
            f'<text class="axis" x="{LABEL_W - 6}" y="{y + ROW / 2 + 4}" text-anchor="end">'
            f"<title>{escape(label)}</title>{escape(_short(label))}</text>"
        )
        for j, s in enumerate(series):
            value = values[j][i]
            by = y + 3 + j * bar_h
            if value is None:
                parts.append(f'<text class="value" x="{LABEL_W + 4}" y="{by + bar_h - 1}">—</text>')
                continue
            w = 0.0 if peak <= 0 else plot_w * max(0.0, float(value)) / peak
            parts.append(
                f'<rect class="bar {escape(s.css)}" x="{LABEL_W}" y="{by}" width="{w:.1f}" height="{bar_h - 1}">'
                f"<title>{escape(label)} — {escape(s.name)}: {_fmt(value, pct)}</title></rect>"
            )
            parts.append(
                f'<text class="value" x="{LABEL_W + w + 4:.1f}" y="{by + bar_h - 1}">{_fmt(value, pct)}</text>'
            )
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
