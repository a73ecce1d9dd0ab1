"""Learning-loop commands: `triage retrain`, `triage models list|promote|rollback`, `triage eval-slice`, `triage drift`.

They work on the database named by TRIAGE_DATABASE_URL and the MLflow store named by
TRIAGE_MLFLOW_URI (default: sqlite under the data folder). MLflow is imported only when a command runs.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from triage.cli._common import console, fail, load_embedder, open_database, write_json
from triage.config import get_settings
from triage.errors import TriageError
from triage.store.tables import utcnow

models_app = typer.Typer(help="Registered routing models and the served champion.", no_args_is_help=True)
slice_app = typer.Typer(help="The frozen evaluation slice.", no_args_is_help=True)


def retrain(
    seed: Annotated[
        Path | None,
        typer.Option(help="Public seed JSONL (text, agency) added to the reviewed labels; stated in the run."),
    ] = None,
) -> None:
    """Train on the reviewed labels, evaluate on the frozen slice, log to MLflow, register, gate the champion."""
    # training/ is imported per command: it loads MLflow (~2 s), which `triage --help` must not pay.
    from training.retrain import retrain as run

    s = get_settings()
    db = open_database()
    try:
        embedder = load_embedder()
        result = run(
            s,
            db,
            embedder=embedder,
            seed=seed,
            created_by="cli",
            progress=lambda st, f: console.print(f"{f:5.0%} {st}"),
        )
    except TriageError as exc:
        fail(exc)
        return
    finally:
        db.dispose()
    out = result.as_dict()
    out["metrics"].pop("per_agency", None)
    write_json(out)
    verdict = "promoted to champion" if result.promoted else "NOT promoted"
    console.print(f"version {result.version}: {verdict}: {'; '.join(result.reasons)}")


@models_app.command("list")
def models_list() -> None:
    """Registered versions, newest first, with their gate decision; * marks the champion."""
    from training.registry import ModelRegistry  # deferred: see retrain

    reg = ModelRegistry(get_settings())
    versions = reg.versions()
    if not versions:
        sys.stdout.write(f"no versions of {reg.name} in {reg.uri}\n")
    for v in versions:
        d = v.as_dict()
        mark = "*" if v.champion else " "
        sys.stdout.write(
            f"{mark} v{v.version:<4} macro_f1={d['macro_f1']} top1={d['top1']} gate={d['gate']} {d['reasons']}\n"
        )


@models_app.command("promote")
def models_promote(version: Annotated[int, typer.Argument(help="Registered version to serve.")]) -> None:
    """Make VERSION the champion by hand (bypasses the gate; audited). Services follow within a poll."""
    from training.promotion import promote  # deferred: see retrain

    db = open_database()
    try:
        change = promote(get_settings(), db, version, actor="cli", reason="promoted by hand (triage models promote)")
    except TriageError as exc:
        fail(exc)
        return
    finally:
        db.dispose()
    console.print(f"champion is now version {change.after} (was {change.before}; audit event {change.event_seq})")


@models_app.command("rollback")
def models_rollback() -> None:
    """Give the champion alias back to the version that held it before (audited); repeat to go further back."""
    from training.promotion import rollback  # deferred: see retrain

    db = open_database()
    try:
        change = rollback(get_settings(), db, actor="cli")
    except TriageError as exc:
        fail(exc)
        return
    finally:
        db.dispose()
    console.print(f"champion is now version {change.after} (was {change.before}; audit event {change.event_seq})")


@slice_app.command("grow")
def slice_grow(
    fraction: Annotated[
        float | None, typer.Option(help="Share of each agency's texts to freeze (default: setting).")
    ] = None,
) -> None:
    """Freeze more reviewed texts into the evaluation slice (stratified by agency); it never shrinks."""
    from training.dataset import grow_eval_slice, slice_size  # deferred: see retrain

    db = open_database()
    try:
        with db.session() as s:
            added = grow_eval_slice(s, fraction=fraction or get_settings().eval_fraction, actor="cli")
            total = slice_size(s)
    except TriageError as exc:
        fail(exc)
        return
    finally:
        db.dispose()
    write_json({"added": added, "slice_size": total})


@slice_app.command("show")
def slice_show() -> None:
    """Size of the slice per agency."""
    from training.dataset import build_dataset  # deferred: see retrain

    db = open_database()
    try:
        with db.read() as s:
            ds = build_dataset(s)
    finally:
        db.dispose()
    write_json(
        {"slice_size": len(ds.eval), "train_size": len(ds.train), "per_agency": Counter(r.agency for r in ds.eval)}
    )


def drift(
    recent_weeks: Annotated[int | None, typer.Option(help="Weeks compared (default: setting).")] = None,
    reference_weeks: Annotated[int | None, typer.Option(help="Reference weeks before them (default: setting).")] = None,
) -> None:
    """Weekly drift report: reviewed-label shift (JS divergence, PSI) and confidence on new submissions."""
    # Deferred: drift needs scikit-learn and SciPy (~1.7 s at import).
    from triage.cases.drift import drift_report

    s = get_settings()
    db = open_database()
    try:
        with db.read() as session:
            report = drift_report(
                session,
                now=utcnow(),
                recent_weeks=recent_weeks or s.drift_recent_weeks,
                reference_weeks=reference_weeks or s.drift_reference_weeks,
            )
    finally:
        db.dispose()
    write_json(report)


def register(app: typer.Typer) -> None:
    """Attach these commands to the main `triage` CLI."""
    app.command("retrain")(retrain)
    app.command("drift")(drift)
    app.add_typer(models_app, name="models")
    app.add_typer(slice_app, name="eval-slice")
