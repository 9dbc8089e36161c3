"""Real flexnet processes for tests: RADIUS nodes and the web app, as production runs them.

A node is started the way an operator starts it (``flexnet radius``,
``gunicorn flexnet.wsgi:app``) with a FLEXNET_* environment of its own; its log goes to a
file the test can read. Also here: datagrams sent to several nodes at once, the logins a
cluster's database is seeded with, and what that database says.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import port_for
from pyrad import packet as rp
from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlalchemy.engine import URL
from yubiotp.otp import decode_otp

from flexnet.clients import nas
from flexnet.db import Database
from flexnet.models import AuthEvent, NasClient, Practice, Token
from tests.conftest import BOX, NOW, STAFF, TEST_AUDIT_KEY, TEST_MASTER_KEY, TEST_SECRET_KEY
from tests.support.radius import SECRET, encoded_access_request
from tests.support.seed import add_login
from tests.support.yubikeys import SimulatedKey

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_SECONDS = 30.0


def node_environment(url: URL, instance: Path, **settings: str) -> dict[str, str]:
    """This process's environment without FLEXNET_*, plus a complete node configuration."""
    instance.mkdir(parents=True, exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLEXNET_")}
    environ.update(
        FLEXNET_DATABASE_URL=url.render_as_string(hide_password=False),
        FLEXNET_SECRET_KEY=TEST_SECRET_KEY,
        FLEXNET_MASTER_KEY=TEST_MASTER_KEY,
        FLEXNET_AUDIT_KEY=TEST_AUDIT_KEY,
        FLEXNET_INSTANCE=str(instance),
        FLEXNET_LOG_LEVEL="INFO",
        FLEXNET_COOKIE_SECURE="0",
    )
    environ.update({f"FLEXNET_{name.upper()}": value for name, value in settings.items()})
    return environ


@dataclass
class Node:
    """One running flexnet process and where it listens."""

    name: str
    command: list[str]
    environ: dict[str, str]
    log_path: Path
    ports: dict[str, int]
    ready_line: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def auth_port(self) -> int:
        return self.ports["auth"]

    @property
    def acct_port(self) -> int:
        return self.ports["acct"]

    @property
    def http_port(self) -> int:
        return self.ports["http"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Node:
        offset = len(self.log())
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.command,
                env=self.environ,
                cwd=REPO,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_SECONDS
        while self.ready_line not in self.log()[offset:]:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited at start:\n{self.log()[offset:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready in time:\n{self.log()[offset:]}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no finishing of requests in flight."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; the exit code (None if it had to be killed)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def radius_node(
    name: str,
    url: URL,
    workdir: Path,
    *,
    workers: int = 1,
    auth_port: int | None = None,
    **settings: str,
) -> Node:
    """A ``flexnet radius`` process on free loopback ports (not yet started); with
    ``workers`` worker processes sharing them. With ``auth_port``: on it and the next
    port (accounting), as FreeRADIUS expects of a home server."""
    ports = (
        {"auth": port_for.select_random(), "acct": port_for.select_random()}
        if auth_port is None
        else {"auth": auth_port, "acct": auth_port + 1}
    )
    command = [
        str(BIN / "flexnet"),
        "radius",
        "--auth-port",
        str(ports["auth"]),
        "--acct-port",
        str(ports["acct"]),
        "--workers",
        str(workers),
    ]
    environ = node_environment(url, workdir / name, **settings)
    return Node(name, command, environ, workdir / f"{name}.log", ports, "RADIUS listening")


def web_node(name: str, url: URL, workdir: Path, **settings: str) -> Node:
    """The web app under gunicorn, as in production (not yet started)."""
    ports = {"http": port_for.select_random()}
    command = [
        str(BIN / "gunicorn"),
        "--workers",
        "2",
        "--bind",
        f"127.0.0.1:{ports['http']}",
        "flexnet.wsgi:app",
    ]
    environ = node_environment(url, workdir / name, **settings)
    return Node(name, command, environ, workdir / f"{name}.log", ports, "Booting worker")


def wait_for_health(node: Node) -> dict[str, str]:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{node.http_port}/healthz", timeout=2
            ) as reply:
                result: dict[str, str] = json.load(reply)
                return result
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{node.name} did not answer /healthz:\n{node.log()}")


@contextmanager
def running(*nodes: Node) -> Iterator[tuple[Node, ...]]:
    """Start the nodes; stop whatever still runs at the end (SIGTERM, then SIGKILL)."""
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def exchange(port: int, datagram: bytes, *, timeout: float = 3.0) -> bytes | None:
    """Send one UDP datagram to 127.0.0.1:port; the reply, or None on silence."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(datagram, ("127.0.0.1", port))
        try:
            return sock.recv(4096)
        except TimeoutError:
            return None


def exchange_all(
    datagrams: Sequence[tuple[int, bytes]], *, timeout: float = 5.0
) -> list[bytes | None]:
    """Send each (port, datagram) from a socket of its own, all back to back, then wait
    for every reply; the replies in order, None where a node stayed silent."""
    with ExitStack() as stack:
        sockets = []
        for port, _ in datagrams:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            sock.connect(("127.0.0.1", port))
            sock.setblocking(False)
            sockets.append(sock)
        for sock, (_, datagram) in zip(sockets, datagrams, strict=True):
            sock.send(datagram)
        replies: dict[socket.socket, bytes | None] = {}
        deadline = time.monotonic() + timeout
        while len(replies) < len(sockets) and (left := deadline - time.monotonic()) > 0:
            waiting = [sock for sock in sockets if sock not in replies]
            readable, _, _ = select.select(waiting, [], [], left)
            for sock in readable:
                try:
                    replies[sock] = sock.recv(4096)
                except ConnectionRefusedError:  # nothing listens on that port (any more)
                    replies[sock] = None
        return [replies.get(sock) for sock in sockets]


VERDICTS = {rp.AccessAccept: "accept", rp.AccessReject: "reject", rp.AccessChallenge: "challenge"}


def verdict(reply: bytes | None) -> str:
    """accept, reject, challenge, silence (no reply) or the unexpected code."""
    if reply is None:
        return "silence"
    return VERDICTS.get(reply[0], f"code {reply[0]}")


# --- a cluster's database: logins seeded, and what it says afterwards -----------------

PASSWORD = "Sommer-Regen-2026!"
NAS_NAME = "vpn"


@dataclass(frozen=True)
class Login:
    """A user (password PASSWORD) of a practice of their own, and its Yubikeys."""

    username: str
    keys: list[SimulatedKey]

    @property
    def key(self) -> SimulatedKey:
        return self.keys[0]

    def request(self, otp: str, *, password: str = PASSWORD) -> bytes:
        """An Access-Request (PAP: password followed by the OTP) as the concentrator sends it."""
        return encoded_access_request(self.username, password + otp, secret=SECRET)


def seed_logins(url: URL, usernames: Sequence[str], *, keys_each: int = 1) -> list[Login]:
    """Commit the loopback NAS (once) and, per username, a new practice, the user and
    ``keys_each`` active keys of that practice."""
    database = Database.from_url(url)
    try:
        with database.session() as session:
            if session.scalar(sql_select(NasClient.id).where(NasClient.name == NAS_NAME)) is None:
                nas.add_nas(
                    session,
                    name=NAS_NAME,
                    address="127.0.0.1",
                    secret=SECRET.decode(),
                    box=BOX,
                    actor=STAFF,
                    now=NOW,
                )
            practices = session.scalar(sql_select(func.count()).select_from(Practice)) or 0
            logins = []
            for number, username in enumerate(usernames, start=practices):
                bsnr, user = f"87{number:07d}", {"username": username, "password": PASSWORD}
                keys = [
                    add_login(session, BOX, bsnr=bsnr, now=NOW, **(user if n == 0 else {}))
                    for n in range(keys_each)
                ]
                logins.append(Login(username, keys))
    finally:
        database.dispose()
    return logins


def auth_log(url: URL, username: str) -> Counter[tuple[str, str]]:
    """How often each (outcome, reason) was logged for this username."""
    database = Database.from_url(url)
    try:
        with database.reader() as session:
            rows = session.execute(
                sql_select(AuthEvent.outcome, AuthEvent.reason, func.count())
                .where(AuthEvent.username == username)
                .group_by(AuthEvent.outcome, AuthEvent.reason)
            )
            return Counter({(outcome, reason): count for outcome, reason, count in rows})
    finally:
        database.dispose()


def stored_counters(url: URL, key: SimulatedKey) -> tuple[int, int]:
    """The (usage, session) counters the database holds for this key: its replay state."""
    database = Database.from_url(url)
    try:
        with database.reader() as session:
            row = session.execute(
                sql_select(Token.otp_usage_counter, Token.otp_session_counter).where(
                    Token.public_id == key.public_id
                )
            ).one()
            return (row[0], row[1])
    finally:
        database.dispose()


def otp_counters(key: SimulatedKey, otp: str) -> tuple[int, int]:
    """An OTP's (usage, session) counters, decoded by yubiotp (not by flexnet)."""
    _, decoded = decode_otp(otp.encode(), key.aes_key)
    return (decoded.session & 0x7FFF, decoded.counter)
