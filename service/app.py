"""FastAPI application factory; models are loaded once, in the lifespan, never per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from triage import __version__
from triage.config import Settings, get_settings
from triage.errors import InvalidInput, ModelMissing, NotFitted, NotFound, TriageError

MAX_TEXT = 20_000

# The one place where domain errors become HTTP statuses.
ERROR_STATUS: dict[type[TriageError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    ModelMissing: 503,
    NotFitted: 503,
}


class RouteRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="The submission's text (Vietnamese).")
    top_k: int = Field(default=3, ge=1, le=20)


class RankedLabel(BaseModel):
    label: str
    score: float


class RouteResponse(BaseModel):
    predictions: list[RankedLabel]
    model_version: str


class SimilarRequest(BaseModel):
    text1: str = Field(min_length=1, max_length=MAX_TEXT)
    text2: str = Field(min_length=1, max_length=MAX_TEXT)


class SimilarResponse(BaseModel):
    score: float


class AgencyOut(BaseModel):
    code: str
    name: str
    kind: str
    parent: str | None
    aliases: list[str]
    fields: list[str]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (tests pass their own; `triage serve` uses the environment)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from triage.agency_router import load_agency_router
        from triage.embed import load_embedder

        embedder = load_embedder(
            settings.encoder_path,
            settings.model_dir,
            backend=settings.encoder_backend,
            threads=settings.encoder_threads,
        )
        app.state.embedder = embedder
        app.state.router = load_agency_router(
            embedder=embedder, router_path=settings.router_path, cold_start_weight=settings.cold_start_weight
        )
        sup = app.state.router.supervised_
        app.state.model_version = f"{embedder.model_id}|{'cold-start' if sup is None else sup.data_hash_[:12]}"
        yield

    app = FastAPI(
        title="pakn-triage",
        version=__version__,
        lifespan=lifespan,
        description="Triage of Vietnamese citizen feedback (PAKN-SKGP): routing, duplicates, workflow.",
    )

    @app.exception_handler(TriageError)
    async def triage_error(_: Request, exc: TriageError) -> JSONResponse:
        status = next((code for cls, code in ERROR_STATUS.items() if isinstance(exc, cls)), 400)
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return JSONResponse(status_code=400, content={"detail": "request body is not valid JSON", "errors": errors})
        return JSONResponse(status_code=422, content={"detail": "invalid request", "errors": errors})

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "model_version": getattr(app.state, "model_version", None)}

    @app.get("/api/v1/agencies", response_model=list[AgencyOut])
    def agencies() -> list[AgencyOut]:
        from triage.agencies import default_registry

        return [
            AgencyOut(
                code=a.code, name=a.name, kind=a.kind, parent=a.parent, aliases=list(a.aliases), fields=list(a.fields)
            )
            for a in default_registry()
        ]

    @app.post("/api/v1/route", response_model=RouteResponse)
    def route(body: RouteRequest, request: Request) -> RouteResponse:
        from triage.text import normalize

        text = normalize(body.text)
        if not text:
            raise InvalidInput("text is empty after removing whitespace and control characters")
        ranked = request.app.state.router.predict_top_k([text], k=body.top_k)[0]
        return RouteResponse(
            predictions=[RankedLabel(label=p.label, score=round(p.score, 6)) for p in ranked],
            model_version=request.app.state.model_version,
        )

    @app.post("/api/v1/similar", response_model=SimilarResponse)
    def similar(body: SimilarRequest, request: Request) -> SimilarResponse:
        from triage.text import normalize

        vecs = request.app.state.embedder.encode([normalize(body.text1), normalize(body.text2)])
        return SimilarResponse(score=round(float(vecs[0] @ vecs[1]), 6))

    return app
