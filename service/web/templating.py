"""The Jinja2 environment of every page and of the standalone theme report: templates, filters, globals.

It needs no request and no FastAPI, so ``triage themes --out x.html`` renders the analyst page's
theme template with it; ``service.web.render`` wraps the same environment for the pages.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import jinja2

from service.web import charts, labels
from triage.cases.calendar import local_tz
from triage.kpi.monitor import num as kpi_num

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def local_dt(value: datetime | None) -> datetime | None:
    """Stored times are UTC (naive on read): shown in Vietnam's time."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(local_tz())


def fmt_datetime(value: datetime | None) -> str:
    v = local_dt(value)
    return "" if v is None else v.strftime("%H:%M %d/%m/%Y")


def fmt_date(value: date | datetime | str | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = local_dt(value) or value
    return value.strftime("%d/%m/%Y")


def fmt_date_long(value: date | str | None) -> str:
    """'Thứ Hai, 16/03/2026': the weekday helps a citizen picture the deadline."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return f"{labels.WEEKDAYS[value.weekday()]}, {value.strftime('%d/%m/%Y')}"


def fmt_pct(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%".replace(".", ",")


def fmt_num(value: float | int | None) -> str:
    """Vietnamese digit grouping: 20.000."""
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{int(value):,}".replace(",", ".")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True)
    env.filters.update(datetime=fmt_datetime, date=fmt_date, date_long=fmt_date_long, pct=fmt_pct, num=fmt_num)
    env.filters["dec"] = kpi_num  # indicator values: up to two decimals (0,67 % GDP)
    env.globals.update(
        svg=charts,  # the one chart module: templates draw their SVG with it (`charts` is a page variable)
        KIND_LABELS=labels.KIND_LABELS,
        SUBMITTER_LABELS=labels.SUBMITTER_LABELS,
        STATE_LABELS=labels.STATE_LABELS,
        ACTION_LABELS=labels.ACTION_LABELS,
        DEADLINE_LABELS=labels.DEADLINE_LABELS,
        ROLE_LABELS=labels.ROLE_LABELS,
    )
    return env


ENV = _environment()
