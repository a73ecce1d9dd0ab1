"""Theme reports of a period for the API and the analyst page, kept so repeated views do not cluster again.

``period_report`` is the one way the service gets a report: both ``GET /api/v1/themes`` and the
reports page call it, so neither imports the other.

A report is keyed by its period, its options and a fingerprint of the period's data (how many
submissions, the last id, the last case change): a new submission or a re-routed case in the
period makes a new key, so a cached report is never stale. Building is serialised per key: two
analysts opening the same period at once cluster it once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from triage.cases.calendar import to_local_date
from triage.cases.theme_report import ThemeReport, build_report, load_period, period_version
from triage.errors import InvalidInput
from triage.store.db import Database

if TYPE_CHECKING:
    from service.state import ServiceState  # the state holds the cache: imported for types only

Key = tuple[Any, ...]


class ThemeCache:
    """A small LRU of reports (most recent ``max_entries`` periods), safe across request threads."""

    def __init__(self, max_entries: int = 16, max_vectors: int = 200_000) -> None:
        self.max_entries = max_entries
        self._reports: OrderedDict[Key, ThemeReport] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Key, threading.Lock] = {}
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
        """The cached report for this period and data, or ``build()``'s (then kept)."""
        with db.read() as s:
            key: Key = (str(db.engine.url), since, until, options, period_version(s, since, until))
        with self._lock:
            if key in self._reports:
                self._reports.move_to_end(key)
                return self._reports[key]
            gate = self._building.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._reports:
                    return self._reports[key]
            report = build()
            with self._lock:
                self.builds += 1
                self._reports[key] = report
                self._reports.move_to_end(key)
                while len(self._reports) > self.max_entries:
                    self._reports.popitem(last=False)
                self._building.pop(key, None)
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


EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


def default_period(svc: ServiceState, since: date | None, until: date | None) -> tuple[date, date]:
    """[since, until]: by default the ``theme_weeks`` weeks ending today; checked for range and order."""
    until = until or to_local_date(svc.now())
    for day in (since, until):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise InvalidInput(f"dates must lie between {EARLIEST} and {LATEST}, got {day}")
    since = since or max(EARLIEST, until - timedelta(weeks=svc.settings.theme_weeks) + timedelta(days=1))
    if since > until:
        raise InvalidInput(f"since ({since}) is after until ({until})")
    return since, until


def period_report(svc: ServiceState, since: date, until: date) -> ThemeReport:
    """The theme report of a period, computed once per period and data version (``svc.themes``).

    Submissions stored without a vector are encoded (at most ``theme_max_encode`` per build) and
    their vectors kept, so an overlapping period does not encode them again.
    """
    s = svc.settings
    options = (s.theme_window_weeks, s.theme_min_submissions, s.theme_alpha, s.theme_min_growth, s.theme_min_size)

    def build() -> ThemeReport:
        with svc.db.read() as session:
            items = load_period(session, since, until)
        cached = svc.themes.vectors
        items = [
            it if it.embedding is not None else replace(it, embedding=cached.get(it.submission_id)) for it in items
        ]
        missing = [i for i, it in enumerate(items) if it.embedding is None][: s.theme_max_encode]
        if missing:
            vecs = svc.pipeline.embedder.encode([items[i].text for i in missing])
            svc.themes.remember({items[i].submission_id: v for i, v in zip(missing, vecs, strict=True)})
            for i, v in zip(missing, vecs, strict=True):
                items[i] = replace(items[i], embedding=v)
        return build_report(
            items,
            since,
            until,
            window=s.theme_window_weeks,
            min_submissions=s.theme_min_submissions,
            alpha=s.theme_alpha,
            min_growth=s.theme_min_growth,
            min_size=s.theme_min_size,
            generated_at=svc.now(),
        )

    return svc.themes.get(svc.db, since, until, build, options=options)


def latest_report(svc: ServiceState, until: date) -> ThemeReport | None:
    """The report of the ``theme_weeks`` weeks to ``until`` (the analyst page's); None when it has no themes."""
    since, end = default_period(svc, until - timedelta(weeks=svc.settings.theme_weeks) + timedelta(days=1), until)
    report = period_report(svc, since, end)
    return report if report.themes else None
