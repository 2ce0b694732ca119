"""The NYSE calendar against NYSE's published holiday lists (independent of the local source)."""

from __future__ import annotations

from datetime import date

import pytest

from dotjoin.pipelines.stocks.trading_days import holidays, is_trading_day, trading_days

# nyse.com "Holidays & Trading Hours", full-day closures only.
PUBLISHED = {
    2021: "01-01 01-18 02-15 04-02 05-31 07-05 09-06 11-25 12-24",
    2022: "01-17 02-21 04-15 05-30 06-20 07-04 09-05 11-24 12-26",  # New Year's on a Saturday: no closure
    2024: "01-01 01-15 02-19 03-29 05-27 06-19 07-04 09-02 11-28 12-25",
    2025: "01-01 01-09 01-20 02-17 04-18 05-26 06-19 07-04 09-01 11-27 12-25",  # 01-09: President Carter
}
TRADING_DAYS_PER_YEAR = {2012: 250, 2021: 252, 2022: 251, 2024: 252, 2025: 250}


@pytest.mark.parametrize("year", sorted(PUBLISHED))
def test_holidays_match_nyse(year: int) -> None:
    expected = {date.fromisoformat(f"{year}-{md}") for md in PUBLISHED[year].split()}
    assert set(holidays(year)) == expected


@pytest.mark.parametrize(("year", "count"), sorted(TRADING_DAYS_PER_YEAR.items()))
def test_trading_days_per_year(year: int, count: int) -> None:
    assert len(trading_days(date(year, 1, 1), date(year, 12, 31))) == count


def test_weekends_and_special_closures() -> None:
    assert not is_trading_day(date(2024, 1, 6)) and not is_trading_day(date(2024, 1, 7))
    assert not is_trading_day(date(2001, 9, 12)) and not is_trading_day(date(2012, 10, 29))
    assert is_trading_day(date(2021, 12, 31))  # the Friday before a Saturday New Year's Day trades
    assert is_trading_day(date(2021, 6, 18))  # Juneteenth only from 2022
