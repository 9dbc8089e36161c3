"""Fixed-window rate limits counted in the database, so they hold across processes.

One atomic upsert per hit: concurrent requests cannot slip past the limit.

Guesses at one account's secret (``admit_guess``) are limited so that no stranger can
keep the owner out: per account and address, per address, and from all addresses
together only as an alarm that leaves each further address a few attempts, never
none. An attempt refused by a limit counts nowhere.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


def counts(
    session: Session, keys: Iterable[str], *, window_seconds: int, now: datetime
) -> dict[str, int]:
    """The current window's hits of ``keys`` (0 for a key not counted yet), in one read."""
    wanted = list(keys)
    rows = session.execute(_HITS, {"keys": wanted, "window_start": _window(now, window_seconds)})
    found: dict[str, int] = dict(rows.all())
    return {key: found.get(key, 0) for key in wanted}


class Admission(enum.Enum):
    ADMITTED = "admitted"  # counted on every key
    REFUSED = "refused"  # this attempt found a limit reached (it counts nowhere)
    STILL_REFUSED = "still_refused"  # the limit was reached before: refused at one read


def admit(
    session: Session,
    limits: Mapping[str, int | None],
    *,
    window_seconds: int,
    now: datetime,
    seen: Mapping[str, int] | None = None,
) -> Admission:
    """Count one attempt on every key of ``limits`` (key → how many attempts its window
    admits; None: counted, never refusing), unless that is one too many for any key.

    A refused attempt counts on no other key, and a flood against a reached limit costs
    one read (``seen``, if the caller has read the counts already). The first refusal
    marks the full key (one hit past its limit), so that it alone is ``REFUSED`` and
    the rest are ``STILL_REFUSED``: callers report the first and not the flood. Counting
    and comparing is atomic per key: parallel attempts cannot slip past a limit.
    """
    if seen is None:
        seen = counts(session, limits, window_seconds=window_seconds, now=now)
    full = [key for key, limit in limits.items() if limit is not None and seen[key] >= limit]
    if full:
        fresh = [key for key in full if seen[key] == limits[key]]
        for key in fresh:
            record(session, key, window_seconds=window_seconds, now=now)
        return Admission.REFUSED if fresh else Admission.STILL_REFUSED
    hits = {key: record(session, key, window_seconds=window_seconds, now=now) for key in limits}
    over = {key for key, limit in limits.items() if limit is not None and hits[key] > limit}
    if not over:
        return Admission.ADMITTED
    for key in limits.keys() - over:  # a parallel attempt took the last place first
        record(session, key, window_seconds=window_seconds, now=now, count=-1)
    return Admission.REFUSED


@dataclass(frozen=True)
class GuessLimits:
    """Attempts at one account's secret per window.

    ``per_account_and_source``: from one address; ``per_source``: from one address at
    all accounts (None: not limited here); ``account_alarm``: attempts checked from all
    addresses after which the account is under attack, and each address may make only
    ``per_source_under_alarm`` attempts. The owner coming from an address of their own
    is never refused the first of them: a stranger cannot keep the owner out, and
    guessing from many addresses is bounded by the addresses it uses.
    """

    per_account_and_source: int
    per_source: int | None
    account_alarm: int
    per_source_under_alarm: int


def source_key(address: str | None) -> str:
    """The address as counters see it: an IPv6 address by its /64 network (one host
    has a whole /64 to choose addresses from), an IPv4 address as it is, also when it
    arrives IPv4-mapped (``::ffff:a.b.c.d``, from a dual-stack socket)."""
    if not address:
        return "-"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:45]
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    if parsed.version == 6:
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def _guess_keys(scope: str, account: str, source: str | None) -> tuple[str, str, str]:
    """The (account and address, account, address) counters of ``scope``."""
    where = source_key(source)
    return f"{scope}:pair:{account}:{where}", f"{scope}:acct:{account}", f"{scope}:ip:{where}"


def admit_guess(
    session: Session,
    scope: str,
    *,
    account: str,
    source: str | None,
    limits: GuessLimits,
    window_seconds: int,
    now: datetime,
) -> Admission:
    """Count an attempt at ``account``'s secret from ``source`` before it is checked,
    if ``limits`` admit it (see ``GuessLimits``)."""
    pair, whole, address = _guess_keys(scope, account, source)
    seen = counts(session, (pair, whole, address), window_seconds=window_seconds, now=now)
    under_alarm = seen[whole] >= limits.account_alarm
    wanted: dict[str, int | None] = {
        pair: limits.per_source_under_alarm if under_alarm else limits.per_account_and_source,
        whole: None,
    }
    if source and limits.per_source is not None:
        wanted[address] = limits.per_source
    return admit(session, wanted, window_seconds=window_seconds, now=now, seen=seen)


def guess_succeeded(
    session: Session,
    scope: str,
    *,
    account: str,
    source: str | None,
    limits: GuessLimits,
    window_seconds: int,
    now: datetime,
) -> None:
    """The attempt admitted last was right: it counts against no one. The account's
    failures from this address are cleared; the attempt is taken off the account's and
    the address's counts (many colleagues sign in from one office address)."""
    pair, whole, address = _guess_keys(scope, account, source)
    forget(session, pair, window_seconds=window_seconds, now=now)
    counted = [whole] + ([address] if source and limits.per_source is not None else [])
    for key in counted:
        record(session, key, window_seconds=window_seconds, now=now, count=-1)
