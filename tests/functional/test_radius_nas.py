"""NAS clients as operators meet them: an old concentrator that sends no
Message-Authenticator (radclient without one, retransmitting), switched over in place;
the drop lines name the NAS and what would admit it, once a minute, not per packet."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy.engine import URL

from flexnet.clients import nas
from flexnet.db import Database
from flexnet.radius.handler import RadiusHandler
from tests.conftest import BOX, NOW, STAFF
from tests.functional.test_radius_status import settings
from tests.support.radius import SECRET, RunningRadius, running
from tests.support.seed import add_login
from tests.support.yubikeys import SimulatedKey

PASSWORD = "Sommer-Regen-2026!"


@dataclass
class Served:
    radius: RunningRadius
    database: Database
    key: SimulatedKey


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    url: URL = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    database = Database.from_url(url)
    with database.session() as session:
        key = add_login(session, BOX, username="emuster", password=PASSWORD, now=NOW)
        for name, address in (("alt-vpn", "127.0.0.1"), ("weg-vpn", "127.0.0.2")):
            nas.add_nas(
                session,
                name=name,
                address=address,
                secret=SECRET.decode(),
                box=BOX,
                actor=STAFF,
                now=NOW,
            )
        nas.set_active(session, name="weg-vpn", active=False, actor=STAFF, now=NOW)
    handler = RadiusHandler(database, settings(url), refresh_seconds=0.0)
    handler.clock = lambda: NOW + timedelta(days=1)
    with running(handler) as radius:
        yield Served(radius, database, key)
    database.dispose()


def old_nas_login(served: Served) -> str:
    """radclient as radcli 1.2 sends: no Message-Authenticator, three tries a second apart."""
    result = subprocess.run(
        [
            *("radclient", "-x", "-r", "3", "-t", "1"),
            *(f"127.0.0.1:{served.radius.auth_port}", "auth", SECRET.decode()),
        ],
        input=f"User-Name=emuster,User-Password='{PASSWORD}{served.key.otp()}'\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout + result.stderr


def drop_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("dropped")]


def test_an_old_nas_is_switched_over_in_place(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flexnet.radius")
    before = [old_nas_login(served) for _ in range(2)]  # six datagrams
    lines = drop_lines(caplog)
    with served.database.session() as session:
        nas.change_nas(
            session,
            name="alt-vpn",
            allow_missing_message_authenticator=True,
            actor=STAFF,
            now=NOW,
        )
    after = old_nas_login(served)

    assert all("No reply from server" in out for out in before)
    assert len(lines) == 1, lines
    assert "NAS alt-vpn" in lines[0]
    assert "flexnet nas set alt-vpn --allow-missing-message-authenticator yes" in lines[0]
    assert "Received Access-Accept" in after


def test_a_disabled_nas_is_logged_as_disabled_once_a_minute(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flexnet.radius")
    request = served.radius.access_request("emuster", PASSWORD + served.key.otp())
    data = bytes(request.RequestPacket())

    replies = [served.radius.send_raw(data, source="127.0.0.2", timeout=0.3) for _ in range(4)]
    strangers = [served.radius.send_raw(data, source="127.0.0.3", timeout=0.3) for _ in range(3)]

    assert replies == [None] * 4 and strangers == [None] * 3
    assert drop_lines(caplog) == [
        "dropped packet from 127.0.0.2: NAS weg-vpn is disabled "
        "(`flexnet nas enable weg-vpn` admits it)",
        "dropped packet from unknown client 127.0.0.3",
    ]
