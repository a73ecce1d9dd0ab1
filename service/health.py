"""Readiness: may this worker take traffic? The database answers, the models and the case index are loaded.

The database probe runs in a thread of its own small pool with a time limit, never in the request
pool: a health check must answer while every request thread is busy (that is when a load balancer
asks), and a database that hangs makes the check fail after ``PROBE_TIMEOUT_S`` instead of hanging too.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from triage import __version__

PROBE_TIMEOUT_S = 3.0
PROBE_THREADS = 2


def _database(db: Any) -> None:
    """Raises when the database cannot be reached or was never migrated (no Alembic version row)."""
    with db.read() as s:
        if s.execute(text("SELECT version_num FROM alembic_version")).first() is None:
            raise RuntimeError("no schema version")


async def _check_database(app: FastAPI, db: Any) -> str:
    probes = getattr(app.state, "health_probes", None)
    if probes is None:  # made on the app's own event loop (a limiter belongs to one loop)
        probes = app.state.health_probes = anyio.CapacityLimiter(PROBE_THREADS)
    try:
        with anyio.fail_after(PROBE_TIMEOUT_S):
            await anyio.to_thread.run_sync(_database, db, limiter=probes, abandon_on_cancel=True)
    except TimeoutError:
        return f"no answer within {PROBE_TIMEOUT_S:g} s"
    except Exception as exc:  # any failure means "not ready"; the reason goes to the operator
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip(": ")
    return "ok"


def _check_models(svc: Any) -> str:
    pipeline = getattr(svc, "pipeline", None)
    if pipeline is None or getattr(pipeline, "embedder", None) is None:
        return "not loaded"
    return "ok" if pipeline.agency_router is not None else "no agency router"


def _check_index(svc: Any) -> str:
    return "ok" if getattr(svc, "cases_index", None) is not None else "not loaded"


async def readiness(app: FastAPI) -> JSONResponse:
    """``{"status": "ok", "checks": {...}}`` (200), or 503 with ``failing`` naming each part that is not ready."""
    svc = getattr(app.state, "svc", None)
    if svc is None:
        checks = {"startup": "models and database not loaded yet"}
    else:
        database = await _check_database(app, svc.db)
        checks = {"database": database, "models": _check_models(svc), "index": _check_index(svc)}
    failing = [name for name, state in checks.items() if state != "ok"]
    body: dict[str, Any] = {
        "status": "unavailable" if failing else "ok",
        "version": __version__,
        "model_version": svc.pipeline.model_version if svc is not None else None,
        "checks": checks,
    }
    if failing:
        body["failing"] = failing
        body["detail"] = "not ready: " + ", ".join(f"{name} ({checks[name]})" for name in failing)
    return JSONResponse(body, status_code=503 if failing else 200, headers={"Cache-Control": "no-store"})
