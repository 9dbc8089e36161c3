"""RADIUS over TLS (RFC 6614) with radsecproxy as the TLS client in front of flexnet:
radclient → radsecproxy (UDP) → TLS with a client certificate → flexnet's TLS port.

A certificate of the right CA is not enough: it must be pinned to an enabled NAS.
What no proxy sends (no certificate, garbage, a broken length) comes from a raw socket.
"""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import port_for
import pytest
from pyrad import packet as rp
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import metrics
from flexnet.clients import nas
from flexnet.config import Settings, parse_master_key
from flexnet.db import Database
from flexnet.models import VpnSession
from flexnet.radius.handler import RadiusHandler
from flexnet.radius.packets import load_dictionary
from flexnet.radius.tls import TlsConfig
from tests.conftest import NOW, STAFF, TEST_MASTER_KEY
from tests.support import freeradius
from tests.support.nodes import NAS_NAME, PASSWORD, Login, radius_node, seed_logins
from tests.support.nodes import running as running_nodes
from tests.support.radius import SECRET, RunningRadius, running
from tests.support.radsec import (
    RADSEC_SECRET,
    Identity,
    Pki,
    client_context,
    exchange_tls,
    make_pki,
    radsecproxy,
)
from tests.support.yubikeys import SimulatedKey

ACCEPTED, REJECTED = "Received Access-Accept", "Received Access-Reject"
ACCOUNTED = "Received Accounting-Response"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@dataclass
class Served:
    radius: RunningRadius
    database: Database
    login: Login
    pki: Pki
    workdir: Path

    @property
    def tls_port(self) -> int:
        assert self.radius.tls_port is not None
        return self.radius.tls_port

    def radclient(self, port: int, attributes: str, *, command: str = "auth") -> str:
        result = subprocess.run(
            ["radclient", "-x", "-r", "1", "-t", "4", f"127.0.0.1:{port}", command,
             SECRET.decode()],
            input=attributes, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        return result.stdout + result.stderr

    def login_line(self, otp: str) -> str:
        return (
            f'User-Name = "{self.login.username}"\nUser-Password = "{PASSWORD}{otp}"\n'
            "Message-Authenticator = 0x00\n"
        )

    def proxy(self, identity: Identity):  # type: ignore[no-untyped-def]
        return radsecproxy(self.workdir, self.pki, identity, self.tls_port, SECRET.decode())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, pki: Pki, tmp_path: Path) -> Iterator[Served]:
    url: URL = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    [login] = seed_logins(url, ["tlsuser"])
    database = Database.from_url(url)
    with database.session() as session:  # as the operator copies it from openssl
        nas.change_nas(
            session, name=NAS_NAME, tls_fingerprint=pki.pinned.fingerprint(), actor=STAFF, now=NOW
        )
    settings = Settings(
        instance_path=Path("/nonexistent"),
        database_url=url,
        secret_key="s" * 32,
        master_key=parse_master_key(TEST_MASTER_KEY),
    )
    handler = RadiusHandler(database, settings, refresh_seconds=0.0)
    tls = TlsConfig(0, str(pki.server.cert), str(pki.server.key), str(pki.ca), idle_seconds=30)
    with running(handler, tls=tls) as radius:
        yield Served(radius, database, login, pki, tmp_path)
    database.dispose()


def status_server(identifier: int = 9) -> rp.AuthPacket:
    request = rp.AuthPacket(
        code=rp.StatusServer, id=identifier, secret=RADSEC_SECRET, dict=load_dictionary()
    )
    request.message_authenticator = True
    return request


def answered(request: rp.AuthPacket, reply: bytes) -> rp.Packet:
    """The reply, checked to answer ``request`` under the RADIUS over TLS secret."""
    decoded = rp.Packet(packet=reply, secret=RADSEC_SECRET, dict=load_dictionary())
    assert request.VerifyReply(decoded, reply)
    return decoded


def test_a_login_through_radsecproxy_is_decided_by_flexnet(served: Served) -> None:
    otp = served.login.key.otp()
    with served.proxy(served.pki.pinned) as proxy:
        accepted = served.radclient(proxy.udp_port, served.login_line(otp))
        replayed = served.radclient(proxy.udp_port, served.login_line(otp))
        foreign = served.radclient(proxy.udp_port, served.login_line(SimulatedKey.random().otp()))

    assert ACCEPTED in accepted, accepted
    assert 'Filter-Id = "flexnet-full"' in accepted
    assert REJECTED in replayed, replayed  # an OTP counts once, over TLS as over UDP
    assert REJECTED in foreign, foreign


