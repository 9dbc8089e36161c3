"""Pure date rules of the terms of use. No database, no clock: dates in, dates out.

Instants are aware datetimes in Europe/Berlin at 00:00 of the day the rule names,
because the terms speak of calendar days and quarters in Germany.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from flexnet.models import TerminationBy

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


MEMBER_NOTICE = timedelta(weeks=2)
ASSOCIATION_NOTICE = timedelta(weeks=8)


def quarter_end(day: date) -> date:
    return quarter_start(day) + relativedelta(months=3) - timedelta(days=1)


def termination_last_day(
    by: TerminationBy, notice_date: date, requested: date | None = None
) -> date | None:
    """§ 10.2: the last day with access after a notice received on ``notice_date``.

    Member or third party: two weeks after the notice, or a later requested day. The
    association: the end of the first quarter that ends at least eight weeks after the
    notice (a notice exactly eight weeks before a quarter end still makes that quarter).
    Extraordinary: None, access ends at once.
    """
    if by is TerminationBy.EXTRAORDINARY:
        return None
    if by is TerminationBy.MEMBER:
        earliest = notice_date + MEMBER_NOTICE
        return max(earliest, requested) if requested else earliest
    earliest = notice_date + ASSOCIATION_NOTICE
    end = quarter_end(earliest)
    if requested and requested > end:
        return quarter_end(requested)  # the association may grant a later quarter end
    return end


def termination_lock_instant(last_day: date) -> datetime:
    """Access ends with the last day: locked from the next day, 00:00 Europe/Berlin."""
    return start_of_day(last_day + timedelta(days=1))
