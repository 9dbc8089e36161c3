"""Internal errors on the authentication path are never an accept (issue 4)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pyrad import packet as rp
from sqlalchemy import text
from sqlalchemy.engine import URL

from flexnet import metrics
from flexnet.clients import nas
from flexnet.config import Settings, parse_master_key
from flexnet.db import Database
from flexnet.radius.handler import RadiusHandler
from flexnet.radius.packets import Port
from tests.conftest import BOX, NOW, STAFF, TEST_MASTER_KEY
from tests.support.radius import SECRET, encoded_access_request
from tests.support.seed import add_login, seed_key

SOURCE = ("127.0.0.1", 40000)
PASSWORD = "Sommer-Regen-2026!"


def settings(url: URL, **changes: object) -> Settings:
    base = Settings(
        instance_path=Path("/nonexistent"),
        database_url=url,
        secret_key="s" * 32,
        master_key=parse_master_key(TEST_MASTER_KEY),
    )
    return replace(base, **changes)


def counted(name: str, **labels: str) -> float:
    """A sample of this process's metrics (the RADIUS server's endpoint serves them)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def access_request(password: str) -> bytes:
    return access_request_for("nobody-needed", password)


def access_request_for(username: str, password: str) -> bytes:
    return encoded_access_request(username, password)


@pytest.fixture
def url(pg_url: URL) -> URL:
    database = Database.from_url(pg_url)
    with database.session() as session:
        nas.add_nas(
            session,
            name="vpn",
            address="127.0.0.1",
            secret=SECRET.decode(),
            box=BOX,
            actor=STAFF,
            now=NOW,
        )
    database.dispose()
    return pg_url


@pytest.mark.postgres
@pytest.mark.parametrize(("reject_on_error", "expected"), [(False, None), (True, rp.AccessReject)])
def test_a_hanging_database_is_silence_or_reject_never_accept(
    url: URL, reject_on_error: bool, expected: int | None
) -> None:
    key = seed_key(url, BOX)
    blocker = Database.from_url(url)
    database = Database.from_url(url, timeout_ms=300)
    handler = RadiusHandler(database, settings(url, radius_reject_on_error=reject_on_error))
    unavailable = counted("flexnet_database_unavailable_total", during="access")
    dropped = counted("flexnet_radius_dropped_total", cause="database_unavailable")
    try:
        with blocker.session() as session:
            # Another transaction holds the key's row: the OTP update must wait, and time out.
            session.execute(text("SELECT * FROM tokens FOR UPDATE"))
            reply = handler.handle(
                access_request("Sommer-Regen-2026!" + key.otp()), SOURCE, Port.AUTH
            )
    finally:
        handler.close()
        database.dispose()
        blocker.dispose()

    assert (reply[0] if reply else None) == expected
    assert counted("flexnet_database_unavailable_total", during="access") == unavailable + 1
    silent = 0 if reject_on_error else 1
    assert counted("flexnet_radius_dropped_total", cause="database_unavailable") == dropped + silent


def test_an_unreachable_database_is_silence(sqlite_url: URL) -> None:
    unreachable = URL.create(
        "postgresql+psycopg", username="x", host="127.0.0.1", port=9, database="x"
    )
    database = Database.from_url(unreachable, timeout_ms=1000)
    handler = RadiusHandler(database, settings(unreachable))
    unavailable = counted("flexnet_database_unavailable_total", during="reload")
    dropped = counted("flexnet_radius_dropped_total", cause="nas_list_unavailable")

    assert (
        handler.handle(access_request("Sommer-Regen-2026!" + "c" * 44), SOURCE, Port.AUTH) is None
    )
    database.dispose()
    assert counted("flexnet_database_unavailable_total", during="reload") == unavailable + 1
    assert counted("flexnet_radius_dropped_total", cause="nas_list_unavailable") == dropped + 1


@pytest.mark.postgres
def test_recovers_by_itself_when_the_database_comes_back(url: URL) -> None:
    database = Database.from_url(url)
    with database.session() as session:
        key = add_login(session, BOX, username="emuster", password=PASSWORD, now=NOW)
    handler = RadiusHandler(database, settings(url))
    admin = Database.from_url(url)
    try:
        first = handler.handle(
            access_request_for("emuster", PASSWORD + key.otp()), SOURCE, Port.AUTH
        )
        with admin.session() as session:  # what a database restart does to our connections
            session.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        replies = [
            handler.handle(access_request_for("emuster", PASSWORD + key.otp()), SOURCE, Port.AUTH)
            for _ in range(3)
        ]
    finally:
        handler.close()
        admin.dispose()
        database.dispose()

    assert first is not None and first[0] == rp.AccessAccept
    assert all(r is None or r[0] in (rp.AccessAccept, rp.AccessReject) for r in replies)
    assert replies[-1] is not None and replies[-1][0] == rp.AccessAccept
