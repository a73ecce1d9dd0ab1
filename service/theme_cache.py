"""Theme reports of a period for the API and the analyst page, kept so repeated views do not cluster again.

``period_report`` is the one way the service gets a report: both ``GET /api/v1/themes`` and the
reports page call it, so neither imports the other.

A report is keyed by its period, its options and a fingerprint of the period's data (how many
submissions, the last id, the last case change): a new submission or a re-routed case in the
period makes a new key, so a cached report is never stale. Building is serialised per key: two
analysts opening the same period at once cluster it once.

Reports are built off the request threads, by the cache's own single builder thread: clustering
(seconds of CPU) never takes a request thread, at most one report is built at a time, and at most
``max_pending`` distinct periods wait (more is ``Busy``: 503, try again). The API awaits the build
without holding any thread. A period is at most ``MAX_PERIOD_DAYS`` long, from ``EARLIEST`` to a
year ahead (422 otherwise).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import date, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from triage.cases.calendar import to_local_date
from triage.cases.theme_report import (
    ThemeReport,
    build_report,
    keep_themes,
    known_themes,
    load_period,
    period_version,
)
from triage.errors import Busy, InvalidInput
from triage.store.db import Database

if TYPE_CHECKING:
    from service.state import ServiceState  # the state holds the cache: imported for types only

Key = tuple[Any, ...]


class ThemeCache:
    """A small LRU of reports (most recent ``max_entries`` periods), safe across request threads."""

    def __init__(self, max_entries: int = 16, max_vectors: int = 200_000, max_pending: int = 4) -> None:
        self.max_entries = max_entries
        self.max_pending = max_pending
        self._reports: OrderedDict[Key, ThemeReport] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[Key, Future[ThemeReport]] = {}
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="theme-report")
        self.builds = 0  # how many reports were computed (tests check that a repeat view reuses one)
        # Vectors computed for submissions stored without one (the intake ran without models), by
        # submission id: a later report of an overlapping period does not encode them again.
        self.vectors: dict[int, np.ndarray] = {}
        self.max_vectors = max_vectors

    def get(
        self,
        db: Database,
        since: date,
        until: date,
        build: Callable[[], ThemeReport],
        *,
        options: tuple[Any, ...] = (),
    ) -> ThemeReport:
        """The cached report for this period and data, or ``build()``'s (then kept); waits for the builder."""
        return self.future(db, since, until, build, options=options).result()

    def future(
        self,
        db: Database,
        since: date,
        until: date,
        build: Callable[[], ThemeReport],
        *,
        options: tuple[Any, ...] = (),
    ) -> Future[ThemeReport]:
        """The report as a future: done at once when cached, else built by the builder thread (once per key)."""
        with db.read() as s:
            key: Key = (str(db.engine.url), since, until, options, period_version(s, since, until))
        with self._lock:
            if key in self._reports:
                self._reports.move_to_end(key)
                done: Future[ThemeReport] = Future()
                done.set_result(self._reports[key])
                return done
            pending = self._pending.get(key)
            if pending is not None:
                return pending
            if len(self._pending) >= self.max_pending:
                raise Busy(
                    f"{len(self._pending)} theme reports are being computed; try again in a minute "
                    "(recent periods are answered from the cache)"
                )
            pending = self._builder.submit(self._build, key, build)
            self._pending[key] = pending
            return pending

    def _build(self, key: Key, build: Callable[[], ThemeReport]) -> ThemeReport:
        try:
            report = build()
        finally:
            with self._lock:
                self._pending.pop(key, None)
        with self._lock:
            self.builds += 1
            self._reports[key] = report
            self._reports.move_to_end(key)
            while len(self._reports) > self.max_entries:
                self._reports.popitem(last=False)
        return report

    def remember(self, vectors: dict[int, np.ndarray]) -> None:
        """Keep encoded vectors of submissions (dropped wholesale past ``max_vectors``: rare, cheap to redo)."""
        with self._lock:
            if len(self.vectors) + len(vectors) > self.max_vectors:
                self.vectors.clear()
            self.vectors.update(vectors)

    def clear(self) -> None:
        with self._lock:
            self._reports.clear()
            self.vectors.clear()


EARLIEST = date(2010, 1, 1)
MAX_PERIOD_DAYS = 366


