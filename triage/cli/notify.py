"""`triage notify run|status|retry`: deliver the notification outbox outside the service."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from triage.cli._common import console, open_database, write_json
from triage.config import get_settings

notify_app = typer.Typer(help="The notification outbox (e-mail over SMTP, SMS).", no_args_is_help=True)


@notify_app.command("run")
def run(
    once: Annotated[bool, typer.Option("--once", help="Deliver what is due now, then stop.")] = False,
    poll: Annotated[float | None, typer.Option(help="Seconds between passes (default: TRIAGE_NOTIFY_POLL_S).")] = None,
) -> None:
    """Deliver due messages; runs until stopped (Ctrl-C) unless --once. Safe beside the service's own worker."""
    from service.notify import Notifier  # deferred: the service package is only needed here

    settings = get_settings()
    db = open_database()
    notifier = Notifier(settings=settings, db=db)
    if "email" not in notifier.senders:
        console.print("[yellow]TRIAGE_SMTP_HOST is not set: e-mails stay in the outbox; SMS go to the log[/yellow]")
    wait = settings.notify_poll_s if poll is None else poll
    try:
        while True:
            report = notifier.run_once()
            console.print(f"notify: {report.sent} sent, {report.failed} failed attempt(s), {report.given_up} given up")
            if once:
                break
            time.sleep(max(0.2, wait or 5.0))
    except KeyboardInterrupt:
        pass
    finally:
        db.dispose()


@notify_app.command("status")
def status() -> None:
    """Messages in the outbox by state, as JSON."""
    from triage.cases.outbox import Outbox

    db = open_database()
    try:
        write_json(Outbox.from_settings(db, get_settings()).counts())
    finally:
        db.dispose()


@notify_app.command("retry")
def retry() -> None:
    """Queue every given-up (failed) message again, e.g. after the SMTP settings were fixed."""
    from triage.cases.outbox import Outbox

    db = open_database()
    try:
        n = Outbox.from_settings(db, get_settings()).retry_failed()
    finally:
        db.dispose()
    console.print(f"{n} message(s) queued again")


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify")
