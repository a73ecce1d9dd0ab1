"""Reporting periods as short stable strings: "2025" (year), "2025-Q3" (quarter), "2025-M07" (month).

A period has an index on its own frequency (so a trend is fitted on evenly spaced points), a first and
a last day, and neighbours; the string sorts in time order within one frequency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from triage.errors import InvalidInput

Frequency = Literal["month", "quarter", "year"]
_PATTERN = re.compile(r"^(\d{4})(?:-(Q[1-4]|M(?:0[1-9]|1[0-2])))?$")
PER_YEAR: dict[str, int] = {"year": 1, "quarter": 4, "month": 12}


@dataclass(frozen=True, order=True)
class Period:
    """One reporting period: its frequency and its index (years since 0 in that frequency's unit)."""

    frequency: Frequency
    index: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """'2025-Q3' -> quarter; InvalidInput for anything else."""
        m = _PATTERN.match(str(text).strip())
        if m is None:
            raise InvalidInput(f"period {text!r}: expected YYYY, YYYY-Qn or YYYY-Mmm (e.g. 2025-Q3)")
        year, part = int(m.group(1)), m.group(2)
        if part is None:
            return cls("year", year)
        if part.startswith("Q"):
            return cls("quarter", year * 4 + int(part[1]) - 1)
        return cls("month", year * 12 + int(part[1:]) - 1)

    @classmethod
    def containing(cls, day: date, frequency: Frequency) -> Period:
        """The period of ``frequency`` that contains ``day``."""
        if frequency == "year":
            return cls("year", day.year)
        if frequency == "quarter":
            return cls("quarter", day.year * 4 + (day.month - 1) // 3)
        return cls("month", day.year * 12 + day.month - 1)

    @property
    def year(self) -> int:
        return self.index // PER_YEAR[self.frequency]

    def __str__(self) -> str:
        if self.frequency == "year":
            return f"{self.index:04d}"
        if self.frequency == "quarter":
            return f"{self.year:04d}-Q{self.index % 4 + 1}"
        return f"{self.year:04d}-M{self.index % 12 + 1:02d}"

    @property
    def label(self) -> str:
        """Vietnamese label: 'Quý 3/2025', 'Tháng 7/2025', 'Năm 2025'."""
        if self.frequency == "year":
            return f"Năm {self.year}"
        if self.frequency == "quarter":
            return f"Quý {self.index % 4 + 1}/{self.year}"
        return f"Tháng {self.index % 12 + 1}/{self.year}"

    def first_day(self) -> date:
        if self.frequency == "year":
            return date(self.year, 1, 1)
        if self.frequency == "quarter":
            return date(self.year, (self.index % 4) * 3 + 1, 1)
        return date(self.year, self.index % 12 + 1, 1)

    def last_day(self) -> date:
        return self.shift(1).first_day() - timedelta(days=1)

    def shift(self, n: int) -> Period:
        return Period(self.frequency, self.index + n)

    def years_from(self, other: Period) -> float:
        """Signed distance in years (same frequency)."""
        return (self.index - other.index) / PER_YEAR[self.frequency]


def parse(text: str) -> Period:
    return Period.parse(text)


def closed_periods(frequency: Frequency, first: Period, today: date) -> list[Period]:
    """Periods of ``frequency`` from ``first`` whose last day is before ``today`` (they can be reported)."""
    out: list[Period] = []
    p = first
    while p.last_day() < today:
        out.append(p)
        p = p.shift(1)
    return out
