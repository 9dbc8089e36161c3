"""Faults under load, with real processes (issue "Evidence of reliability").

- ``test_database_outage_under_load``: two ``flexnet radius`` nodes on a PostgreSQL
  cluster of this test's own take a steady load (fresh OTPs raced across both nodes,
  and invalid OTPs); the cluster is stopped for OUTAGE_SECONDS and started again. No
  request sent while the database was down (after ``pg_ctl stop`` returned, and not
  answered before ``pg_ctl start`` was run) is accepted; both nodes stay up, keep
  rejecting invalid OTPs and log, for each login they cannot decide, a line naming the
  database; logins are accepted again within RECOVERY_SECONDS of the restart without
  touching flexnet; no OTP is ever accepted twice, and each one replayed is rejected.
- ``test_sigkill_under_load`` (PostgreSQL and SQLite): a node is killed with SIGKILL
  while several clients log in, and started again. Every OTP consumed in the database
  has its accept in the auth log and no other OTP has one (the counter advance and the
  auth event are one transaction: nothing half-written); every OTP answered before the
  kill is rejected when replayed; an OTP that was in flight is accepted afterwards
  exactly when the database shows it was not consumed; no OTP is accepted twice.
"""

from __future__ import annotations

import logging
import re
import select
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import cycle
from pathlib import Path
from typing import cast

import pytest
from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import URL

from flexnet.db import make_engine
from flexnet.ops import migrate
from tests.conftest import postgresql_cluster
from tests.support.nodes import (
    Login,
    Node,
    auth_log,
    exchange,
    otp_counters,
    radius_node,
    running,
    seed_logins,
    stored_counters,
    verdict,
)

log = logging.getLogger(__name__)

OUTAGE_SECONDS = 4.0
RECOVERY_SECONDS = 10.0
STEP_SECONDS = 0.025  # the steady load: one step (a raced OTP or an invalid one) each
DB_TIMEOUT_MS = "2000"  # the nodes' FLEXNET_DB_TIMEOUT_MS: connect, statement, lock wait
PATIENCE_SECONDS = 5.0  # a reply later than this counts as silence
# A log record's first line at WARNING or above (tracebacks follow on lines of their own).
PROBLEM = re.compile(r"\d{4}-\d\d-\d\d [\d:,]+ (WARNING|ERROR|CRITICAL) ")
GARBAGE = "c" * 32  # a ciphertext no key decrypts to a valid OTP


@dataclass
class Sent:
    """One Access-Request of the load and what came of it (monotonic times)."""

    login: Login
    otp: str
    node: str
    at: float
    answered: float | None = None
    verdict: str = "silence"

    @property
    def valid(self) -> bool:
        return not self.otp.endswith(GARBAGE)


# --- a PostgreSQL cluster of this test's own ---------------------------------------------


@pytest.fixture
def own_postgresql() -> Iterator[PostgreSQLExecutor]:
    """A cluster this test may stop and start (the session's server keeps running)."""
    with postgresql_cluster("flexnet-pg-own-") as executor:
        yield executor


@pytest.fixture
def own_url(own_postgresql: PostgreSQLExecutor) -> URL:
    DatabaseJanitor(
        user="postgres", host=own_postgresql.host, port=own_postgresql.port, dbname="flexnet"
    ).init()
    url = URL.create(
        "postgresql+psycopg",
        username="postgres",
        host=own_postgresql.host,
        port=own_postgresql.port,
        database="flexnet",
    )
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


# --- a steady load that never waits for an answer ----------------------------------------


