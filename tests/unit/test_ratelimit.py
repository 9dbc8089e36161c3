from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flexnet import ratelimit
from flexnet.models import RateLimitCounter
from tests.conftest import NOW


def test_limit_holds_within_a_window_and_resets_in_the_next(session: Session) -> None:
    start = NOW.replace(second=0, microsecond=0)

    within = [ratelimit.hit(session, "k", limit=3, window_seconds=60, now=start) for _ in range(4)]
    other_key = ratelimit.hit(session, "other", limit=3, window_seconds=60, now=start)
    next_window = ratelimit.hit(
        session, "k", limit=3, window_seconds=60, now=start + timedelta(seconds=60)
    )

    assert within == [True, True, True, False]
    assert other_key and next_window


def test_purge_removes_old_windows_only(session: Session) -> None:
    ratelimit.hit(session, "old", limit=1, window_seconds=60, now=NOW - timedelta(days=2))
    ratelimit.hit(session, "new", limit=1, window_seconds=60, now=NOW)

    removed = ratelimit.purge(session, older_than=timedelta(days=1), now=NOW)

    assert removed == 1
    assert session.scalar(select(func.count()).select_from(RateLimitCounter)) == 1
