"""Pure date rules of the terms of use. No database, no clock: dates in, dates out.

Instants are aware datetimes in Europe/Berlin at 00:00 of the day the rule names,
because the terms speak of calendar days and quarters in Germany.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

BERLIN = ZoneInfo("Europe/Berlin")
DEFAULT_LOCK_AFTER_QUARTERS = 4


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=BERLIN)


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def automatic_lock_instant(
    activity_ended_on: date, quarters: int = DEFAULT_LOCK_AFTER_QUARTERS
) -> datetime:
    """§ 10.3: locked at the end of the n-th quarter after the quarter of the end.

    The quarter in which the activity ended does not count: ended 2026-05-15 (Q2 2026)
    → access until 2027-06-30, locked from 2027-07-01 00:00 Europe/Berlin.
    """
    first_day_locked = quarter_start(activity_ended_on) + relativedelta(months=3 * (quarters + 1))
    return start_of_day(first_day_locked)


def exception_end_instant(until: date) -> datetime:
    """An exception grants access through ``until``; the lock starts the next day."""
    return start_of_day(until + timedelta(days=1))
