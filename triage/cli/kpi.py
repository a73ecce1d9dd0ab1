"""`triage kpi load|due|remind|export|demo`: the Resolution-57 monitoring from the command line."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from triage.cases.calendar import default_calendar, to_local_date
from triage.cli._common import console, fail, open_database, write_json
from triage.config import get_settings
from triage.errors import TriageError

kpi_app = typer.Typer(help="Resolution-57 monitoring: indicators, periodic reports, dashboard.", no_args_is_help=True)


def _today(text: str | None) -> date:
    from triage.store.tables import utcnow

    try:
        return date.fromisoformat(text) if text else to_local_date(utcnow())
    except ValueError:
        fail(TriageError(f"--today must be YYYY-MM-DD, got {text!r}"))


TodayOpt = Annotated[str | None, typer.Option(help="Date to work as of (YYYY-MM-DD); default: today in Vietnam.")]


@kpi_app.command("load")
def load(
    path: Annotated[
        Path | None, typer.Argument(help="Registry file (default: TRIAGE_KPI_REGISTRY_PATH or the packaged one).")
    ] = None,
    today: TodayOpt = None,
) -> None:
    """Check the indicator registry and make the reports of every closed period due."""
    from triage.kpi.registry import default_kpi_registry, load_registry
    from triage.kpi.reports import make_due

    try:
        reg = load_registry(path) if path else default_kpi_registry()
    except TriageError as exc:
        fail(exc)
    console.print(
        f"{reg.programme.code}: {len(reg.groups)} groups, {len(reg.strategic)} strategic and "
        f"{len(reg.operational)} operational indicators, {len(reg.validation_rules)} validation rules"
    )
    db = open_database()
    try:
        n = db.transaction(lambda s: make_due(s, reg, _today(today), default_calendar()))
    finally:
        db.dispose()
    console.print(f"{n} report(s) made due")


@kpi_app.command("due")
def due(today: TodayOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Reports past their deadline without a figure (or returned and not yet fixed), per agency."""
    from triage.kpi.reports import overdue

    day = _today(today)
    db = open_database()
    try:
        with db.read() as s:
            rows = [(r.id, r.agency_code, r.indicator, r.period, r.state, r.due_date) for r in overdue(s, day)]
    finally:
        db.dispose()
    if as_json:
        write_json([dict(zip(("id", "agency", "indicator", "period", "state", "due"), r, strict=True)) for r in rows])
        return
    for rid, agency, ind, period, state, due_day in rows:
        console.print(f"#{rid} {agency} {ind} {period} {state} (hạn {due_day:%d/%m/%Y})")
    console.print(f"{len(rows)} overdue report(s)")


@kpi_app.command("remind")
def remind(today: TodayOpt = None) -> None:
    """Escalate newly overdue reports (once each, audited) and print one reminder per agency."""
    from collections import Counter

    from triage.kpi.reports import escalate, overdue

    day = _today(today)
    db = open_database()
    try:
        new = db.transaction(lambda s: [r.id for r in escalate(s, day)])
        with db.read() as s:
            per = Counter(r.agency_code for r in overdue(s, day))
    finally:
        db.dispose()
    for agency, n in sorted(per.items()):
        console.print(f"{agency}: {n} báo cáo quá hạn, đề nghị cập nhật số liệu và minh chứng")
    console.print(f"{len(new)} newly escalated")


@kpi_app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="File to write (.xlsx: every table; .csv: the indicators).")],
    today: TodayOpt = None,
) -> None:
    """The dashboard, reporting rates and reports as XLSX, or the indicators as CSV (UTF-8 with BOM)."""
    from triage.cases.exports import check_format, render
    from triage.kpi.export import all_tables
    from triage.kpi.registry import default_kpi_registry

    try:
        fmt = check_format(out.suffix.lstrip("."))
    except TriageError as exc:
        fail(exc)
    db = open_database()
    try:
        with db.read() as s:
            tables = all_tables(s, default_kpi_registry(), _today(today))
    finally:
        db.dispose()
    out.write_bytes(render(tables if fmt == "xlsx" else tables[:1], fmt))
    console.print(f"wrote {out}")


@kpi_app.command("demo")
def demo(today: TodayOpt = None) -> None:
    """Seed two years of quarterly reports for a dozen agencies (deterministic): a living dashboard."""
    from triage.kpi.demo import seed
    from triage.kpi.registry import default_kpi_registry

    db = open_database()
    try:
        result = seed(
            db,
            default_kpi_registry(),
            today=_today(today),
            calendar=default_calendar(),
            evidence_root=get_settings().data_dir / "files",
            progress=console.print,
        )
    except TriageError as exc:
        fail(exc)
    finally:
        db.dispose()
    console.print(
        f"{result.submitted} figures in {len(result.periods)} quarters ({result.periods[0]}.."
        f"{result.periods[-1]}); {result.missing} missing, {result.returned} returned"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(kpi_app, name="kpi")
