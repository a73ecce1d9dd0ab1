"""FastAPI application factory; models and the database open once, in the lifespan, never per request.

Start-up: refuse unsafe production settings, migrate the database (``alembic upgrade head``), load
the models, and start the periodic job (escalations, and triage of any case whose models failed at
intake). Domain errors become HTTP statuses in exactly one place: ``service.http_errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.health import readiness
from service.http_errors import headers_of, status_of
from service.limits import MAX_BODY, BodyLimit
from service.observability import Metrics, observe_request
from service.signing_key import MIN_SECRET, UnsafeConfiguration, token_secret
from service.uploads import upload_body_limit
from triage import __version__
from triage.config import Settings, get_settings
from triage.errors import TriageError

log = logging.getLogger("triage.service")

__all__ = ["MAX_BODY", "MIN_SECRET", "UnsafeConfiguration", "create_app", "is_page", "status_of", "token_secret"]


def _where(loc: list[Any]) -> str:
    """'content' for a body field, 'limit' for a query parameter: what a person reading the error needs."""
    parts = [str(p) for p in loc]
    return ".".join(parts[1:]) or (parts[0] if parts else "request")


_NOT_PAGES = ("/api/", "/docs", "/redoc", "/openapi.json", "/health", "/static/", "/metrics")


def is_page(request: Request) -> bool:
    """A request for a web page (answered with HTML), not for the JSON API, docs or static files."""
    return not request.url.path.startswith(_NOT_PAGES)


def _check_production(settings: Settings) -> None:
    if settings.env == "production" and settings.dev_admin_password is not None:
        raise UnsafeConfiguration(
            "TRIAGE_DEV_ADMIN_PASSWORD is for dev mode only; in production create accounts with `triage users create`"
        )


def _bootstrap_admin(settings: Settings, db: Any) -> None:
    """Dev mode convenience: an 'admin' account with TRIAGE_DEV_ADMIN_PASSWORD when there is none at all."""
    if settings.env != "dev" or settings.dev_admin_password is None:
        return
    from triage.cases.accounts import count_users, create_user

    with db.session() as s:
        if count_users(s) == 0:
            create_user(s, username="admin", password=settings.dev_admin_password.get_secret_value(), role="admin")
            log.info("dev mode: created account 'admin' from TRIAGE_DEV_ADMIN_PASSWORD")


MAINTENANCE = "maintenance"


def run_shared_maintenance(svc: Any) -> None:
    """The database's part: triage cases left without a suggestion, forget old login failures, mask
    old rows for analysts' search, escalate missed case deadlines, make a closed period's Resolution-57
    reports due and escalate the overdue ones (as `triage kpi remind` does). Once per interval is enough
    for all workers."""
    from triage.cases.calendar import to_local_date
    from triage.cases.escalation import escalate
    from triage.cases.intake import retriage_missing
    from triage.kpi.reports import escalate as escalate_reports
    from triage.store.repositories import fill_masked_search

    retriage_missing(svc.db, svc.pipeline)
    if svc.logins is not None:
        svc.logins.prune()  # failures past the longest lockout are forgotten anyway
    fill_masked_search(svc.db)  # rows stored before masked search existed: analysts search them once masked
    from triage.cases.notifications import AgencyContacts

    contacts = AgencyContacts(svc.settings.notify_agency_contacts, svc.settings.notify_default_contact)
    report = svc.db.transaction(
        lambda s: escalate(
            s, today=to_local_date(svc.now()), policy=svc.policy, calendar=svc.calendar, contacts=contacts
        )
    )
    if report.recorded:
        log.info("escalated %d newly overdue case(s)", report.recorded)
    from service.kpi import ensure_due

    made = ensure_due(svc)  # a new period's reports are due (and later escalate) without anyone opening a page
    if made:
        log.info("made %d KPI report(s) due", made)
    now = svc.now()  # reports escalate once each (escalated_at), so a later pass adds nothing for them
    late = svc.db.transaction(lambda s: len(escalate_reports(s, to_local_date(now), now=now)))
    if late:
        log.info("escalated %d newly overdue KPI report(s)", late)


def run_local_maintenance(svc: Any) -> None:
    """This worker's part: its case index follows the audit trail, and its host's anchor file gets the head."""
    from triage.cases.audit import write_anchor
    from triage.store.db import audit_anchor_file

    if svc.cases_index is not None:
        svc.cases_index.refresh()
        svc.cases_index.save()
    with svc.db.read() as s:  # the chain head, outside the database: a later cut or rewrite shows against it
        write_anchor(s, audit_anchor_file(svc.settings))


def run_maintenance(svc: Any) -> None:
    """One whole pass, here and now (tests, and `triage` commands that need it at once)."""
    run_shared_maintenance(svc)
    run_local_maintenance(svc)


def periodic_pass(svc: Any, interval: float) -> bool:
    """The periodic job's tick: the shared part once per interval across all workers and hosts (whoever
    queues and claims the ``maintenance`` job; the others skip), then this worker's part. True when the
    shared part ran here."""
    from datetime import timedelta

    from triage.cases.jobs import JobQueue
    from triage.errors import Conflict

    queue = JobQueue(svc.db)
    ran = False
    if queue.due(MAINTENANCE, every=timedelta(seconds=0.8 * interval)):
        try:
            queue.enqueue(MAINTENANCE, requested_by="system")
        except Conflict:
            pass  # another worker's pass is queued or running
        else:
            job = queue.claim([MAINTENANCE])
            if job is not None:
                try:
                    run_shared_maintenance(svc)
                except Exception as exc:
                    queue.fail(job.id, f"{type(exc).__name__}: {exc}")
                    raise
                queue.finish(job.id, None)
                queue.prune(MAINTENANCE, older_than=timedelta(days=1))
                ran = True
    run_local_maintenance(svc)
    return ran


async def _poll_models(svc: Any, interval: float) -> None:
    """Serve a new registry champion without a restart (promoted by the CLI or another process)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(svc.models.refresh)
        except Exception:
            log.exception("checking the model registry failed; still serving %s", svc.pipeline.model_version)


