"""Fixed-window rate limits counted in the database, so they hold across processes.

One atomic upsert per hit: concurrent requests cannot slip past the limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flexnet.models import RateLimitCounter

_HITS = select(RateLimitCounter.key, RateLimitCounter.hits).where(
    RateLimitCounter.key.in_(bindparam("keys", expanding=True)),
    RateLimitCounter.window_start == bindparam("window_start"),
)


def _window(now: datetime, window_seconds: int) -> int:
    return int(now.timestamp()) // window_seconds * window_seconds


def hit(session: Session, key: str, *, limit: int, window_seconds: int, now: datetime) -> bool:
    """Count one hit for ``key``; True while the window's hits stay within ``limit``."""
    return record(session, key, window_seconds=window_seconds, now=now) <= limit


def exceeded(session: Session, key: str, *, limit: int, window_seconds: int, now: datetime) -> bool:
    """True when ``key`` has already reached ``limit`` hits in the current window."""
    return key in over_limit(session, {key: limit}, window_seconds=window_seconds, now=now)


def over_limit(
    session: Session, limits: dict[str, int], *, window_seconds: int, now: datetime
) -> set[str]:
    """The keys of ``limits`` that have reached their limit in the current window.

    One statement for all keys: the authentication path checks several on every request.
    """
    if not limits:
        return set()
    rows = session.execute(
        _HITS, {"keys": list(limits), "window_start": _window(now, window_seconds)}
    )
    return {key for key, hits in rows if hits >= limits[key]}


def record(
    session: Session, key: str, *, window_seconds: int, now: datetime, count: int = 1
) -> int:
    """Count ``count`` hits for ``key`` atomically; returns the window's hits so far."""
    window_start = _window(now, window_seconds)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(RateLimitCounter)
        .values(key=key, window_start=window_start, hits=count)
        .on_conflict_do_update(
            index_elements=["key", "window_start"],
            set_={"hits": RateLimitCounter.hits + count},
        )
        .returning(RateLimitCounter.hits)
    )
    hits: int = session.execute(statement).scalar_one()
    return hits


def forget(session: Session, key: str, *, window_seconds: int, now: datetime) -> None:
    """Drop the current window's count for ``key`` (e.g. after a successful sign-in)."""
    session.execute(
        delete(RateLimitCounter).where(
            RateLimitCounter.key == key,
            RateLimitCounter.window_start == _window(now, window_seconds),
        )
    )


def purge(session: Session, *, older_than: timedelta, now: datetime) -> int:
    """Delete counters of windows that ended long ago (run by the nightly job)."""
    cutoff = int((now - older_than).timestamp())
    result = session.execute(delete(RateLimitCounter).where(RateLimitCounter.window_start < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
