"""Working days of Sachsen-Anhalt for the split shipment's delay (§ 3.2)."""

from __future__ import annotations

from datetime import date

import pytest

from flexnet.provisioning.workdays import add_working_days, is_working_day


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 11, 23), 3, date(2026, 11, 26)),  # Monday: plain week
        (date(2026, 11, 26), 3, date(2026, 12, 1)),  # Thursday: over the weekend
        (date(2025, 10, 29), 3, date(2025, 11, 4)),  # Reformationstag, Friday 31 October
        (date(2027, 1, 4), 3, date(2027, 1, 8)),  # Heilige Drei Könige, only some Länder
        (date(2026, 12, 23), 3, date(2026, 12, 29)),  # both Christmas holidays
        (date(2027, 3, 24), 3, date(2027, 3, 31)),  # Karfreitag and Ostermontag
    ],
)
def test_add_working_days(start: date, days: int, expected: date) -> None:
    assert add_working_days(start, days) == expected


def test_land_specific_holidays() -> None:
    assert not is_working_day(date(2027, 1, 6))  # Heilige Drei Könige in Sachsen-Anhalt
    assert not is_working_day(date(2025, 10, 31))  # Reformationstag
    assert is_working_day(date(2025, 11, 19))  # Buß- und Bettag is Saxony's, not ours
    assert is_working_day(date(2026, 12, 24))  # Heiligabend is no public holiday
