"""Mount the web pages and the local static files on the app (no CDN: the machines are offline)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.web import answers, citizen_panel, followup, kpi, models, public, reports, staff
from service.web.templating import STATIC_DIR


def mount(app: FastAPI) -> None:
    """Add the page routers and ``/static``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (public, followup, staff, citizen_panel, reports, models, kpi, answers):
        app.include_router(module.router)