def test_accounting_start_and_stop_through_radsecproxy_are_stored(served: Served) -> None:
    common = f'User-Name = "{served.login.username}"\nAcct-Session-Id = "tls-1"\n'
    with served.proxy(served.pki.pinned) as proxy:
        started = served.radclient(
            proxy.udp_port, common + "Acct-Status-Type = Start\n", command="acct"
        )
        stopped = served.radclient(
            proxy.udp_port,
            common + "Acct-Status-Type = Stop\nAcct-Terminate-Cause = User-Request\n",
            command="acct",
        )

    assert ACCOUNTED in started and ACCOUNTED in stopped, started + stopped
    with served.database.reader() as session:
        [row] = session.scalars(select(VpnSession))
        assert (row.acct_session_id, row.username) == ("tls-1", served.login.username)
        assert row.stopped_at is not None
        assert row.terminate_cause == "User-Request"
        assert row.nas.name == NAS_NAME


def test_status_server_over_tls_is_answered_with_an_access_accept(served: Served) -> None:
    request = status_server()
    [reply] = exchange_tls(
        served.tls_port, served.pki, served.pki.pinned, [bytes(request.RequestPacket())]
    )

    assert answered(request, reply).code == rp.AccessAccept


def test_radsecproxy_status_server_over_tls_is_answered(served: Served) -> None:
    """radsecproxy (``StatusServer auto``) asks with a Status-Server once it proxies and
    uses status checks from then on only if flexnet answers it."""
    with served.proxy(served.pki.pinned) as proxy:
        login = served.radclient(proxy.udp_port, served.login_line(served.login.key.otp()))
        deadline = time.monotonic() + 15
        while "got status server response from flexnet" not in proxy.log_text():
            assert time.monotonic() < deadline, proxy.log_text()
            time.sleep(0.1)

    assert ACCEPTED in login, login


