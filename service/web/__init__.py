"""Server-rendered web pages (Jinja2) for citizens, clerks, handlers, analysts and admins.

The pages call the core library (``triage.cases.intake``, ``triage.cases.casework``, ``triage.cases.stats``) and the
API's own view builders (``service.views``) directly, never the JSON API over HTTP, so a page and the
API always apply the same rules: the same role checks, the same masking, the same workflow.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def mount(app: FastAPI) -> None:
    """Add the web pages and the local static files (no CDN: the machines are offline)."""
    from service.web import models, public, reports, staff

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (public, staff, reports, models):
        app.include_router(module.router)
