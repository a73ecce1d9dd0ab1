"""Operations commands: `users create|set`, `audit verify|seal|restore-head`, `escalate`, `db upgrade|counts`,
`index rebuild`.

They work on the database named by TRIAGE_DATABASE_URL (default: the SQLite file under the data
folder), upgrading its schema first, so they can run before the service ever started.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from triage.cases import audit
from triage.cases.accounts import create_user, update_user
from triage.cases.audit import verify
from triage.cases.calendar import default_calendar, to_local_date
from triage.cases.escalation import escalate as run_escalation
from triage.cases.workflow import DeadlinePolicy
from triage.cli._common import console, fail, open_database
from triage.config import get_settings
from triage.errors import TriageError
from triage.store.db import audit_anchor_file
from triage.store.tables import utcnow

if TYPE_CHECKING:
    pass

users_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
index_app = typer.Typer(help="The similar-case (duplicate) index.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(
    url: Annotated[
        str | None, typer.Option(help="Database URL (default: TRIAGE_DATABASE_URL or the SQLite file).")
    ] = None,
) -> None:
    """Create or migrate the schema to the newest revision (`alembic upgrade head`)."""
    db = open_database(url)
    console.print(f"schema up to date: {db.engine.url.render_as_string(hide_password=True)}")
    db.dispose()


@db_app.command("counts")
def db_counts(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of lines.")] = False,
) -> None:
    """Rows per table (cases, submissions, audit events, ...): compare a restored copy with its source."""
    from sqlalchemy import func, select

    from triage.store.tables import Base

    db = open_database(None)
    with db.read() as s:
        counts = {
            name: int(s.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in sorted(Base.metadata.tables.items())
        }
    db.dispose()
    if as_json:
        print(json.dumps(counts))
        return
    for name, n in counts.items():
        print(f"{name}: {n}")  # stdout, for scripts (the console writes to stderr)


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Login name (no spaces).")],
    role: Annotated[str, typer.Option(help="clerk, handler, analyst or admin.")],
    agency: Annotated[str | None, typer.Option(help="Agency code or name (required for a handler).")] = None,
    password: Annotated[
        str | None, typer.Option(help="Password (10+ characters); asked for, hidden, when left out.")
    ] = None,
) -> None:
    """Add a staff account; the password is stored only as an argon2 hash."""

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    db = open_database()
    try:
        with db.session() as s:
            user = create_user(
                s, username=username, password=password, role=role, agency_code=agency, actor=_operator()
            )
            summary = f"{user.username} ({user.role}{', ' + user.agency_code if user.agency_code else ''})"
    except TriageError as exc:
        fail(exc)
    finally:
        db.dispose()
    console.print(f"created {summary}")


def _operator() -> str:
    """Who runs an operations command, as the audit trail names them."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except Exception:  # no login name (a container without a passwd entry)
        return "cli"


@users_app.command("set")
def users_set(
    username: Annotated[str, typer.Argument(help="The account to change.")],
    role: Annotated[str | None, typer.Option(help="New role: clerk, handler, analyst or admin.")] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--disabled", help="Enable the account, or disable it (sign-in refused).")
    ] = None,
) -> None:
    """Change an account's role, or disable / enable it (audited)."""
    db = open_database()
    try:
        with db.session() as s:
            user = update_user(s, username, actor=_operator(), role=role, active=active)
            summary = f"{user.username} ({user.role}, {'active' if user.active else 'disabled'})"
    except TriageError as exc:
        fail(exc)
    finally:
        db.dispose()
    console.print(f"updated {summary}")


@audit_app.command("verify")
def audit_verify(
    url: Annotated[
        str | None, typer.Option(help="Database URL (default: TRIAGE_DATABASE_URL or the SQLite file).")
    ] = None,
    anchors: Annotated[
        Path | None, typer.Option(help="Anchor file (default: TRIAGE_AUDIT_ANCHOR_FILE or data_dir/audit-anchors.log).")
    ] = None,
) -> None:
    """Check every event's hash, link and MAC, the head, texts and anchors; exit 1 and list each problem."""

    db = open_database(url)
    try:
        with db.read() as s:
            report = verify(s, anchors=anchors or audit_anchor_file(get_settings()))
    finally:
        db.dispose()
    for line in report.lines():
        sys.stdout.write(line + "\n")
    if not report.ok:
        raise typer.Exit(code=1)


