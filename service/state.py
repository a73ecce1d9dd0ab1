"""What the running service holds: settings, database, models, limiter, token key, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

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

if TYPE_CHECKING:
    from service.learning import ModelManager
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

    def now(self) -> datetime:
        return self.clock()


def service_state(request: Request) -> ServiceState:
    svc: ServiceState = request.app.state.svc
    return svc
