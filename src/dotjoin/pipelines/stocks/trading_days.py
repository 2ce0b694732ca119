"""The NYSE trading calendar (2000 onwards): which dates have a daily bar for US symbols.

Rules: weekends; New Year's Day (Sunday -> Monday; a Saturday closes nothing — NYSE does not close the
Friday before); Martin Luther King Jr. Day (3rd Monday of January); Washington's Birthday (3rd Monday of
February); Good Friday; Memorial Day (last Monday of May); Juneteenth (from 2022); Independence Day;
Labor Day (1st Monday of September); Thanksgiving (4th Thursday of November); Christmas — fixed dates
move to Friday when on a Saturday and to Monday when on a Sunday — plus the unscheduled closures since
2000 (September 11, 2001, national days of mourning, Hurricane Sandy).

The quality check expects one row per symbol on a trading day and none otherwise, so this calendar is
what makes "0 rows" a pass on Good Friday and a failure on the Thursday after. The local source server
closes on the same days; ``tests/unit/pipelines/stocks`` pins the calendar to NYSE's published lists.
Early closes (1 pm) still produce a bar and are not modelled.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

#: Unscheduled full-day closures (weather, national mourning, September 11).
SPECIAL_CLOSURES: frozenset[date] = frozenset(
    {
        date(2001, 9, 11),
        date(2001, 9, 12),
        date(2001, 9, 13),
        date(2001, 9, 14),
        date(2004, 6, 11),  # President Reagan
        date(2007, 1, 2),  # President Ford
        date(2012, 10, 29),  # Hurricane Sandy
        date(2012, 10, 30),
        date(2018, 12, 5),  # President G. H. W. Bush
        date(2025, 1, 9),  # President Carter
    }
)


def easter(year: int) -> date:
    """Western Easter Sunday (the anonymous Gregorian algorithm).

    >>> easter(2024), easter(2025)
    (datetime.date(2024, 3, 31), datetime.date(2025, 4, 20))
    """
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday_shift = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * weekday_shift) // 433
    month = (h + weekday_shift - 7 * m + 90) // 25
    day = (h + weekday_shift - 7 * m + 33 * month + 19) % 32
    return date(year, month, day)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The ``n``-th ``weekday`` (Monday = 0) of a month; ``n = -1`` is the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    """A fixed-date holiday on a weekend is observed on the nearest weekday."""
    return day + timedelta(days={5: -1, 6: 1}.get(day.weekday(), 0))


@cache
def holidays(year: int) -> frozenset[date]:
    """The weekday dates of ``year`` the NYSE is closed.

    >>> sorted(d.isoformat() for d in holidays(2022))[:3]
    ['2022-01-17', '2022-02-21', '2022-04-15']
    """
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        easter(year) - timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # a Saturday New Year's Day is not moved to the previous Friday
        days.add(_observed(new_year))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))
    days.update(d for d in SPECIAL_CLOSURES if d.year == year)
    return frozenset(days)


def is_trading_day(day: date) -> bool:
    """Whether the NYSE trades on ``day``.

    >>> is_trading_day(date(2024, 1, 2)), is_trading_day(date(2024, 1, 6)), is_trading_day(date(2024, 3, 29))
    (True, False, False)
    """
    return day.weekday() < 5 and day not in holidays(day.year)


def trading_days(start: date, end: date) -> list[date]:
    """The trading days of ``start..end`` (inclusive).

    >>> len(trading_days(date(2024, 1, 1), date(2024, 12, 31)))
    252
    """
    return [d for n in range((end - start).days + 1) if is_trading_day(d := start + timedelta(days=n))]
