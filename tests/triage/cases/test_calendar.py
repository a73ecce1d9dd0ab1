"""Vietnamese working days: holidays, official swaps, the deadline counting rule, time zones."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import pytest

from triage.cases.calendar import WorkingCalendar, default_calendar, load_days_off, to_local_date
from triage.errors import InvalidInput

D = date


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return default_calendar()


# --- Which days are working days -----------------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [
        # Tết Nguyên đán Bính Ngọ 2026: off Mon 16 to Fri 20 Feb (9 days with the weekends 14/2-22/2).
        D(2026, 2, 16),
        D(2026, 2, 17),
        D(2026, 2, 18),
        D(2026, 2, 19),
        D(2026, 2, 20),
        # Tết Ất Tỵ 2025: Mon 27 to Fri 31 Jan.
        D(2025, 1, 27),
        D(2025, 1, 31),
        # 30/4 and 1/5 2026 (Thu, Fri); Giỗ Tổ 10/3 lunar = Sun 26 Apr 2026, compensated Mon 27 Apr.
        D(2026, 4, 30),
        D(2026, 5, 1),
        D(2026, 4, 27),
        # 2025: Fri 2 May swapped for Sat 26 Apr.
        D(2025, 5, 2),
        # New Year 2026: Thu 1 Jan, and Fri 2 Jan swapped for Sat 10 Jan (12729/VPCP-KGVX) — not in the package.
        D(2026, 1, 1),
        D(2026, 1, 2),
        # National Day: 2025 Mon 1 + Tue 2 Sep; 2026 Tue 1 + Wed 2 Sep and Mon 31 Aug swapped for Sat 22 Aug.
        D(2025, 9, 1),
        D(2025, 9, 2),
        D(2026, 8, 31),
        D(2026, 9, 1),
        D(2026, 9, 2),
        # Plain weekend.
        D(2026, 3, 7),
        D(2026, 3, 8),
    ],
)
def test_days_off(cal: WorkingCalendar, day: date) -> None:
    assert not cal.is_working_day(day)


@pytest.mark.parametrize(
    "day",
    [
        D(2025, 4, 26),  # make-up Saturday for 2 May 2025
        D(2026, 1, 10),  # make-up Saturday for 2 Jan 2026
        D(2026, 8, 22),  # make-up Saturday for 31 Aug 2026
        D(2026, 2, 13),  # Friday before Tết 2026
        D(2026, 2, 23),  # Monday after Tết 2026
        D(2026, 4, 29),  # Wednesday before 30/4
        D(2026, 3, 9),  # ordinary Monday
    ],
)
def test_working_days(cal: WorkingCalendar, day: date) -> None:
    assert cal.is_working_day(day)


def test_package_alone_misses_the_new_year_2026_swap() -> None:
    """The data file exists for a reason: the package does not know the 2026 New Year swap."""
    package_only = WorkingCalendar()
    assert package_only.is_working_day(D(2026, 1, 2))
    assert not package_only.is_working_day(D(2026, 1, 10))
    assert not default_calendar().is_working_day(D(2026, 1, 2))
    assert default_calendar().is_working_day(D(2026, 1, 10))


def test_without_package_only_weekends_and_extras_count() -> None:
    bare = WorkingCalendar(extra_days_off=[D(2026, 3, 10)], use_package_holidays=False)
    assert bare.is_working_day(D(2026, 2, 17))  # Tết, unknown without the package
    assert not bare.is_working_day(D(2026, 3, 10))
    assert not bare.is_working_day(D(2026, 3, 14))


def test_extras_override_the_package() -> None:
    custom = WorkingCalendar(extra_days_off=[D(2026, 3, 10)], extra_working_days=[D(2026, 2, 17), D(2026, 3, 14)])
    assert not custom.is_working_day(D(2026, 3, 10))
    assert custom.is_working_day(D(2026, 2, 17))
    assert custom.is_working_day(D(2026, 3, 14))


def test_from_data_file_extras_win_over_the_file() -> None:
    custom = WorkingCalendar.from_data_file(extra_working_days=[D(2026, 1, 2)], extra_days_off=[D(2026, 1, 10)])
    assert custom.is_working_day(D(2026, 1, 2))
    assert not custom.is_working_day(D(2026, 1, 10))


def test_conflicting_extras_are_refused() -> None:
    with pytest.raises(InvalidInput, match="2026-03-10"):
        WorkingCalendar(extra_days_off=[D(2026, 3, 10)], extra_working_days=[D(2026, 3, 10)])


def test_packaged_data_file_is_consistent() -> None:
    raw = json.loads(resources.files("triage").joinpath("data", "vn_days_off.json").read_text(encoding="utf-8"))
    for item in raw["days_off"]:
        assert date.fromisoformat(item["date"]).weekday() < 5, item  # a day off that was a weekday
        assert item["source"].strip()
    for item in raw["working_days"]:
        assert date.fromisoformat(item["date"]).weekday() == 5, item  # make-up days are Saturdays
        assert item["source"].strip()
    off, work = load_days_off()
    assert D(2026, 2, 16) in off and D(2026, 1, 10) in work
    assert not off & work


def test_custom_and_malformed_data_files(tmp_path: Path) -> None:
    good = tmp_path / "days.json"
    good.write_text(json.dumps({"days_off": [{"date": "2027-02-11"}], "working_days": [{"date": "2027-02-20"}]}))
    custom = WorkingCalendar.from_data_file(good)
    assert not custom.is_working_day(D(2027, 2, 11))
    assert custom.is_working_day(D(2027, 2, 20))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"days_off": [{"date": "11/02/2027"}]}))
    with pytest.raises(InvalidInput, match="malformed"):
        load_days_off(bad)


# --- Deadlines: counting starts the working day after receipt ------------------------------------


@pytest.mark.parametrize(
    ("received", "n", "due"),
    [
        # Tết 2026. Received Fri 13 Feb, 5 working days. Sat 14/Sun 15 weekend, Mon 16-Fri 20 Tết,
        # Sat 21/Sun 22 weekend; then Mon 23 (1), Tue 24 (2), Wed 25 (3), Thu 26 (4), Fri 27 (5).
        (D(2026, 2, 13), 5, D(2026, 2, 27)),
        # 30/4-1/5 2026. Received Wed 29 Apr, 3 days: Thu 30 and Fri 1 off, weekend, Mon 4 (1), Tue 5 (2), Wed 6 (3).
        (D(2026, 4, 29), 3, D(2026, 5, 6)),
        # Received Fri 24 Apr 2026, 5 days: weekend, Mon 27 off (Giỗ Tổ compensated), Tue 28 (1), Wed 29 (2),
        # Thu 30 / Fri 1 off, weekend, Mon 4 (3), Tue 5 (4), Wed 6 May (5).
        (D(2026, 4, 24), 5, D(2026, 5, 6)),
        # Weekend: a Friday or a Saturday receipt with 1 day is due on Monday.
        (D(2026, 3, 6), 1, D(2026, 3, 9)),
        (D(2026, 3, 7), 1, D(2026, 3, 9)),
        # Year end. Received Wed 31 Dec 2025, 2 days: Thu 1 Jan and Fri 2 Jan (swap) off, weekend,
        # Mon 5 (1), Tue 6 Jan 2026 (2).
        (D(2025, 12, 31), 2, D(2026, 1, 6)),
        # Received Thu 31 Dec 2026, 1 day: Fri 1 Jan 2027 off, weekend -> Mon 4 Jan 2027.
        (D(2026, 12, 31), 1, D(2027, 1, 4)),
        # A make-up Saturday counts: received Fri 9 Jan 2026, 1 day -> Sat 10 Jan.
        (D(2026, 1, 9), 1, D(2026, 1, 10)),
        # 2025 swap: received Tue 29 Apr, 1 day: Wed 30, Thu 1, Fri 2 May off, weekend -> Mon 5 May.
        (D(2025, 4, 29), 1, D(2025, 5, 5)),
        # Tết 2025: received Fri 24 Jan, 1 day -> Mon 3 Feb 2025.
        (D(2025, 1, 24), 1, D(2025, 2, 3)),
        # n = 0: the same day when it is a working day, else the next working day.
        (D(2026, 3, 9), 0, D(2026, 3, 9)),
        (D(2026, 2, 14), 0, D(2026, 2, 23)),
    ],
)
def test_add_working_days(cal: WorkingCalendar, received: date, n: int, due: date) -> None:
    assert cal.add_working_days(received, n) == due


def test_add_working_days_refuses_negative(cal: WorkingCalendar) -> None:
    with pytest.raises(InvalidInput):
        cal.add_working_days(D(2026, 3, 9), -1)


def test_datetimes_use_vietnamese_local_date(cal: WorkingCalendar) -> None:
    # 20:00 UTC on Thu 12 Feb is 03:00 on Fri 13 Feb in Hà Nội: due Fri 27 Feb, as in the Tết example.
    assert cal.add_working_days(datetime(2026, 2, 12, 20, 0, tzinfo=UTC), 5) == D(2026, 2, 27)
    # A naive datetime is already local: Thu 12 Feb, so Fri 13 (1) then Mon 23 .. Thu 26 (5).
    assert cal.add_working_days(datetime(2026, 2, 12, 20, 0), 5) == D(2026, 2, 26)
    assert to_local_date(datetime(2026, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))) == D(2026, 1, 2)
    with pytest.raises(InvalidInput):
        to_local_date("2026-01-01")  # type: ignore[arg-type]


def test_next_working_day(cal: WorkingCalendar) -> None:
    assert cal.next_working_day(D(2026, 2, 13)) == D(2026, 2, 23)
    assert cal.next_working_day(D(2026, 3, 9)) == D(2026, 3, 10)  # strictly after, even from a working day


# --- Counting working days between two dates -----------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (D(2026, 2, 13), D(2026, 2, 27), 5),  # across Tết
        (D(2026, 2, 27), D(2026, 2, 13), -5),  # reversed
        (D(2026, 3, 9), D(2026, 3, 9), 0),
        (D(2026, 3, 6), D(2026, 3, 9), 1),  # Fri -> Mon: only Monday
        (D(2026, 3, 7), D(2026, 3, 8), 0),  # Sat -> Sun
        (D(2026, 4, 29), D(2026, 5, 4), 1),  # only Mon 4 May
        # 1 and 2 Jan off, weekend, Mon 5 .. Fri 9 (5), Sat 10 make-up (6), Sun 11 off, Mon 12 (7).
        (D(2025, 12, 31), D(2026, 1, 12), 7),
    ],
)
def test_working_days_between(cal: WorkingCalendar, a: date, b: date, expected: int) -> None:
    assert cal.working_days_between(a, b) == expected


def test_working_days_between_inverts_add_working_days(cal: WorkingCalendar) -> None:
    start = D(2025, 1, 1)
    for offset in range(0, 730, 7):
        received = start + timedelta(days=offset)
        for n in (1, 5, 15):
            due = cal.add_working_days(received, n)
            assert cal.is_working_day(due)
            assert cal.working_days_between(received, due) == n
            assert cal.working_days_between(received, due - timedelta(days=1)) == n - 1