def test_a_certificate_of_the_ca_that_is_pinned_to_no_nas_is_refused(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flexnet.radius.tls")
    refused = metrics.DROPPED.labels("tls_connection_refused")
    before = refused._value.get()
    with served.proxy(served.pki.unpinned) as proxy:
        out = served.radclient(proxy.udp_port, served.login_line(served.login.key.otp()))
    raw = exchange_tls(served.tls_port, served.pki, served.pki.unpinned, [status_packet()])

    assert ACCEPTED not in out and REJECTED not in out, out
    assert raw == []
    assert refused._value.get() > before  # the operators see it in the metrics too
    assert "pinned to no enabled NAS" in caplog.text
    assert str(served.pki.unpinned.key) not in caplog.text


def test_without_a_certificate_or_from_another_ca_nothing_is_answered(served: Served) -> None:
    for identity in (None, served.pki.stranger):
        assert exchange_tls(served.tls_port, served.pki, identity, [status_packet()]) == []
    # and the server serves on
    assert len(exchange_tls(served.tls_port, served.pki, served.pki.pinned, [status_packet()])) == 1


def test_a_disabled_nas_is_refused_even_with_its_pinned_certificate(served: Served) -> None:
    with served.database.session() as session:
        nas.set_active(session, name=NAS_NAME, active=False, actor=STAFF, now=NOW)

    assert exchange_tls(served.tls_port, served.pki, served.pki.pinned, [status_packet()]) == []


def test_plain_tcp_garbage_is_refused_without_harm(served: Served) -> None:
    for garbage in (b"\x16\x03\x01\xff\xff" + b"\x00" * 64, b"GET / HTTP/1.0\r\n\r\n", b"\x01"):
        with socket.create_connection(("127.0.0.1", served.tls_port), timeout=15) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            received = b""
            try:
                while chunk := sock.recv(4096):
                    received += chunk
            except ConnectionResetError:
                pass
        # closed by the server; at most a TLS alert (content type 21), never RADIUS
        assert received == b"" or received[0] == 21, received

    assert len(exchange_tls(served.tls_port, served.pki, served.pki.pinned, [status_packet()])) == 1


def test_a_bad_packet_is_dropped_but_a_broken_length_closes_the_connection(
    served: Served,
) -> None:
    signed = status_server(identifier=1)
    tampered = bytearray(signed.RequestPacket())
    tampered[-1] ^= 0xFF  # the Message-Authenticator no longer matches
    good = status_server(identifier=2)

    # Framed but wrong: dropped, the connection stays and answers the next one.
    [reply] = exchange_tls(
        served.tls_port,
        served.pki,
        served.pki.pinned,
        [bytes(tampered), bytes(good.RequestPacket())],
    )
    assert answered(good, reply).id == 2

    # A length of 5000 loses the framing: closed, nothing after it is read.
    broken = b"\x0c\x03\x13\x88" + b"\x00" * 16
    after = exchange_tls(
        served.tls_port, served.pki, served.pki.pinned, [broken, status_packet()], timeout=3
    )
    assert after == []


def status_packet() -> bytes:
    return bytes(status_server().RequestPacket())


def test_a_second_nas_cannot_pin_the_same_certificate(served: Served) -> None:
    from flexnet.errors import ConflictError

    with served.database.session() as session:
        nas.add_nas(
            session, name="vpn-2", address="192.0.2.7", secret="x" * 20,
            box=served.radius.server.handler.box, actor=STAFF, now=NOW,
        )  # fmt: skip
        with pytest.raises(ConflictError):
            nas.change_nas(
                session,
                name="vpn-2",
                tls_fingerprint=served.pki.pinned.fingerprint(),
                actor=STAFF,
                now=NOW,
            )


def test_many_packets_on_one_connection_are_all_answered(served: Served) -> None:
    """More than may be in flight at once (32): the rest wait, none is lost."""
    requests = [status_server(identifier=n) for n in range(40)]
    replies = exchange_tls(
        served.tls_port, served.pki, served.pki.pinned, [bytes(r.RequestPacket()) for r in requests]
    )

    assert sorted(answered(requests[r[1]], r).id for r in replies) == list(range(40))


def test_flexnet_radius_with_two_workers_serves_tls_in_each(
    sqlite_url: URL, pki: Pki, tmp_path: Path
) -> None:
    """``flexnet radius --workers 2 --tls-port …`` as an operator starts it: both workers
    listen on the TLS port (SO_REUSEPORT) and every connection is served by one of them."""
    [login] = seed_logins(sqlite_url, ["tlsworker"])
    database = Database.from_url(sqlite_url)
    with database.session() as session:
        nas.change_nas(
            session, name=NAS_NAME, tls_fingerprint=pki.pinned.fingerprint(), actor=STAFF, now=NOW
        )
    database.dispose()
    node = radius_node("radius-tls", sqlite_url, tmp_path, workers=2)
    tls_port = port_for.select_random()
    node.command += [
        "--tls-port", str(tls_port), "--tls-cert", str(pki.server.cert),
        "--tls-key", str(pki.server.key), "--tls-ca", str(pki.ca),
    ]  # fmt: skip
    with running_nodes(node):
        answers = [exchange_tls(tls_port, pki, pki.pinned, [status_packet()]) for _ in range(8)]
        with radsecproxy(tmp_path, pki, pki.pinned, tls_port, SECRET.decode()) as proxy:
            line = (
                f'User-Name = "{login.username}"\nUser-Password = "{PASSWORD}{login.key.otp()}"\n'
                "Message-Authenticator = 0x00\n"
            )
            result = subprocess.run(
                ["radclient", "-r", "1", "-t", "4", f"127.0.0.1:{proxy.udp_port}", "auth",
                 SECRET.decode()],
                input=line, capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        log = node.log()

    assert all(len(a) == 1 for a in answers), log
    assert ACCEPTED in result.stdout, result.stdout + result.stderr + log
    assert f"tls {tls_port} (2 worker processes)" in log
    assert str(pki.server.key) not in log and "PRIVATE KEY" not in log


def test_freeradius_as_a_tls_proxy_logs_in_and_accounts(served: Served) -> None:
    """FreeRADIUS 3.2 with a ``home_server`` of ``proto = tcp`` and ``tls {}``: the
    concentrator's UDP goes over TLS with the pinned certificate to flexnet."""
    pki = served.pki
    with freeradius.proxy(
        served.workdir / "freeradius",
        home_port=served.tls_port,
        home_secret="radsec",
        home_tls=(pki.pinned.cert, pki.pinned.key, pki.ca),
    ) as proxy:
        line = served.login_line(served.login.key.otp())
        out = subprocess.run(
            ["radclient", "-r", "1", "-t", "6", f"127.0.0.1:{proxy.auth_port}", "auth",
             freeradius.CLIENT_SECRET],
            input=line, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        start = (
            f'User-Name = "{served.login.username}"\nAcct-Session-Id = "fr-tls-1"\n'
            "Acct-Status-Type = Start\n"
        )
        accounted = subprocess.run(
            ["radclient", "-r", "1", "-t", "6", f"127.0.0.1:{proxy.acct_port}", "acct",
             freeradius.CLIENT_SECRET],
            input=start, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        log = proxy.log()

    assert ACCEPTED in out.stdout, out.stdout + out.stderr + log[-3000:]
    assert ACCOUNTED in accounted.stdout, accounted.stdout + accounted.stderr + log[-3000:]
    with served.database.reader() as session:
        assert session.scalars(select(VpnSession.acct_session_id)).all() == ["fr-tls-1"]


def test_a_connection_ends_when_its_certificate_is_unpinned(served: Served) -> None:
    """A NAS unpinned (or disabled) while its connection is open gets no further answer:
    each packet looks the certificate up again."""
    context = client_context(served.pki, served.pki.pinned)
    with (
        socket.create_connection(("127.0.0.1", served.tls_port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        tls.sendall(status_packet())
        first = tls.recv(4096)
        with served.database.session() as session:
            nas.change_nas(session, name=NAS_NAME, tls_fingerprint=None, actor=STAFF, now=NOW)
        tls.sendall(status_packet())
        try:
            second = tls.recv(4096)
        except (ssl.SSLError, OSError):
            second = b""

    assert first[0] == rp.AccessAccept
    assert second == b""  # closed, nothing answered
