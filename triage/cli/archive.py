"""`triage import`: load past cases (CSV, XLSX or JSON lines) with their dates, agencies and answers.

Validation comes first and is all-or-nothing: on any error the command prints every (line, column,
reason), writes them to --errors when asked, exits 2 and has written nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from triage.cli._common import console, fail, load_embedder, open_database, write_json
from triage.errors import TriageError

STAGES = {"embed": "encoding texts", "write": "writing cases", "themes": "theme history"}


def import_archive(
    path: Annotated[Path, typer.Argument(help="The archive: .csv, .xlsx or .jsonl.")],
    reviewer: Annotated[str, typer.Option(help="Staff account the archive's routes are labelled by (audited as it).")],
    mapping: Annotated[
        Path | None, typer.Option(help="Mapping file (.yaml or .json): columns, defaults, kinds, states, date formats.")
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv, xlsx or jsonl (default: from the suffix).")] = None,
    themes: Annotated[
        bool, typer.Option("--themes/--no-themes", help="Run the theme reports over the imported span afterwards.")
    ] = True,
    theme_days: Annotated[int, typer.Option(help="Length of each theme period, in days.")] = 91,
    check: Annotated[bool, typer.Option("--check", help="Validate only; write nothing.")] = False,
    errors: Annotated[Path | None, typer.Option(help="Write the error report here (JSON lines).")] = None,
    database: Annotated[str | None, typer.Option(help="Database URL (default: TRIAGE_DATABASE_URL).")] = None,
) -> None:
    """Import past cases; idempotent by external id (rows already imported are skipped)."""
    # deferred: the importer pulls in the text stack
    from triage.cases.import_files import Mapping, read_rows
    from triage.cases.importer import ImportRejected, build_theme_history, import_rows, validate

    try:
        rules = Mapping.load(mapping)
        rows, problems, count = validate(read_rows(path, rules, fmt), rules)
        if problems:
            if errors is not None:
                with errors.open("w", encoding="utf-8") as fh:
                    for e in problems:
                        fh.write(json.dumps(e.__dict__, ensure_ascii=False) + "\n")
            for e in problems[:50]:
                console.print(f"[red]{e}[/red]")
            raise ImportRejected(problems, count)
        console.print(f"{count} rows valid")
        if check:
            write_json({"rows": count, "valid": len(rows), "errors": 0})
            return
        db = open_database(database)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(STAGES.get(stage, stage), total=total)
                bar.update(tasks[stage], completed=done, total=total)

            result = import_rows(db, rows, embedder=load_embedder(), reviewer=reviewer, progress=progress)
            if themes and result.imported and result.first_received and result.last_received:
                kept = build_theme_history(
                    db, result.first_received, result.last_received, days=theme_days, progress=progress
                )
                console.print(f"{kept} themes kept")
        db.dispose()
        write_json(result.as_dict())
    except TriageError as exc:
        fail(exc)


def register(app: typer.Typer) -> None:
    """Attach `import` to the main `triage` CLI."""
    app.command("import")(import_archive)