@audit_app.command("seal")
def audit_seal() -> None:
    """Sign the events written before the audit key existed (once, after upgrading); refused if not intact."""
    db = open_database()
    try:
        with db.session() as s:
            n = audit.seal(s, actor=_operator())
    except TriageError as exc:
        fail(exc)
    finally:
        db.dispose()
    console.print(f"signed {n} event(s) from before the audit key")


@audit_app.command("restore-head")
def audit_restore_head() -> None:
    """Point a missing or stale chain head at the last event, so audited writes resume (recorded in the trail)."""
    db = open_database()
    try:
        with db.session() as s:
            audit.restore_head(s, actor=_operator())
    except TriageError as exc:
        fail(exc)
    finally:
        db.dispose()
    console.print("chain head restored; `triage audit verify` still lists what was cut or edited")


def escalate(
    today: Annotated[
        str | None, typer.Option(help="Date to check against (YYYY-MM-DD); default: today in Vietnam.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """List due-soon and overdue cases per agency; record an `escalate` event for each newly overdue one.

    Safe to run any number of times: a missed deadline is escalated once.
    """
    try:
        day = date.fromisoformat(today) if today else to_local_date(utcnow())
    except ValueError:
        fail(TriageError(f"--today must be YYYY-MM-DD, got {today!r}"))
        return
    db = open_database()
    try:
        with db.session() as s:
            report = run_escalation(
                s, today=day, policy=DeadlinePolicy.from_settings(get_settings()), calendar=default_calendar()
            )
    finally:
        db.dispose()
    groups = report.by_agency()
    if as_json:
        out = {
            "today": day.isoformat(),
            "recorded": report.recorded,
            "agencies": {
                str(code): [{**f.__dict__, "due": f.due.isoformat()} for f in flags] for code, flags in groups.items()
            },
        }
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
        return
    if not report.flags:
        sys.stdout.write(f"{day}: nothing due soon or overdue\n")
    for code, flags in sorted(groups.items(), key=lambda kv: str(kv[0])):
        overdue = sum(f.status == "overdue" for f in flags)
        sys.stdout.write(f"{code or '(not routed)'}: {overdue} overdue, {len(flags) - overdue} due soon\n")
        for f in flags:
            mark = " [escalated now]" if f.escalated_now else ""
            sys.stdout.write(
                f"  case {f.case_id} {f.state:<12} {f.deadline} due {f.due} ({f.status}, "
                f"{f.working_days_left} working days left){mark}\n"
            )
    console.print(f"recorded {report.recorded} escalation(s)")


@index_app.command("rebuild")
def index_rebuild() -> None:
    """Rebuild the similar-case index from the database and save it under the data folder.

    The service keeps the index in step by itself; run this after restoring a backup, changing the
    encoder (re-embedded submissions) or the index settings (TRIAGE_INDEX_*).
    """

    from triage.store.case_index import CaseIndex  # deferred: faiss costs ~0.35 s at import

    settings = get_settings()
    db = open_database()
    try:
        started = time.perf_counter()
        index = CaseIndex.from_settings(db, settings)
        n = index.rebuild()
        folder = index.save()
    finally:
        db.dispose()
    where = folder if folder is not None else "(nothing saved: no case has an embedding yet)"
    console.print(f"indexed {n} cases ({index.kind}) in {time.perf_counter() - started:.1f} s -> {where}")


def register(app: typer.Typer) -> None:
    """Attach these commands to the main `triage` CLI."""
    app.add_typer(users_app, name="users")
    app.add_typer(audit_app, name="audit")
    app.add_typer(db_app, name="db")
    app.add_typer(index_app, name="index")
    app.command("escalate")(escalate)