@dataclass
class SteadyLoad:
    """Every STEP_SECONDS: a fresh OTP of the next key sent to every node at once, or an
    invalid OTP to one node. Each request has a socket of its own, read when its reply
    comes, so silence does not slow the load down and a late reply is still seen."""

    nodes: dict[str, Node]
    logins: list[Login]
    sent: list[Sent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        steps = cycle(
            [(login, True) for login in self.logins] + [(login, False) for login in self.logins]
        )
        invalid_to = cycle(self.nodes)
        with selectors.DefaultSelector() as selector:
            next_step = time.monotonic()
            while not self.stop.is_set() or selector.get_map():
                if not self.stop.is_set() and time.monotonic() >= next_step:
                    login, valid = next(steps)
                    otp = login.key.otp() if valid else login.key.public_id + GARBAGE
                    for node in self.nodes if valid else [next(invalid_to)]:
                        self._send(selector, Sent(login, otp, node, time.monotonic()))
                    next_step += STEP_SECONDS
                self._collect(selector, max(0.0, next_step - time.monotonic()))

    def _send(self, selector: selectors.BaseSelector, request: Sent) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.connect(("127.0.0.1", self.nodes[request.node].auth_port))
        sock.send(request.login.request(request.otp))
        selector.register(sock, selectors.EVENT_READ, request)
        self.sent.append(request)

    @staticmethod
    def _collect(selector: selectors.BaseSelector, timeout: float) -> None:
        for key, _ in selector.select(timeout):
            sock, request = cast(socket.socket, key.fileobj), cast(Sent, key.data)
            request.answered = time.monotonic()
            try:
                request.verdict = verdict(sock.recv(4096))
            except ConnectionRefusedError:
                request.verdict = "refused"
            selector.unregister(sock)
            sock.close()
        now = time.monotonic()
        for key in list(selector.get_map().values()):
            if now - cast(Sent, key.data).at > PATIENCE_SECONDS:  # silence
                selector.unregister(key.fileobj)
                cast(socket.socket, key.fileobj).close()


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.postgres
def test_database_outage_under_load(
    own_postgresql: PostgreSQLExecutor, own_url: URL, tmp_path: Path
) -> None:
    logins = seed_logins(own_url, [f"steady{n}" for n in range(4)])
    nodes = {
        name: radius_node(f"radius-{name}", own_url, tmp_path, db_timeout_ms=DB_TIMEOUT_MS)
        for name in "ab"
    }
    load = SteadyLoad(nodes, logins)
    generator = threading.Thread(target=load.run)
    with running(*nodes.values()):
        generator.start()
        try:
            assert wait_until(lambda: _accepts(load.sent, after=0) >= 20, 15)
            log_offsets = {name: len(node.log()) for name, node in nodes.items()}
            stop_began = time.monotonic()
            own_postgresql.stop()
            stop_done = time.monotonic()
            time.sleep(OUTAGE_SECONDS)
            start_began = time.monotonic()
            own_postgresql.start()
            start_done = time.monotonic()
            wait_until(
                lambda: all(_accepts(load.sent, after=start_done, login=x) for x in logins),
                RECOVERY_SECONDS,
            )
        finally:
            load.stop.set()
            generator.join()
        alive = {name: node.alive() for name, node in nodes.items()}
        outage_logs = {name: node.log()[log_offsets[name] :] for name, node in nodes.items()}
        replays = [
            verdict(exchange(nodes["a"].auth_port, request.login.request(request.otp)))
            for request in load.sent
            if request.valid
        ]

    down = [r for r in load.sent if r.at >= stop_done and (r.answered or 0) <= start_began]
    recovered = min(
        (r.answered or 0 for r in load.sent if r.at >= start_done and r.verdict == "accept"),
        default=float("inf"),
    )
    accepted = Counter(r.otp for r in load.sent if r.verdict == "accept")
    log.info(
        "outage: pg_ctl stop %.2f s, down %.2f s, start %.2f s; %d requests while down: %s; "
        "first accept %.2f s after the restart; %d requests in all, %d accepts",
        stop_done - stop_began,
        start_began - stop_done,
        start_done - start_began,
        len(down),
        Counter((r.valid, r.verdict) for r in down),
        recovered - start_done,
        len(load.sent),
        sum(accepted.values()),
    )
    assert alive == {"a": True, "b": True}
    assert len([r for r in down if r.valid]) >= 20
    assert [r for r in down if r.verdict == "accept"] == []
    assert "reject" in {r.verdict for r in down}  # the nodes kept answering what they could
    assert recovered - start_done <= RECOVERY_SECONDS
    for login in logins:
        assert _accepts(load.sent, after=start_done, login=login)
        assert auth_log(own_url, login.username)[("accept", "ok")] >= _accepts(
            load.sent, after=0, login=login
        )
    assert max(accepted.values()) == 1
    assert set(replays) == {"reject"}
    for name, text in outage_logs.items():
        problems = [line for line in text.splitlines() if PROBLEM.match(line)]
        per_request = [line for line in problems if " flexnet.radius.handler: " in line]
        # Each undecided request has a line of its own that names the database as the cause.
        assert per_request, (name, problems[:5])
        assert [line for line in per_request if "database" not in line.lower()] == [], name


def _accepts(sent: list[Sent], *, after: float, login: Login | None = None) -> int:
    return sum(
        r.verdict == "accept" and r.at >= after and (login is None or r.login is login)
        for r in list(sent)
    )


# --- SIGKILL mid-load ------------------------------------------------------------------


CLIENTS = 4
KILL_AFTER_ACCEPTS = 120
ANSWER_SECONDS = 15.0  # longer than any wait inside the node (SQLite's busy timeout: 10 s)


@dataclass
class Client:
    """Logs in again and again with fresh OTPs of one key, one request at a time, and
    waits for each answer until it comes or the node is dead."""

    login: Login
    node: Node
    sent: list[tuple[str, str]] = field(default_factory=list)  # (otp, verdict)
    slowest: float = 0.0

    def run(self, stop: threading.Event, killed: threading.Event) -> None:
        while not stop.is_set():
            otp = self.login.key.otp()
            self.sent.append((otp, "pending"))
            started = time.monotonic()
            self.sent[-1] = (otp, self._ask(otp, killed))
            self.slowest = max(self.slowest, time.monotonic() - started)

    def _ask(self, otp: str, killed: threading.Event) -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("127.0.0.1", self.node.auth_port))
            sock.send(self.login.request(otp))
            deadline = time.monotonic() + ANSWER_SECONDS
            while time.monotonic() < deadline:
                dead = killed.is_set()  # a reply sent before the kill is already queued
                if select.select([sock], [], [], 0 if dead else 0.05)[0]:
                    return verdict(sock.recv(4096))
                if dead:
                    break
        return "silence"

    def accepts(self) -> int:
        return sum(v == "accept" for _, v in self.sent)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_sigkill_under_load(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> None:
    url: URL = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    logins = seed_logins(url, [f"client{n}" for n in range(CLIENTS)])
    node = radius_node("radius", url, tmp_path)
    clients = [Client(login, node) for login in logins]
    stop, killed = threading.Event(), threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop, killed)) for c in clients]
    with running(node):
        for thread in threads:
            thread.start()
        try:
            assert wait_until(
                lambda: sum(c.accepts() for c in clients) >= KILL_AFTER_ACCEPTS, 30
            ), node.log()[-3000:]
        finally:
            stop.set()  # no new requests; those in flight are still being decided
            node.kill()
            killed.set()
            for thread in threads:
                thread.join()
        node.start()
        consumed = {c.login.username: _consumed(url, c) for c in clients}
        logged = {c.login.username: auth_log(url, c.login.username) for c in clients}
        first_replay = [_replay(c) for c in clients]
        second_replay = [_replay(c) for c in clients]

    for client, replies, again in zip(clients, first_replay, second_replay, strict=True):
        otps = [otp for otp, _ in client.sent]
        verdicts = [v for _, v in client.sent]
        answered, used = verdicts.count("accept"), consumed[client.login.username]
        # Every login was accepted until the kill; only the one in flight went unanswered.
        assert verdicts == ["accept"] * answered + ["silence"] * (len(otps) - answered)
        assert len(otps) - answered <= 1
        assert answered <= used <= len(otps)
        # Nothing half-written: the OTPs consumed have their accept logged, and only they,
        # but for the one in flight at the kill: a login uses its OTP up in a first short
        # write, before the password is hashed with no transaction open (issue 17; a valid
        # OTP is used up whatever follows, the customer's rule), so a kill during the hash
        # leaves that OTP used up with no decision. Before issue 17 the OTP and the accept
        # were one transaction, and a kill during the hash revived the OTP instead.
        # As Counters: a client with no accept before the kill has no logged entry at all.
        accepts = logged[client.login.username][("accept", "ok")]
        assert Counter(logged[client.login.username]) == Counter({("accept", "ok"): accepts})
        assert answered <= accepts <= used <= accepts + 1
        # Replayed in order: what was consumed is rejected, what never was is accepted now.
        assert replies == ["reject"] * used + ["accept"] * (len(otps) - used)
        assert again == ["reject"] * len(otps)
        undecided = used - accepts  # used up before its hash, and never decided (0 or 1)
        assert auth_log(url, client.login.username) == {
            ("accept", "ok"): len(otps) - undecided,
            ("reject", "otp_replayed"): used + len(otps),
        }
        accepted = Counter(
            otp for otp, v in [*client.sent, *zip(otps, replies, strict=True)] if v == "accept"
        )
        assert max(accepted.values()) == 1
        assert set(accepted) == set(otps) - set(otps[answered:used])
    log.info(
        "%s: %d logins before the kill (slowest answer %.2f s), %d in flight, %d committed",
        backend,
        sum(len(c.sent) for c in clients),
        max(c.slowest for c in clients),
        sum(v != "accept" for c in clients for _, v in c.sent),
        sum(consumed.values()) - sum(c.accepts() for c in clients),
    )


def _consumed(url: URL, client: Client) -> int:
    """How many of the client's OTPs the database has used up (they are sent in order)."""
    stored = stored_counters(url, client.login.key)
    return sum(otp_counters(client.login.key, otp) <= stored for otp, _ in client.sent)


def _replay(client: Client) -> list[str]:
    return [
        verdict(exchange(client.node.auth_port, client.login.request(otp)))
        for otp, _ in client.sent
    ]
