from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flexnet.authn import ratelimit
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


def test_an_attempt_refused_counts_nowhere(session: Session) -> None:
    limits: dict[str, int | None] = {"pair": 2, "whole": None}

    answers = [ratelimit.admit(session, limits, window_seconds=60, now=NOW).value for _ in range(5)]

    assert answers == ["admitted", "admitted", "refused", "still_refused", "still_refused"]
    assert ratelimit.counts(session, ["whole"], window_seconds=60, now=NOW) == {"whole": 2}


LIMITS = ratelimit.GuessLimits(
    per_account_and_source=3, per_source=10, account_alarm=6, per_source_under_alarm=1
)


def guess(session: Session, source: str, account: str = "anna") -> str:
    return ratelimit.admit_guess(
        session,
        "t",
        account=account,
        source=source,
        limits=LIMITS,
        window_seconds=60,
        now=NOW,
    ).value


def test_an_account_on_alarm_leaves_every_new_address_an_attempt(session: Session) -> None:
    first = [guess(session, f"192.0.2.{n}") for n in (1, 2) for _ in range(4)]
    later = [guess(session, f"192.0.2.{n}") for n in (3, 3, 4)]

    assert first.count("admitted") == 6  # three each, the alarm is reached
    assert later == ["admitted", "refused", "admitted"]
    assert guess(session, "192.0.2.9", account="bernd") == "admitted"  # others unaffected


def test_an_ipv6_host_counts_as_its_64_network(session: Session) -> None:
    answers = [guess(session, f"2001:db8:1:2::{n:x}") for n in range(1, 6)]

    assert answers == ["admitted"] * 3 + ["refused", "still_refused"]
    assert guess(session, "2001:db8:1:3::1") == "admitted"
    assert ratelimit.source_key("2001:db8:1:2::99") == "2001:db8:1:2::/64"
    assert ratelimit.source_key("192.0.2.1") == "192.0.2.1"
