"""Case index saves are atomic per worker and rebuilds do not stall searches; theme periods are bounded
and built off the request threads."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from service.theme_cache import MAX_PERIOD_DAYS, ThemeCache, default_period
from triage.cases.intake import NewSubmission, receive
from triage.cases.pipeline import Pipeline
from triage.cases.theme_report import ThemeReport
from triage.errors import Busy, InvalidInput
from triage.nlp.agency_router import AgencyRouter
from triage.nlp.duplicates import DuplicateIndex
from triage.store.case_index import CaseIndex
from triage.store.db import Database

TOPICS = [
    "Đường ngập nước sau mưa lớn ở phường 5",
    "Hồ sơ hoàn thuế thu nhập cá nhân chậm",
    "Đèn đường không sáng trên quốc lộ 1",
    "Cấp giấy phép kinh doanh quá hạn",
    "Trường học thiếu giáo viên tiếng Anh",
    "Bệnh viện huyện quá tải bệnh nhân",
]


@pytest.fixture
def filled(db: Database, embedder: Any) -> Database:
    pipeline = Pipeline(embedder=embedder, agency_router=AgencyRouter(embedder=embedder).fit(), similar=CaseIndex(db))
    for title in TOPICS:
        receive(
            db, NewSubmission(kind="phan_anh", submitter_type="citizen", title=title, content=title), pipeline=pipeline
        )
    return db


def test_workers_saving_at_once_leave_one_whole_index(filled: Database, tmp_path: Path) -> None:
    folder = tmp_path / "index" / "cases"
    workers = [CaseIndex(filled, folder=folder).open() for _ in range(3)]
    errors: list[BaseException] = []

    def save_many(index: CaseIndex) -> None:
        try:
            for _ in range(15):
                index.save()
        except BaseException as exc:  # the old fixed ".tmp" names: another worker's rename took the file
            errors.append(exc)

    threads = [threading.Thread(target=save_many, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], [repr(e) for e in errors]
    reader = CaseIndex(filled, folder=folder)
    assert reader.load() and len(reader) == len(TOPICS) == DuplicateIndex.manifest(folder.resolve())["count"]
    reader.prune_after_s = 0.0  # copies are removed a minute after they were written; here at once
    reader.save()
    assert [p.name for p in folder.parent.glob("cases.*")] == [folder.resolve().name]


class _Gated(CaseIndex):
    """A case index whose rebuild pauses in its database read until the test lets it go on."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.armed = False
        self.reading = threading.Event()
        self.go_on = threading.Event()
        self.finished = threading.Event()

    def _first_vectors(self, s: Any, case_ids: list[int] | None) -> tuple[list[int], list[np.ndarray]]:
        if self.armed and case_ids is None:
            self.reading.set()
            self.go_on.wait(timeout=20)  # a guard against a hang, not a pause for timing: set by the test
        return super()._first_vectors(s, case_ids)

    def rebuild(self) -> int:
        try:
            return super().rebuild()
        finally:
            if self.armed:
                self.finished.set()


def test_a_rebuild_does_not_hold_searches(filled: Database, embedder: Any) -> None:
    index = _Gated(filled).open()
    probe = np.asarray(embedder.encode([TOPICS[1]])[0], dtype=np.float32)
    index.armed = True
    rebuild = threading.Thread(target=index.rebuild)
    rebuild.start()
    assert index.reading.wait(timeout=20)
    hits = index.search(probe, 3)  # the old rebuild held the lock this waits on until it was done
    answered_during_rebuild = not index.finished.is_set()
    index.go_on.set()
    rebuild.join()
    assert answered_during_rebuild and hits and hits[0][1] > 0.9
    assert len(index) == len(TOPICS) and index.search(probe, 1)[0][0] == hits[0][0]


def _svc() -> Any:
    """The two things ``default_period`` reads from the service state: the clock and ``theme_weeks``."""
    return SimpleNamespace(now=lambda: datetime(2026, 6, 1, 3, tzinfo=UTC), settings=SimpleNamespace(theme_weeks=12))


def test_theme_periods_are_bounded() -> None:
    svc = _svc()
    with pytest.raises(InvalidInput, match="at most 366 days"):
        default_period(svc, date(2012, 1, 1), date(2026, 5, 31))  # the old code clustered any span of 2000..2100
    with pytest.raises(InvalidInput, match="must lie between"):
        default_period(svc, date(2000, 1, 1), date(2000, 1, 31))
    with pytest.raises(InvalidInput, match="must lie between"):
        default_period(svc, date(2099, 1, 1), date(2099, 12, 31))
    start, end = default_period(svc, date(2025, 6, 1), None)
    assert (end - start).days + 1 == MAX_PERIOD_DAYS
    assert default_period(svc, None, None) == (date(2026, 3, 10), date(2026, 6, 1))


def test_reports_are_built_off_the_calling_thread_and_queued_boundedly(db: Database) -> None:
    cache = ThemeCache(max_pending=1)
    built_on: list[str] = []
    release = threading.Event()

    def build() -> ThemeReport:
        built_on.append(threading.current_thread().name)
        release.wait(timeout=20)
        return cast(ThemeReport, object())  # the cache keeps whatever the builder returns

    first = cache.future(db, date(2026, 1, 1), date(2026, 1, 31), build)
    with pytest.raises(Busy):  # a second distinct period while the builder's queue is full
        cache.future(db, date(2025, 1, 1), date(2025, 1, 31), build)
    assert cache.future(db, date(2026, 1, 1), date(2026, 1, 31), build) is first  # the same period: joins it
    release.set()
    first.result(timeout=20)
    assert built_on and built_on[0].startswith("theme-report") and threading.current_thread().name not in built_on
    assert cache.get(db, date(2026, 1, 1), date(2026, 1, 31), build) is first.result() and cache.builds == 1
