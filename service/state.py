"""What the running service holds: settings, database, models, limiter, token key, clock."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
from fastapi import Request

from service.ratelimit import TrustedProxies
from service.theme_cache import ThemeCache
from triage.cases.calendar import WorkingCalendar, default_calendar
from triage.cases.pipeline import Pipeline
from triage.cases.throttle import LoginThrottle
from triage.cases.workflow import DeadlinePolicy
from triage.config import Settings
from triage.store.db import Database
from triage.store.tables import utcnow

T = TypeVar("T")

if TYPE_CHECKING:
    from service.learning import ModelManager
    from service.observability import Metrics
    from triage.store.case_index import CaseIndex


class Limiter(Protocol):
    """A per-client limit: 0 when the call may go ahead, else whole seconds to wait."""

    def retry_after(self, client: str) -> int: ...


@dataclass
class ServiceState:
    settings: Settings
    db: Database
    pipeline: Pipeline
    limiter: Limiter  # the public intake
    token_secret: str
    policy: DeadlinePolicy
    calendar: WorkingCalendar = field(default_factory=default_calendar)
    clock: Callable[[], datetime] = utcnow
    models: ModelManager | None = None
    themes: ThemeCache = field(default_factory=ThemeCache)
    cases_index: CaseIndex | None = None
    text_limiter: Limiter | None = None  # POST /api/v1/route and /api/v1/similar
    logins: LoginThrottle | None = None
    proxies: TrustedProxies = field(default_factory=lambda: TrustedProxies(""))
    # Lanes for costly blocking work (settings.password_checks, settings.intake_concurrency): made in
    # the lifespan, on the app's event loop (a limiter belongs to one loop).
    password_lane: anyio.CapacityLimiter | None = None
    intake_lane: anyio.CapacityLimiter | None = None
    metrics: Metrics | None = None  # the app's Prometheus registry (service.observability)

    def now(self) -> datetime:
        return self.clock()


async def in_lane(lane: anyio.CapacityLimiter | None, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in a thread, at most ``lane``'s size at once (None: the request pool's limit).

    Waiting calls hold no thread and no CPU, so a flood of one costly kind (logins, submissions) leaves
    the request pool, the cores and the event loop to everyone else. Measured on 2 cores: 8 argon2
    checks at once (4 threads each) took /health from 1.5 ms to 135 ms though none ran on the loop.
    """
    return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=lane)


def service_state(request: Request) -> ServiceState:
    svc: ServiceState = request.app.state.svc
    return svc
