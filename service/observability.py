"""Operating the service: log lines tied to a request id, and Prometheus metrics.

Logs name the request (id, method, route template, status, latency, user id) and never carry a
submission's text, a query string or a path parameter: the route template stands for the path, so
a tracking code or a search term never reaches a log file. Each app has its own metrics registry
(tests and `--workers` start several apps); queue depths, jobs and the model version are read at
scrape time, so a scrape always sees the database as it is.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from triage.config import Settings

if TYPE_CHECKING:
    from service.state import ServiceState
    from triage.cases.pipeline import Suggestion

access_log = logging.getLogger("triage.access")

REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass
class RequestInfo:
    """Who and what the current request is; the user id is filled in once the caller is known."""

    id: str
    user_id: int | None = None


current_request: ContextVar[RequestInfo | None] = ContextVar("triage_request", default=None)


def note_user(user_id: int | None) -> None:
    """Tie the current request (and its log lines) to a signed-in account."""
    info = current_request.get()
    if info is not None:  # the same object in the request's threads: a copied context shares it
        info.user_id = user_id


def request_id(header: str | None) -> str:
    """The caller's id when it is a plain token (a proxy's, to follow one request across hosts), else a new one."""
    if header and _CLIENT_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


# ---- logs ---------------------------------------------------------------------------------------
class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id / user_id inside a request, then the
    record's ``fields`` (``log.info("...", extra={"fields": {...}})``) and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        info = current_request.get()
        if info is not None:
            line["request_id"] = info.id
            if info.user_id is not None:
                line["user_id"] = info.user_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """A readable line for development, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        info = current_request.get()
        return text if info is None else f"{text} [{info.id}]"


def wants_json(settings: Settings) -> bool:
    return settings.log_format == "json" or (settings.log_format == "auto" and settings.env == "production")


def log_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` for `triage serve` and its workers (uvicorn applies it in each).

    uvicorn's own access log is off: it prints the raw path and query (tracking codes, search terms);
    ``triage.access`` logs the route template instead.
    """
    formatter = "json" if wants_json(settings) else "text"
    handler = {"class": "logging.StreamHandler", "formatter": formatter, "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": f"{__name__}.JsonFormatter"},
            "text": {"()": f"{__name__}.TextFormatter"},
        },
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": settings.log_level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": settings.log_level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": settings.log_level},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
        },
    }


# ---- metrics ------------------------------------------------------------------------------------
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CONFIDENCE = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


class Metrics:
    """The counters and histograms a request or an intake updates; gauges come from ``StateCollector``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._state: StateCollector | None = None
        r = self.registry
        self.requests = Counter(
            "triage_http_requests",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "triage_http_request_duration_seconds",
            "HTTP latency by route template.",
            ["route"],
            buckets=_LATENCY,
            registry=r,
        )
        self.intake_seconds = Histogram(
            "triage_intake_duration_seconds",
            "A submission's intake: checks, triage, storing.",
            buckets=_LATENCY,
            registry=r,
        )
        self.routing_seconds = Histogram(
            "triage_routing_duration_seconds",
            "Triage of one submission (encode, route, similar cases, moderation).",
            buckets=_LATENCY,
            registry=r,
        )
        self.routing_confidence = Histogram(
            "triage_routing_confidence", "The top suggested agency's probability.", buckets=_CONFIDENCE, registry=r
        )
        self.suggestions = Counter(
            "triage_suggestions",
            "Submissions triaged at intake; auto_routed='true' when the case was routed without a clerk.",
            ["auto_routed"],
            registry=r,
        )

    def triaged(self, suggestion: Suggestion, seconds: float, *, auto_route: bool) -> None:
        self.routing_seconds.observe(seconds)
        if suggestion.agencies:
            self.routing_confidence.observe(suggestion.agencies[0].score)
        routed = auto_route and suggestion.auto_routable
        self.suggestions.labels(auto_routed="true" if routed else "false").inc()

    def watch(self, svc: ServiceState) -> None:
        """Read queue depths, job states and the served model from ``svc`` at each scrape."""
        self._state = StateCollector(svc)
        self.registry.register(self._state)

    def unwatch(self) -> None:
        """At shutdown: FastAPI's module-level caches keep the /metrics endpoint, so drop the models here."""
        state, self._state = self._state, None
        if state is not None:
            self.registry.unregister(state)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class StateCollector(Collector):
    """Gauges read when scraped: open cases by state, overdue cases, retrain jobs by state, the model."""

    def __init__(self, svc: ServiceState) -> None:
        self.svc = svc

    def describe(self) -> list[Metric]:
        return []  # nothing to read before the first scrape

    def collect(self) -> Iterator[Metric]:
        from triage.cases.calendar import to_local_date
        from triage.store.repositories import Cases

        with self.svc.db.read() as s:
            by_state, overdue = Cases(s).queue_depths(today=to_local_date(self.svc.now()))
        cases = GaugeMetricFamily("triage_cases", "Cases by workflow state.", labels=["state"])
        for state, n in sorted(by_state.items()):
            cases.add_metric([state], n)
        yield cases
        yield GaugeMetricFamily("triage_cases_overdue", "Open cases past their answer deadline.", value=overdue)
        jobs = GaugeMetricFamily(
            "triage_jobs", "Background jobs (retrains) of every worker, by state.", labels=["state"]
        )
        from triage.cases.jobs import JobQueue

        for state, n in JobQueue(self.svc.db).counts().items():
            jobs.add_metric([state], n)
        yield jobs
        model = InfoMetricFamily("triage_model", "The routing models this worker serves.")
        model.add_metric([], {"version": self.svc.pipeline.model_version})
        yield model


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"  # a 404's path is the caller's text: never a label


async def observe_request(
    request: Request, call_next: Callable[[Request], Awaitable[Response]], metrics: Metrics
) -> Response:
    """Give the request an id (answered in X-Request-ID), then count, time and log it."""
    info = RequestInfo(request_id(request.headers.get(REQUEST_ID_HEADER)))
    token = current_request.set(info)
    start = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        response.headers[REQUEST_ID_HEADER] = info.id
        return response
    finally:
        seconds = time.perf_counter() - start
        route = _route_of(request)
        metrics.requests.labels(method=request.method, route=route, status=str(status)).inc()
        metrics.request_seconds.labels(route=route).observe(seconds)
        access_log.info(
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                }
            },
        )
        current_request.reset(token)
