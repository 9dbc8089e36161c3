"""``flexnet radius --bind ::`` serves IPv4 concentrators too (their sources arrive as
``::ffff:a.b.c.d`` and match their IPv4 NAS entry), and ``--bind`` may be given several
times. Real processes, pyrad datagrams over both address families."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from flexnet.clients import nas
from flexnet.db import Database
from tests.conftest import BOX, NOW, STAFF
from tests.support.nodes import PASSWORD, Login, radius_node, running, seed_logins, verdict
from tests.support.radius import SECRET, encoded_access_request


def exchange(family: socket.AddressFamily, host: str, port: int, datagram: bytes) -> bytes | None:
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3.0)
        sock.sendto(datagram, (host, port))
        try:
            return sock.recv(4096)
        except TimeoutError:
            return None


@pytest.fixture
def logins(tmp_path: Path, sqlite_template: Path) -> tuple[URL, list[Login]]:
    shutil.copyfile(sqlite_template, tmp_path / "flexnet.sqlite3")
    url = URL.create("sqlite+pysqlite", database=str(tmp_path / "flexnet.sqlite3"))
    found = seed_logins(url, ["vierer", "sechser"])  # NAS "vpn" at 127.0.0.1
    database = Database.from_url(url)
    with database.session() as session:
        nas.add_nas(
            session,
            name="vpn6",
            address="::1",
            secret=SECRET.decode(),
            box=BOX,
            actor=STAFF,
            now=NOW,
        )
    database.dispose()
    return url, found


def login(login: Login) -> bytes:
    return encoded_access_request(login.username, PASSWORD + login.key.otp())


def test_bind_any_ipv6_serves_ipv4_concentrators(
    tmp_path: Path, logins: tuple[URL, list[Login]]
) -> None:
    url, (v4, v6) = logins
    node = radius_node("dual", url, tmp_path)
    node.command += ["--bind", "::"]
    with running(node):
        over_ipv4 = exchange(socket.AF_INET, "127.0.0.1", node.auth_port, login(v4))
        over_ipv6 = exchange(socket.AF_INET6, "::1", node.auth_port, login(v6))

    assert (verdict(over_ipv4), verdict(over_ipv6)) == ("accept", "accept"), node.log()[-2000:]
    assert "::ffff:" not in node.log()


def test_several_bind_addresses_share_the_ports(
    tmp_path: Path, logins: tuple[URL, list[Login]]
) -> None:
    url, (v4, v6) = logins
    node = radius_node("two", url, tmp_path, workers=2)
    node.command += ["--bind", "127.0.0.1", "--bind", "::1"]
    with running(node):
        over_ipv4 = exchange(socket.AF_INET, "127.0.0.1", node.auth_port, login(v4))
        over_ipv6 = exchange(socket.AF_INET6, "::1", node.auth_port, login(v6))

    assert (verdict(over_ipv4), verdict(over_ipv6)) == ("accept", "accept"), node.log()[-2000:]
    assert "RADIUS listening on 127.0.0.1 ::1" in node.log()
