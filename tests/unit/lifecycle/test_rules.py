from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from flexnet.lifecycle.rules import (
    BERLIN,
    automatic_lock_instant,
    exception_end_instant,
    quarter_start,
    termination_last_day,
    termination_lock_instant,
)
from flexnet.models import TerminationBy


def berlin_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("ended", "locked_from"),
    [
        # The examples of the customer's rule (REQUIREMENTS.md, issue 7).
        (date(2026, 5, 15), date(2027, 7, 1)),
        (date(2026, 3, 31), date(2027, 4, 1)),
        (date(2026, 12, 31), date(2028, 1, 1)),
        # Every month of a year: the quarter of the end does not count.
        (date(2026, 1, 1), date(2027, 4, 1)),
        (date(2026, 2, 14), date(2027, 4, 1)),
        (date(2026, 4, 1), date(2027, 7, 1)),
        (date(2026, 6, 30), date(2027, 7, 1)),
        (date(2026, 7, 1), date(2027, 10, 1)),
        (date(2026, 8, 31), date(2027, 10, 1)),
        (date(2026, 9, 30), date(2027, 10, 1)),
        (date(2026, 10, 1), date(2028, 1, 1)),
        (date(2026, 11, 23), date(2028, 1, 1)),
        # Leap days.
        (date(2024, 2, 29), date(2025, 4, 1)),
        (date(2027, 11, 30), date(2029, 1, 1)),
        # DST transitions (last Sundays of March and October) do not move the instant.
        (date(2026, 3, 29), date(2027, 4, 1)),
        (date(2026, 10, 25), date(2028, 1, 1)),
    ],
)
def test_lock_four_quarters_after_the_quarter_of_the_end(ended: date, locked_from: date) -> None:
    assert automatic_lock_instant(ended) == berlin_midnight(locked_from)


def test_lock_instant_is_midnight_berlin_in_summer_and_winter_time() -> None:
    summer = automatic_lock_instant(date(2026, 5, 15))  # 2027-07-01, CEST
    winter = automatic_lock_instant(date(2026, 12, 31))  # 2028-01-01, CET

    assert summer.utcoffset() == timedelta(hours=2)
    assert winter.utcoffset() == timedelta(hours=1)
    assert (summer.hour, summer.minute) == (winter.hour, winter.minute) == (0, 0)


def test_number_of_quarters_is_configurable() -> None:
    assert automatic_lock_instant(date(2026, 5, 15), quarters=1) == berlin_midnight(
        date(2026, 10, 1)
    )
    assert automatic_lock_instant(date(2026, 5, 15), quarters=8) == berlin_midnight(
        date(2028, 7, 1)
    )


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2200, 12, 31)))
def test_lock_instant_is_a_quarter_start_between_12_and_15_months_later(ended: date) -> None:
    instant = automatic_lock_instant(ended)
    day = instant.date()

    assert instant.tzinfo is BERLIN
    assert instant.time() == time.min
    assert day == quarter_start(day)
    assert ended + relativedelta(months=12) < day <= ended + relativedelta(months=15)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2200, 12, 31)))
def test_last_day_with_access_is_the_end_of_a_quarter(ended: date) -> None:
    last_day = automatic_lock_instant(ended).date() - timedelta(days=1)

    assert (last_day.month, last_day.day) in {(3, 31), (6, 30), (9, 30), (12, 31)}


def test_exception_grants_access_through_its_last_day() -> None:
    assert exception_end_instant(date(2027, 12, 31)) == berlin_midnight(date(2028, 1, 1))


@pytest.mark.parametrize(
    ("by", "notice", "requested", "last_day"),
    [
        # Member or third party: two weeks after the notice arrived, or later if asked.
        (TerminationBy.MEMBER, date(2026, 11, 23), None, date(2026, 12, 7)),
        (TerminationBy.MEMBER, date(2026, 12, 31), None, date(2027, 1, 14)),
        (TerminationBy.MEMBER, date(2026, 11, 23), date(2026, 12, 31), date(2026, 12, 31)),
        (TerminationBy.MEMBER, date(2026, 11, 23), date(2026, 11, 30), date(2026, 12, 7)),
        # The association: eight weeks to the end of a quarter.
        (TerminationBy.ASSOCIATION, date(2026, 8, 5), None, date(2026, 9, 30)),  # exactly 8 weeks
        (TerminationBy.ASSOCIATION, date(2026, 8, 6), None, date(2026, 12, 31)),
        (
            TerminationBy.ASSOCIATION,
            date(2026, 9, 30),
            None,
            date(2026, 12, 31),
        ),  # quarter's last day
        (TerminationBy.ASSOCIATION, date(2026, 11, 5), None, date(2026, 12, 31)),
        (TerminationBy.ASSOCIATION, date(2026, 11, 6), None, date(2027, 3, 31)),  # over the year
        (TerminationBy.ASSOCIATION, date(2026, 1, 1), date(2026, 8, 1), date(2026, 9, 30)),
        (TerminationBy.EXTRAORDINARY, date(2026, 11, 23), None, None),
    ],
)
def test_termination_last_day(
    by: TerminationBy, notice: date, requested: date | None, last_day: date | None
) -> None:
    assert termination_last_day(by, notice, requested) == last_day


def test_access_ends_with_the_last_day() -> None:
    assert termination_lock_instant(date(2026, 12, 31)) == berlin_midnight(date(2027, 1, 1))


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_association_notice_always_ends_a_quarter_at_least_eight_weeks_on(notice: date) -> None:
    last = termination_last_day(TerminationBy.ASSOCIATION, notice)
    assert last is not None
    assert (last + timedelta(days=1)).day == 1 and (last + timedelta(days=1)).month in (1, 4, 7, 10)
    assert last - notice >= timedelta(weeks=8)
    assert last - notice < timedelta(weeks=8) + timedelta(days=92)
