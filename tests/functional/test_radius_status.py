"""Status-Server (RFC 5997) on both ports, as FreeRADIUS checks its home servers
(``status_check = status-server``), with the real radclient and pyrad."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyrad import packet as rp
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL

from flexnet.clients import nas
from flexnet.config import Settings, parse_master_key
from flexnet.db import Database
from flexnet.models import AuthEvent, RadiusChallenge
from flexnet.radius.handler import RadiusHandler
from flexnet.radius.packets import MESSAGE_AUTHENTICATOR, Port, load_dictionary
from tests.conftest import BOX, NOW, STAFF, TEST_MASTER_KEY
from tests.support import freeradius
from tests.support.nodes import PASSWORD, exchange, radius_node, seed_logins, verdict
from tests.support.nodes import running as running_nodes
from tests.support.radius import SECRET, RunningRadius, encoded_access_request, running

SOURCE = ("127.0.0.1", 40000)


def settings(url: URL) -> Settings:
    return Settings(
        instance_path=Path("/nonexistent"),
        database_url=url,
        secret_key="s" * 32,
        master_key=parse_master_key(TEST_MASTER_KEY),
    )


def add_nas(url: URL) -> None:
    database = Database.from_url(url)
    with database.session() as session:
        for name, address in (("vpn-a", "127.0.0.1"), ("vpn-b", "127.0.0.2")):
            nas.add_nas(
                session,
                name=name,
                address=address,
                secret=SECRET.decode(),
                box=BOX,
                actor=STAFF,
                now=NOW,
            )
    database.dispose()


@dataclass
class Served:
    radius: RunningRadius
    database: Database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    url: URL = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    add_nas(url)
    database = Database.from_url(url)
    handler = RadiusHandler(database, settings(url), refresh_seconds=0.0)
    with running(handler) as radius:
        yield Served(radius, database)
    database.dispose()


def status_server(
    *, secret: bytes = SECRET, port: Port = Port.AUTH, signed: bool = True, identifier: int = 7
) -> bytes:
    packet_type = rp.AuthPacket if port is Port.AUTH else rp.AcctPacket
    request = packet_type(
        code=rp.StatusServer, id=identifier, secret=secret, dict=load_dictionary()
    )
    request.message_authenticator = signed
    data = bytes(request.RequestPacket())
    if not signed:
        assert MESSAGE_AUTHENTICATOR not in request
    return data


def radclient_status(port: int) -> str:
    result = subprocess.run(
        ["radclient", "-x", "-r", "1", "-t", "2", f"127.0.0.1:{port}", "status", SECRET.decode()],
        input="Message-Authenticator = 0x00\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout + result.stderr


def state_counts(database: Database) -> tuple[int, int]:
    with database.reader() as session:
        return (
            session.scalar(select(func.count()).select_from(AuthEvent)) or 0,
            session.scalar(select(func.count()).select_from(RadiusChallenge)) or 0,
        )


def test_radclient_status_is_answered_on_both_ports(served: Served) -> None:
    before = state_counts(served.database)

    auth = radclient_status(served.radius.auth_port)
    acct = radclient_status(served.radius.acct_port)

    assert "Received Access-Accept" in auth, auth
    assert "Received Accounting-Response" in acct, acct
    assert state_counts(served.database) == before  # no user state read into a decision


@pytest.mark.parametrize("port", [Port.AUTH, Port.ACCT])
def test_the_answer_is_signed_and_matches_the_request(served: Served, port: Port) -> None:
    packet_type = rp.AuthPacket if port is Port.AUTH else rp.AcctPacket
    request = packet_type(code=rp.StatusServer, id=42, secret=SECRET, dict=load_dictionary())
    request.message_authenticator = True
    data = bytes(request.RequestPacket())

    reply = served.radius.send_raw(data, port=port.value)

    assert reply is not None
    decoded = request.CreateReply(packet=reply)
    assert decoded.code == (rp.AccessAccept if port is Port.AUTH else rp.AccountingResponse)
    assert request.VerifyReply(decoded, reply, enforce_ma=True)
    assert reply[20] == MESSAGE_AUTHENTICATOR  # first attribute (BlastRADIUS)


@pytest.mark.parametrize("port", [Port.AUTH, Port.ACCT])
def test_status_server_from_a_stranger_or_unsigned_is_not_answered(
    served: Served, port: Port
) -> None:
    wrong_secret = status_server(secret=b"not-the-secret-of-this-nas", port=port)
    unsigned = status_server(port=port, signed=False)

    assert served.radius.send_raw(wrong_secret, port=port.value) is None
    assert served.radius.send_raw(unsigned, port=port.value) is None
    assert served.radius.send_raw(status_server(port=port), port=port.value) is not None


def test_status_server_from_an_unknown_address_is_not_answered(served: Served) -> None:
    data = status_server()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.9", 0))  # no NAS client has this address
        sock.settimeout(1.0)
        sock.sendto(data, ("127.0.0.1", served.radius.auth_port))
        with pytest.raises(TimeoutError):
            sock.recv(4096)


@pytest.mark.postgres
def test_no_answer_while_the_database_is_unreachable(
    pg_url: URL, make_pg_database: Callable[..., URL]
) -> None:
    add_nas(pg_url)
    database = Database.from_url(pg_url, timeout_ms=1000)
    admin = Database.from_url(pg_url.set(database="postgres"))
    handler = RadiusHandler(database, settings(pg_url))
    name = pg_url.database

    def allow(allowed: bool) -> None:
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
            if not allowed:
                c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name"
                    ),
                    {"name": name},
                )

    try:
        up = handler.handle(status_server(identifier=1), SOURCE, Port.AUTH)
        allow(False)
        down = [
            handler.handle(status_server(identifier=2, port=port), SOURCE, port)
            for port in (Port.AUTH, Port.ACCT)
        ]
        allow(True)
        back = handler.handle(status_server(identifier=3), SOURCE, Port.AUTH)
    finally:
        allow(True)
        handler.close()
        database.dispose()
        admin.dispose()

    assert up is not None and up[0] == rp.AccessAccept
    assert down == [None, None]
    assert back is not None and back[0] == rp.AccessAccept


def test_freeradius_brings_flexnet_back_after_a_restart(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """FreeRADIUS 3.2 as a proxy with ``status_check = status-server``: flexnet stopped,
    the proxy marks it dead; flexnet started again, the proxy's Status-Server checks
    bring it back and logins through the proxy pass."""
    shutil.copyfile(sqlite_template, tmp_path / "flexnet.sqlite3")
    url = URL.create("sqlite+pysqlite", database=str(tmp_path / "flexnet.sqlite3"))
    login = seed_logins(url, ["proxied"])[0]
    home = freeradius.home_ports()
    node = radius_node("flexnet", url, tmp_path, auth_port=home)
    secret = freeradius.CLIENT_SECRET.encode()

    def through_proxy(port: int) -> str:
        request = encoded_access_request(login.username, PASSWORD + login.key.otp(), secret=secret)
        return verdict(exchange(port, request, timeout=6.0))

    with (
        running_nodes(node),
        freeradius.proxy(
            tmp_path / "freeradius", home_port=home, home_secret=SECRET.decode()
        ) as proxy,
    ):
        first = through_proxy(proxy.auth_port)
        node.stop()
        while_away = through_proxy(proxy.auth_port)
        deadline = time.monotonic() + 30
        while "as dead" not in proxy.log() and time.monotonic() < deadline:
            through_proxy(proxy.auth_port)
        marked_dead = "as dead" in proxy.log()
        node.start()
        after = "reject"
        deadline = time.monotonic() + 60
        while after != "accept" and time.monotonic() < deadline:
            time.sleep(1)
            after = through_proxy(proxy.auth_port)

    assert first == "accept"
    assert while_away in ("reject", "silence")
    assert marked_dead, proxy.log()[-3000:]
    assert after == "accept", proxy.log()[-3000:]
    assert "Received response to status check" in proxy.log()
