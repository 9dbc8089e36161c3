"""``flexnet radius --workers 2``: two processes on one port (SO_REUSEPORT), every core.

Linux hands the datagrams of one NAS socket to one worker, so a retransmission finds
the answer in that worker's duplicate cache; whatever must hold across workers (an
OTP used once, a challenge answered through another socket) is in the database, as
across nodes. Each test talks to real processes over UDP, with pyrad and radclient.
"""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyrad import packet as rp
from sqlalchemy.engine import URL

from flexnet.db import make_engine
from flexnet.ops import migrate
from flexnet.radius.packets import load_dictionary
from tests.support.nodes import (
    PASSWORD,
    Login,
    Node,
    auth_log,
    exchange_all,
    radius_node,
    running,
    seed_logins,
    verdict,
)
from tests.support.radius import SECRET

LOGINS = 12


@dataclass
class Served:
    url: URL
    node: Node  # two workers
    logins: list[Login]
    workdir: Path

    def worker_pids(self) -> list[int]:
        """The workers of the node's latest start."""
        found = re.findall(r"RADIUS worker \d \(pid (\d+)\)", self.node.log())
        return [int(pid) for pid in found[-2:]]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    make_pg_database: Callable[[str], URL],
    sqlite_template: Path,
) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("workers")
    if request.param == "postgresql":
        url = make_pg_database("flexnet_workers")
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
    else:
        shutil.copyfile(sqlite_template, workdir / "flexnet.sqlite3")
        url = URL.create("sqlite+pysqlite", database=str(workdir / "flexnet.sqlite3"))
    logins = seed_logins(url, [f"worker{n}" for n in range(LOGINS)])
    node = radius_node("radius", url, workdir, workers=2)
    with running(node):
        yield Served(url, node, logins, workdir)


def request(login: Login, typed: str, *, state: bytes | None = None) -> bytes:
    """An Access-Request with a random identifier and authenticator (a new request)."""
    packet = rp.AuthPacket(
        code=rp.AccessRequest,
        id=secrets.randbelow(256),
        secret=SECRET,
        dict=load_dictionary(),
        User_Name=login.username,
    )
    packet["User-Password"] = packet.PwCrypt(typed)
    if state is not None:
        packet["State"] = state
    packet.add_message_authenticator()
    return bytes(packet.RequestPacket())


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_both_workers_serve_the_port(served: Served) -> None:
    """Invalid OTPs from many NAS sockets: every worker spends CPU on them."""
    pids = served.worker_pids()
    assert len(pids) == 2, served.node.log()[-2000:]
    before = {pid: cpu_ticks(pid) for pid in pids}
    garbage = [
        (served.node.auth_port, request(login, PASSWORD + login.key.public_id + "c" * 32))
        for login in served.logins
        for _ in range(40)
    ]
    replies = []
    for start in range(0, len(garbage), 120):  # 120 sockets at a time, each its own port
        replies += exchange_all(garbage[start : start + 120])

    assert [verdict(reply) for reply in replies] == ["reject"] * len(garbage)
    used = {pid: cpu_ticks(pid) - before[pid] for pid in pids}
    assert all(ticks > 0 for ticks in used.values()), used


def test_a_retransmission_gets_the_answer_of_its_worker(served: Served) -> None:
    """Each login's request is sent three times from its own socket, as a NAS
    retransmits: one answer, three times, and one decision. Twelve sockets: both
    workers have their share."""
    before = {login.username: auth_log(served.url, login.username) for login in served.logins}
    for login in served.logins:
        datagram = request(login, PASSWORD + login.key.otp())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.connect(("127.0.0.1", served.node.auth_port))
            answers = []
            for _ in range(3):
                sock.send(datagram)
                answers.append(sock.recv(4096))
        assert len(set(answers)) == 1 and verdict(answers[0]) == "accept", login.username

    for login in served.logins:
        accepts = auth_log(served.url, login.username)[("accept", "ok")]
        assert accepts - before[login.username][("accept", "ok")] == 1, login.username


def test_one_otp_sent_through_many_sockets_is_accepted_once(served: Served) -> None:
    """The same OTP in six requests from six sockets at once, for every login: one
    accept each, whichever workers decide."""
    for login in served.logins:
        otp = login.key.otp()
        replies = exchange_all([(served.node.auth_port, request(login, PASSWORD + otp))] * 6)
        verdicts = sorted(verdict(reply) for reply in replies)
        assert verdicts == ["accept"] + ["reject"] * 5, (login.username, verdicts)


def test_a_challenge_is_answered_through_another_socket(served: Served) -> None:
    """The password alone, then the OTP with the State from a socket of its own (a NAS
    may answer a challenge from another port): the second round may reach the other
    worker, which finds the challenge in the database."""
    for login in served.logins:
        (first,) = exchange_all([(served.node.auth_port, request(login, PASSWORD))])
        assert verdict(first) == "challenge"
        assert first is not None
        state = rp.AuthPacket(packet=first, secret=SECRET, dict=load_dictionary())["State"][0]
        (second,) = exchange_all(
            [(served.node.auth_port, request(login, login.key.otp(), state=state))]
        )
        assert verdict(second) == "accept", login.username


def test_a_challenge_is_answered_at_another_node(served: Served) -> None:
    """A second node on the same database takes over the second round."""
    other = radius_node("radius-other", served.url, served.workdir)
    with running(other):
        for login in served.logins[:3]:
            (first,) = exchange_all([(served.node.auth_port, request(login, PASSWORD))])
            assert first is not None and verdict(first) == "challenge"
            state = rp.AuthPacket(packet=first, secret=SECRET, dict=load_dictionary())["State"][0]
            (second,) = exchange_all(
                [(other.auth_port, request(login, login.key.otp(), state=state))]
            )
            assert verdict(second) == "accept", login.username


def test_radclient_is_accepted_by_the_workers(served: Served) -> None:
    login = served.logins[0]
    for _ in range(4):
        result = subprocess.run(
            [
                "radclient",
                "-x",
                "-r",
                "1",
                "-t",
                "3",
                f"127.0.0.1:{served.node.auth_port}",
                "auth",
                SECRET.decode(),
            ],
            input=(
                f"User-Name={login.username},User-Password='{PASSWORD}{login.key.otp()}',"
                "Message-Authenticator=0x00"
            ),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert "Access-Accept" in result.stdout, result.stdout + result.stderr


def test_the_workers_stop_with_the_parent(served: Served) -> None:
    """Killed outright, the parent takes its workers along: nothing answers behind it."""
    pids = served.worker_pids()[-2:]
    served.node.kill()
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [pid for pid in pids if _running(pid)]
    served.node.start()  # for the fixture's tear-down and later tests

    assert alive == []


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
