"""Working days in Sachsen-Anhalt: Monday to Friday without the Land's public holidays.

The split shipment (§ 3.2) counts its delay in these days; the holidays come from the
``holidays`` package (subdivision ST: Heilige Drei Könige and Reformationstag included).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

import holidays

SUBDIVISION = "ST"


@cache
def _holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("DE", subdiv=SUBDIVISION, years=year))


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


def add_working_days(start: date, days: int) -> date:
    """The day that lies ``days`` working days after ``start`` (``start`` itself not counted)."""
    day = start
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day
