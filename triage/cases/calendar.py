"""Vietnamese working days, the unit of every handling deadline.

A day is a working day unless it is a Saturday or Sunday, a public holiday from the ``holidays``
package's Vietnam calendar (Labor Code 2019 Art. 112, Tết, compensatory days, the swaps it knows),
or an official extra day off decided by the Government. Make-up Saturdays (ngày làm bù) are working
days. The package lags behind the Government's yearly decisions, so ``triage/data/vn_days_off.json``
adds the swaps confirmed for 2025-2026 and callers can add more without a release.

Deadline rule (``add_working_days``): as for time limits in Bộ luật Dân sự 2015 Art. 147, the day of
receipt is not counted; counting starts on the first working day after it, and the deadline is the
n-th working day counted. All dates are local dates in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from triage.errors import InvalidInput

__all__ = [
    "LOCAL_TZ_NAME",
    "WorkingCalendar",
    "default_calendar",
    "load_days_off",
    "local_tz",
    "to_local_date",
]

LOCAL_TZ_NAME = "Asia/Ho_Chi_Minh"
_ONE_DAY = timedelta(days=1)


@lru_cache(maxsize=1)
def local_tz() -> tzinfo:
    """Asia/Ho_Chi_Minh; a fixed +07:00 where tzdata is missing (Vietnam has kept UTC+7 without DST since 1975)."""
    try:
        return ZoneInfo(LOCAL_TZ_NAME)
    except ZoneInfoNotFoundError:
        return timezone(timedelta(hours=7), "ICT")


def to_local_date(value: date | datetime) -> date:
    """The Vietnamese calendar date of a moment: aware datetimes are converted, naive ones are taken as local."""
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(local_tz())
        return value.date()
    if isinstance(value, date):
        return value
    raise InvalidInput(f"expected a date or datetime, got {type(value).__name__}")


def load_days_off(path: str | Path | None = None) -> tuple[frozenset[date], frozenset[date]]:
    """(extra days off, make-up working days) from the packaged ``vn_days_off.json`` or another file like it."""
    if path is None:
        text = resources.files("triage").joinpath("data").joinpath("vn_days_off.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
        off = frozenset(date.fromisoformat(item["date"]) for item in raw.get("days_off", []))
        work = frozenset(date.fromisoformat(item["date"]) for item in raw.get("working_days", []))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"malformed days-off file {path or 'vn_days_off.json'}: {exc}") from exc
    return off, work


class WorkingCalendar:
    """Working days for Vietnamese state agencies (Monday to Friday, minus holidays, plus make-up Saturdays).

    Precedence, strongest first: ``extra_working_days``, ``extra_days_off``, the package's make-up days,
    the package's holidays, weekends. Package data is loaded per year on first use and cached.
    """

    def __init__(
        self,
        extra_days_off: Iterable[date] = (),
        extra_working_days: Iterable[date] = (),
        *,
        use_package_holidays: bool = True,
    ) -> None:
        self.extra_days_off: frozenset[date] = frozenset(to_local_date(d) for d in extra_days_off)
        self.extra_working_days: frozenset[date] = frozenset(to_local_date(d) for d in extra_working_days)
        both = self.extra_days_off & self.extra_working_days
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise InvalidInput(f"dates listed both as day off and as working day: {listed}")
        self.use_package_holidays = use_package_holidays
        self._lock = threading.Lock()
        self._loaded_years: set[int] = set()
        self._package_days_off: set[date] = set()
        self._package_working_days: set[date] = set()

    @classmethod
    def from_data_file(
        cls,
        path: str | Path | None = None,
        *,
        extra_days_off: Iterable[date] = (),
        extra_working_days: Iterable[date] = (),
        use_package_holidays: bool = True,
    ) -> WorkingCalendar:
        """The package calendar plus the official swaps in ``vn_days_off.json`` (or ``path``); the given extras win."""
        file_off, file_work = load_days_off(path)
        user_off = frozenset(to_local_date(d) for d in extra_days_off)
        user_work = frozenset(to_local_date(d) for d in extra_working_days)
        return cls(
            (file_off - user_work) | user_off,
            (file_work - user_off) | user_work,
            use_package_holidays=use_package_holidays,
        )

    def _ensure_year(self, year: int) -> None:
        """Load the package's holidays for ``year`` and its neighbours (a swap can cross New Year)."""
        if year in self._loaded_years or not self.use_package_holidays:
            return
        import holidays  # deferred: only when a year is first needed, and only if the package is used

        with self._lock:
            for y in (year - 1, year, year + 1):
                if y in self._loaded_years or not 1 <= y <= 9999:
                    continue
                cal = holidays.country_holidays("VN", years=y)
                self._package_days_off.update(cal.keys())
                self._package_working_days.update(getattr(cal, "weekend_workdays", ()))
                self._loaded_years.add(y)

    def is_working_day(self, d: date | datetime) -> bool:
        """True when state agencies work on this (local) date."""
        day = to_local_date(d)
        if day in self.extra_working_days:
            return True
        if day in self.extra_days_off:
            return False
        self._ensure_year(day.year)
        if day in self._package_working_days:
            return True
        if day in self._package_days_off:
            return False
        return day.weekday() < 5

    def next_working_day(self, d: date | datetime) -> date:
        """The first working day strictly after ``d``."""
        day = to_local_date(d) + _ONE_DAY
        while not self.is_working_day(day):
            day += _ONE_DAY
        return day

    def add_working_days(self, start: date | datetime, n: int) -> date:
        """Deadline date ``n`` working days after receipt at ``start``.

        The receipt day is never counted; day 1 is the first working day after it, so a Friday receipt
        with n=1 is due on Monday. n=0 gives ``start`` itself when it is a working day, else the next one.
        """
        if n < 0:
            raise InvalidInput(f"number of working days must be >= 0, got {n}")
        day = to_local_date(start)
        if n == 0:
            return day if self.is_working_day(day) else self.next_working_day(day)
        for _ in range(n):
            day = self.next_working_day(day)
        return day

    def working_days_between(self, a: date | datetime, b: date | datetime) -> int:
        """Working days in (a, b]; negative (the count in (b, a]) when b is before a."""
        start, end = to_local_date(a), to_local_date(b)
        if end < start:
            return -self.working_days_between(end, start)
        count = 0
        day = start + _ONE_DAY
        while day <= end:
            count += self.is_working_day(day)
            day += _ONE_DAY
        return count


@lru_cache(maxsize=1)
def default_calendar() -> WorkingCalendar:
    """The package calendar plus the packaged official swaps; shared, since it only caches immutable facts."""
    return WorkingCalendar.from_data_file()
