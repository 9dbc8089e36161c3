"""The auth log's batches: rejects decided without a transaction, written together."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL

from flexnet.authn import ratelimit
from flexnet.authn.authlog import LoggedReject, RejectLog
from flexnet.config import AuthSettings
from flexnet.db import Database
from flexnet.models import AuthEvent, RateLimitCounter
from tests.conftest import NOW


def test_reject_log_writes_events_and_source_counts(sqlite_url: URL) -> None:
    database = Database.from_url(sqlite_url)
    log = RejectLog(database, AuthSettings(), interval=60)
    for n in range(5):
        log.add(
            LoggedReject(
                NOW + timedelta(seconds=n), "emuster", "vpn-1", "198.51.100.7", "otp_invalid"
            )
        )

    assert log.flush() == 5
    log.close()
    with database.reader() as session:
        events = session.scalar(select(func.count()).select_from(AuthEvent))
        counted = ratelimit.exceeded(
            session,
            "auth-src:198.51.100.7",
            limit=5,
            window_seconds=300,
            now=NOW + timedelta(seconds=4),
        )
        rows = session.scalar(select(func.count()).select_from(RateLimitCounter))
    database.dispose()
    assert events == 5
    assert counted
    assert rows == 1


@pytest.mark.parametrize("url_fixture", ["sqlite_url", "pg_url"])
def test_reject_log_writes_each_line_as_given(
    url_fixture: str, request: pytest.FixtureRequest
) -> None:
    """On PostgreSQL a batch is one statement of arrays, on SQLite a row each: the same
    lines either way, a missing source included."""
    database = Database.from_url(request.getfixturevalue(url_fixture))
    log = RejectLog(database, AuthSettings(), interval=60)
    log.add(LoggedReject(NOW, "emuster", "vpn-1", "198.51.100.7", "otp_invalid"))
    log.add(LoggedReject(NOW + timedelta(seconds=1), "k\u00fcster", None, None, "key_unknown"))

    assert log.flush() == 2
    log.close()
    with database.reader() as session:
        lines = session.execute(
            select(
                AuthEvent.at,
                AuthEvent.channel,
                AuthEvent.username,
                AuthEvent.client,
                AuthEvent.source_ip,
                AuthEvent.outcome,
                AuthEvent.reason,
            ).order_by(AuthEvent.at)
        ).all()
    database.dispose()
    assert [tuple(line) for line in lines] == [
        (NOW, "radius", "emuster", "vpn-1", "198.51.100.7", "reject", "otp_invalid"),
        (NOW + timedelta(seconds=1), "radius", "k\u00fcster", None, None, "reject", "key_unknown"),
    ]


def test_reject_log_counts_one_ipv6_network_as_one_source(sqlite_url: URL) -> None:
    database = Database.from_url(sqlite_url)
    log = RejectLog(database, AuthSettings(), interval=60)
    for n in range(1, 4):
        log.add(LoggedReject(NOW, "emuster", "vpn-1", f"2001:db8:1:2::{n}", "key_unknown"))

    log.flush()
    log.close()
    with database.reader() as session:
        counted = ratelimit.exceeded(
            session, "auth-src:2001:db8:1:2::/64", limit=3, window_seconds=300, now=NOW
        )
        rows = session.scalar(select(func.count()).select_from(RateLimitCounter))
    database.dispose()
    assert counted and rows == 1


def test_reject_log_keeps_its_lines_while_the_database_refuses(sqlite_url: URL) -> None:
    database = Database.from_url(sqlite_url)
    log = RejectLog(database, AuthSettings(), interval=60)
    for n in range(3):
        log.add(LoggedReject(NOW + timedelta(seconds=n), "emuster", "vpn-1", None, "key_unknown"))
    with database.session() as session:  # the table is gone for a moment: writes fail
        session.execute(text("ALTER TABLE auth_events RENAME TO auth_events_away"))

    during = log.flush()
    with database.session() as session:
        session.execute(text("ALTER TABLE auth_events_away RENAME TO auth_events"))
    after = log.flush()
    log.close()
    with database.reader() as session:
        events = session.scalar(select(func.count()).select_from(AuthEvent))
    database.dispose()

    assert (during, after, events) == (0, 3, 3)