def default_period(svc: ServiceState, since: date | None, until: date | None) -> tuple[date, date]:
    """[since, until]: by default the ``theme_weeks`` weeks ending today; checked for range, order and length.

    At most ``MAX_PERIOD_DAYS`` days (a default of more weeks is cut to that), between ``EARLIEST``
    and a year after today: one request can no longer make the service cluster decades.
    """
    today = to_local_date(svc.now())
    latest = today + timedelta(days=MAX_PERIOD_DAYS)
    until = until or today
    for day in (since, until):
        if day is not None and not EARLIEST <= day <= latest:
            raise InvalidInput(f"dates must lie between {EARLIEST} and {latest}, got {day}")
    weeks = timedelta(weeks=svc.settings.theme_weeks)
    since = since or max(EARLIEST, until - min(weeks, timedelta(days=MAX_PERIOD_DAYS)) + timedelta(days=1))
    if since > until:
        raise InvalidInput(f"since ({since}) is after until ({until})")
    if (until - since).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidInput(
            f"a theme report covers at most {MAX_PERIOD_DAYS} days; {since}..{until} is {(until - since).days + 1}"
        )
    return since, until


def period_report(svc: ServiceState, since: date, until: date) -> ThemeReport:
    """The theme report of a period, computed once per period and data version (``svc.themes``).

    Submissions stored without a vector are encoded (at most ``theme_max_encode`` per build) and
    their vectors kept, so an overlapping period does not encode them again.
    """
    return period_future(svc, since, until).result()


def _build(svc: ServiceState, since: date, until: date) -> ThemeReport:
    s = svc.settings
    with svc.db.read() as session:
        items = load_period(session, since, until)
        known = known_themes(session, since, until)
    cached = svc.themes.vectors
    items = [it if it.embedding is not None else replace(it, embedding=cached.get(it.submission_id)) for it in items]
    missing = [i for i, it in enumerate(items) if it.embedding is None][: s.theme_max_encode]
    if missing:
        vecs = svc.pipeline.embedder.encode([items[i].text for i in missing])
        svc.themes.remember({items[i].submission_id: v for i, v in zip(missing, vecs, strict=True)})
        for i, v in zip(missing, vecs, strict=True):
            items[i] = replace(items[i], embedding=v)
    report = build_report(
        items,
        since,
        until,
        window=s.theme_window_weeks,
        min_submissions=s.theme_min_submissions,
        alpha=s.theme_alpha,
        min_growth=s.theme_min_growth,
        min_size=s.theme_min_size,
        generated_at=svc.now(),
        # the catalogue index the intake already holds: fields of systemic themes' unrouted cases
        catalogue=getattr(svc.pipeline.agency_router, "catalogue_", None),
        known=known,
    )
    if report.known:  # next week's report finds these themes again under the same ids and labels
        svc.db.transaction(lambda session: keep_themes(session, report))
    return report


def period_future(svc: ServiceState, since: date, until: date) -> Future[ThemeReport]:
    """``period_report`` as a future of the cache's builder thread (await it with ``asyncio.wrap_future``)."""
    s = svc.settings
    options = (s.theme_window_weeks, s.theme_min_submissions, s.theme_alpha, s.theme_min_growth, s.theme_min_size)
    return svc.themes.future(svc.db, since, until, partial(_build, svc, since, until), options=options)


async def period_report_async(svc: ServiceState, since: date, until: date) -> ThemeReport:
    """The report without holding a request thread: the cache key is read in a worker, the build awaited."""
    import asyncio

    from anyio.to_thread import run_sync

    return await asyncio.wrap_future(await run_sync(period_future, svc, since, until))


def latest_report(svc: ServiceState, until: date) -> ThemeReport | None:
    """The report of the ``theme_weeks`` weeks to ``until`` (the analyst page's); None when it has no themes.

    None as well for a period outside the bounds or while the builder is full: the page shows its figures anyway.
    """
    span = min(timedelta(weeks=svc.settings.theme_weeks), timedelta(days=MAX_PERIOD_DAYS))
    try:
        since, end = default_period(svc, until - span + timedelta(days=1), until)
        report = period_report(svc, since, end)
    except (InvalidInput, Busy):
        return None
    return report if report.themes else None