async def _periodic(svc: Any, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(periodic_pass, svc, interval)
        except Exception:  # the job must outlive one bad pass
            log.exception("periodic maintenance failed")


def _limit_threads(settings: Settings) -> None:
    """Keep the thread count near the core count: oversubscription was the intake's bottleneck.

    OpenBLAS starts one busy-waiting thread per core for every small numpy product (the similar-case
    search), fighting ONNX Runtime's own threads; and the default 40 request threads thrash the GIL
    when requests queue. One BLAS thread and a small request pool served more submissions per second.
    """
    import anyio.to_thread

    if settings.blas_threads > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=settings.blas_threads, user_api="blas")
    anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (tests pass their own; `triage serve` uses the environment)."""
    settings = settings or get_settings()
    _check_production(settings)
    secret = token_secret(settings)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from service.ratelimit import TrustedProxies
        from service.state import ServiceState
        from triage.cases.calendar import default_calendar
        from triage.cases.pipeline import Pipeline
        from triage.cases.throttle import LoginPolicy, LoginThrottle, SharedTokenBucket
        from triage.cases.workflow import DeadlinePolicy
        from triage.store.case_index import CaseIndex
        from triage.store.db import Database, init_db

        db = Database.from_settings(settings)
        init_db(db)
        _bootstrap_admin(settings, db)
        from triage.nlp.embed import BatchingEmbedder, load_embedder

        embedder = load_embedder(
            settings.encoder_path,
            settings.model_dir,
            backend=settings.encoder_backend,
            threads=settings.encoder_threads,
            spin=settings.encoder_spin,
        )
        if settings.encoder_batch_wait_ms > 0:  # concurrent requests share one model call
            embedder = BatchingEmbedder(embedder, max_wait_ms=settings.encoder_batch_wait_ms)
        cases_index = CaseIndex.from_settings(db, settings).open()
        pipeline = Pipeline.from_settings(settings, embedder=embedder, similar=cases_index)
        pipeline.calendar = default_calendar()
        # mlflow is imported here, once, before any request or job thread runs: two threads importing
        # it for the first time at once (a retrain job and a promote request) deadlock inside its
        # protobuf modules and leave it half-imported, failing every later registry call with a 500.
        import mlflow  # noqa: F401

        _limit_threads(settings)  # after the models load: each library brings its own BLAS copy

        def epoch() -> float:
            """The service's clock (tests move it) for the shared limits, as seconds since the epoch."""
            return svc.now().timestamp()

        svc = ServiceState(
            settings=settings,
            db=db,
            pipeline=pipeline,
            cases_index=cases_index,
            limiter=SharedTokenBucket(
                db,
                per_minute=settings.intake_rate_per_minute,
                burst=settings.intake_burst,
                prefix="intake",
                clock=epoch,
            ),
            token_secret=secret,
            policy=DeadlinePolicy.from_settings(settings),
            calendar=pipeline.calendar,
            text_limiter=SharedTokenBucket(
                db, per_minute=settings.text_rate_per_minute, burst=settings.text_burst, prefix="text", clock=epoch
            ),
            logins=LoginThrottle(
                db,
                LoginPolicy(
                    max_failures=settings.login_max_failures,
                    max_failures_per_address=settings.login_max_failures_per_address,
                    lockout_s=settings.login_lockout_s,
                    lockout_max_s=settings.login_lockout_max_s,
                ),
                clock=epoch,
            ),
            proxies=TrustedProxies(settings.forwarded_allow_ips),
            password_lane=anyio.CapacityLimiter(settings.password_checks),
            intake_lane=anyio.CapacityLimiter(settings.intake_concurrency or os.cpu_count() or 1),
            metrics=metrics,
        )
        metrics.watch(svc)
        from service.learning import ModelManager

        svc.models = ModelManager(settings=settings, db=db, pipeline=pipeline)
        try:
            svc.models.refresh()  # the registry's champion, when one exists
        except Exception:  # a broken registry must not keep the service down: cold start still routes
            log.exception("could not load the registry's champion; serving %s", pipeline.model_version)
        svc.models.start_runner()  # claims queued retrains (any worker's) from the jobs table
        from service.notify import Notifier

        notifier = Notifier(settings=settings, db=db)
        notifier.start()  # delivers the outbox (any worker's messages; each claimed by one)
        app.state.svc = svc
        jobs = []
        if settings.escalate_interval_s:
            jobs.append(asyncio.create_task(_periodic(svc, settings.escalate_interval_s)))
        if settings.model_poll_s:
            jobs.append(asyncio.create_task(_poll_models(svc, settings.model_poll_s)))
        try:
            yield
        finally:
            svc.models.stop_runner()
            notifier.stop()
            for job in jobs:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            try:
                cases_index.save()  # a restart then reads only the events after this point
            except Exception:
                log.exception("could not save the case index; the next start rebuilds it")
            db.dispose()
            if isinstance(embedder, BatchingEmbedder):
                embedder.close()
            # FastAPI keeps the endpoint functions of every app it has seen in a module-level cache
            # (fastapi.dependencies.models, 4096 entries) and they hold this app: let go of the
            # models and the database here, or a process that starts many apps keeps all of them.
            del app.state.svc
            metrics.unwatch()

    app = FastAPI(
        title="pakn-triage",
        version=__version__,
        lifespan=lifespan,
        description=(
            "Intake and triage of Vietnamese citizen feedback (PAKN-SKGP): public submissions and tracking, "
            "suggested routes, the handling workflow with deadlines in Vietnamese working days, audit trail."
        ),
    )

    # Counts the body as the app pulls it (chunked too). Added first, so it sits inside ``guard``: its
    # error then reaches the exception handlers as raised, not wrapped by guard's task group.
    app.add_middleware(BodyLimit, limit=MAX_BODY, upload_limit=upload_body_limit(settings))

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        raw = bytes(request.scope.get("raw_path") or b"") + b"?" + bytes(request.scope.get("query_string") or b"")
        if b"%00" in raw:
            return JSONResponse(status_code=400, content={"detail": "NUL characters (%00) are not allowed in URLs"})
        response = await call_next(request)
        # JSON is data: never let a browser sniff it into HTML, frame it, or run anything from it.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        return await observe_request(request, call_next, metrics)  # outermost: counts every answer, 413 included

    @app.exception_handler(TriageError)
    async def triage_error(request: Request, exc: TriageError) -> Response:
        status = status_of(exc)
        if is_page(request):  # the same statuses, as pages; a browser without a session goes to the login
            from service.web.render import error_page

            if status == 401:
                from urllib.parse import quote

                return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
            page = error_page(request, status, str(exc))
            page.headers.update(headers_of(exc) or {})
            return page
        return JSONResponse(status_code=status, content={"detail": str(exc)}, headers=headers_of(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_page(request):
            from service.web.render import error_page

            page = error_page(request, exc.status_code, str(exc.detail))
            page.headers.update(exc.headers or {})  # e.g. Connection: close after a body cut off at the limit
            return page
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail}, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if is_page(request):
            from service.web.render import error_page

            return error_page(request, 422, "Địa chỉ hoặc dữ liệu gửi lên không hợp lệ.")
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return JSONResponse(status_code=400, content={"detail": "request body is not valid JSON", "errors": errors})
        reasons = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse(status_code=422, content={"detail": f"invalid request: {reasons}", "errors": errors})

    @app.get("/health/live", tags=["service"])
    async def live() -> dict[str, str]:
        """The process is up and its event loop answers; no I/O, so a slow database never fails it."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["service"])
    async def ready() -> JSONResponse:
        """200 when the database answers and the models and case index are loaded; else 503 naming the part."""
        return await readiness(app)

    @app.get("/health", tags=["service"])
    async def health() -> JSONResponse:
        """The readiness check under its old name (load balancers and `triage serve` scripts poll it)."""
        return await readiness(app)

    @app.get("/metrics", tags=["service"], include_in_schema=False)
    def prometheus(request: Request) -> Response:
        """Prometheus metrics; with TRIAGE_METRICS_TOKEN set, only for 'Authorization: Bearer <token>'."""
        expected = settings.metrics_token
        if expected is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {expected.get_secret_value()}".encode()):
                return JSONResponse(status_code=401, content={"detail": "metrics need the configured bearer token"})
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    from service.api.routes import (
        agencies,
        answers,
        auth,
        campaigns,
        cases,
        followup,
        kpi,
        models,
        nlp,
        open311,
        stats,
        submissions,
        themes,
    )

    for module in (
        submissions,
        followup,
        open311,
        auth,
        cases,
        campaigns,
        stats,
        agencies,
        nlp,
        models,
        themes,
        kpi,
        answers,
    ):
        app.include_router(module.router)
    from service.web.pages import mount

    mount(app)  # the web pages (service/web/, templates and static files)
    return app
