"""Theme reports kept per period, so that repeated views of one period do not cluster again.

A report is keyed by its period, its options and a fingerprint of the period's data (how many
submissions, the last id, the last case change): a new submission or a re-routed case in the
period makes a new key, so a cached report is never stale. Building is serialised per key: two
analysts opening the same period at once cluster it once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np

from triage.cases.theme_report import period_version
from triage.store.db import Database

Key = tuple[Any, ...]


class ThemeCache:
    """A small LRU of report dicts (most recent ``max_entries`` periods), safe across request threads."""

    def __init__(self, max_entries: int = 16, max_vectors: int = 200_000) -> None:
        self.max_entries = max_entries
        self._reports: OrderedDict[Key, dict[str, Any]] = OrderedDict()
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
        build: Callable[[], dict[str, Any]],
        *,
        options: tuple[Any, ...] = (),
    ) -> dict[str, Any]:
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
