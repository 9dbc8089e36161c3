"""Calendar days that people type: one format and one range for the UI, the API and the
CLI.

The range keeps every date rule (notice periods, quarter ends, § 10.3) far from the ends
of Python's calendar: a year 9999 would overflow ``day + timedelta`` there. FlexNet
began long after 2000, and a day after 2099 is a typo, not a plan; an exception "for
good" is written as 31.12.2099.
"""

from __future__ import annotations

import re
from datetime import date

from flexnet.errors import ValidationError

EARLIEST = date(2000, 1, 1)
LATEST = date(2099, 12, 31)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(value: str, *, field: str) -> date:
    """A day written as JJJJ-MM-TT, within the range."""
    text = value.strip()
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{field}: {text!r} ist kein gültiges Datum (JJJJ-MM-TT)") from None
    return check_day(day, field=field)


def check_day(day: date, *, field: str) -> date:
    """``day`` itself, if it lies within the range."""
    if not EARLIEST <= day <= LATEST:
        raise ValidationError(
            f"{field}: {day:%d.%m.%Y} liegt außerhalb des möglichen Zeitraums "
            f"({EARLIEST:%d.%m.%Y} bis {LATEST:%d.%m.%Y})"
        )
    return day
