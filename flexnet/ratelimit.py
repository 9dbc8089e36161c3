"""Fixed-window rate limits counted in the database, so they hold across processes.

One atomic upsert per hit: concurrent requests cannot slip past the limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flexnet.models import RateLimitCounter


def hit(session: Session, key: str, *, limit: int, window_seconds: int, now: datetime) -> bool:
    """Count one hit for ``key``; True while the window's hits stay within ``limit``."""
    window_start = int(now.timestamp()) // window_seconds * window_seconds
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(RateLimitCounter)
        .values(key=key, window_start=window_start, hits=1)
        .on_conflict_do_update(
            index_elements=["key", "window_start"],
            set_={"hits": RateLimitCounter.hits + 1},
        )
        .returning(RateLimitCounter.hits)
    )
    hits = session.execute(statement).scalar_one()
    return hits <= limit


def purge(session: Session, *, older_than: timedelta, now: datetime) -> int:
    """Delete counters of windows that ended long ago (run by the nightly job)."""
    cutoff = int((now - older_than).timestamp())
    result = session.execute(delete(RateLimitCounter).where(RateLimitCounter.window_start < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
