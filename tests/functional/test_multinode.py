"""Several flexnet nodes on one PostgreSQL, as production runs them (issue "Evidence of
reliability").

Two ``flexnet radius`` processes and the web app under gunicorn share one database of the
test server; every request is a real datagram or HTTP request to a real process.

- ``test_one_otp_raced_across_nodes_is_accepted_exactly_once``: in each of ROUNDS rounds
  one fresh OTP goes at the same moment to RADIUS node A and node B, and every
  WEB_EVERY-th round to ``POST /api/v1/auth`` of the web app as well. Exactly one node
  accepts; every other copy is an explicit reject, never silence. Afterwards the auth log
  holds exactly one accept per round and each key's stored counters are its last OTP's.
- ``test_failures_count_once_on_every_node``: wrong passwords with valid OTPs, sent at
  the same moment to A, B and the web app, all count: ``users.failed_logins`` equals the
  failures sent. At the lockout threshold every node rejects the right password; the
  first failure after the temporary lock hard-locks the user, again on every node.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPConnection

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet.clients import apiclients
from flexnet.db import Database
from flexnet.models import LockCause, User, UserStatus
from tests.conftest import NOW, STAFF
from tests.support.nodes import (
    PASSWORD,
    Login,
    Node,
    auth_log,
    exchange_all,
    otp_counters,
    radius_node,
    running,
    seed_logins,
    stored_counters,
    verdict,
    wait_for_health,
    web_node,
)

pytestmark = pytest.mark.postgres
log = logging.getLogger(__name__)

ROUNDS = 1000
RACERS = 4  # keys raced in parallel; the rounds of one key run one after the other
WEB_EVERY = 4
THRESHOLD, HARD_LOCK = 6, 7
LOCKOUT = {
    "lockout_threshold": str(THRESHOLD),
    "hard_lock_after": str(HARD_LOCK),
    "lockout_delay_seconds": "3",
}
WRONG = "Falsches-Kennwort-1"


@dataclass(frozen=True)
class Cluster:
    url: URL
    radius: dict[str, Node]
    web: Node
    api_key: str
    racers: list[Login]
    lockme: Login


@dataclass(frozen=True)
class Attempt:
    """One login sent to one node: "a" or "b" (RADIUS) or "web" (POST /api/v1/auth)."""

    node: str
    otp: str
    password: str = PASSWORD


@pytest.fixture(scope="module")
def url(make_pg_database: Callable[..., URL], pg_template: str) -> URL:
    return make_pg_database("flexnet_multinode", template=pg_template)


@pytest.fixture(scope="module")
def cluster(url: URL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two RADIUS nodes and the web app with the same settings, on one database,
    seeded before they start."""
    racers = seed_logins(url, [f"racer{n}" for n in range(RACERS)])
    (lockme,) = seed_logins(url, ["lockme"], keys_each=3)
    database = Database.from_url(url)
    with database.session() as session:
        _, api_key = apiclients.add_client(
            session, name="BD-Online", require_otp=True, actor=STAFF, now=NOW
        )
    database.dispose()
    workdir = tmp_path_factory.mktemp("multinode")
    radius = {name: radius_node(f"radius-{name}", url, workdir, **LOCKOUT) for name in "ab"}
    web = web_node("web", url, workdir, **LOCKOUT)
    with running(*radius.values(), web):
        wait_for_health(web)
        yield Cluster(url, radius, web, api_key, racers, lockme)


def race(cluster: Cluster, login: Login, attempts: Sequence[Attempt]) -> list[str]:
    """Send all attempts at the same moment; their verdicts, in order.

    The datagrams are built first; then the HTTP requests go out, the datagrams right
    after them, back to back; only then is any answer read.
    """
    datagrams = {
        n: (
            cluster.radius[attempt.node].auth_port,
            login.request(attempt.otp, password=attempt.password),
        )
        for n, attempt in enumerate(attempts)
        if attempt.node != "web"
    }
    calls = {
        n: _post_login(cluster, login, attempt)
        for n, attempt in enumerate(attempts)
        if attempt.node == "web"
    }
    replies = exchange_all(list(datagrams.values()))
    verdicts = {n: verdict(reply) for n, reply in zip(datagrams, replies, strict=True)}
    verdicts.update({n: _api_verdict(call) for n, call in calls.items()})
    return [verdicts[n] for n in range(len(attempts))]


def _post_login(cluster: Cluster, login: Login, attempt: Attempt) -> HTTPConnection:
    connection = HTTPConnection("127.0.0.1", cluster.web.http_port, timeout=10)
    body = {"username": login.username, "password": attempt.password, "otp": attempt.otp}
    connection.request(
        "POST",
        "/api/v1/auth",
        body=json.dumps(body),
        headers={"Authorization": f"Bearer {cluster.api_key}", "Content-Type": "application/json"},
    )
    return connection


def _api_verdict(connection: HTTPConnection) -> str:
    try:
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    if response.status != 200:
        return f"http {response.status}"
    result: str = json.loads(answer)["result"]
    return result


# --- one OTP, several nodes ------------------------------------------------------------


@dataclass
class KeyRounds:
    login: Login
    verdicts: list[list[str]]  # per round: the verdicts of a, b (and web)
    last_otp: str = ""


def race_rounds(cluster: Cluster, login: Login, rounds: int, start: threading.Barrier) -> KeyRounds:
    """This key's rounds: each a fresh OTP raced across A and B (and sometimes the web app)."""
    result = KeyRounds(login, [])
    start.wait()
    for number in range(rounds):
        result.last_otp = otp = login.key.otp()
        nodes = ("a", "b", "web") if number % WEB_EVERY == 0 else ("a", "b")
        result.verdicts.append(race(cluster, login, [Attempt(node, otp) for node in nodes]))
    return result


def test_one_otp_raced_across_nodes_is_accepted_exactly_once(cluster: Cluster) -> None:
    start = threading.Barrier(RACERS)
    started = time.monotonic()
    with ThreadPoolExecutor(RACERS) as pool:
        futures = [
            pool.submit(race_rounds, cluster, login, ROUNDS // RACERS, start)
            for login in cluster.racers
        ]
        keys = [future.result() for future in futures]
    elapsed = time.monotonic() - started

    rounds = [verdicts for key in keys for verdicts in key.verdicts]
    winners = Counter(["a", "b", "web"][v.index("accept")] for v in rounds if "accept" in v)
    log.info("%d rounds in %.1f s, accepts by node: %s", len(rounds), elapsed, dict(winners))
    assert len(rounds) >= 1000
    assert sum(len(verdicts) == 3 for verdicts in rounds) >= len(rounds) // WEB_EVERY
    assert [v for v in rounds if sorted(v) != ["accept"] + ["reject"] * (len(v) - 1)] == []
    for key in keys:
        copies = sum(len(verdicts) for verdicts in key.verdicts)
        assert auth_log(cluster.url, key.login.username) == {
            ("accept", "ok"): len(key.verdicts),
            ("reject", "otp_replayed"): copies - len(key.verdicts),
        }
        assert stored_counters(cluster.url, key.login.key) == otp_counters(
            key.login.key, key.last_otp
        )


# --- lockout counted across nodes ------------------------------------------------------


def user_row(url: URL, username: str) -> User:
    database = Database.from_url(url)
    try:
        with database.reader() as session:
            user = session.scalars(select(User).where(User.username == username)).one()
            session.expunge(user)
            return user
    finally:
        database.dispose()


def at_once(login: Login, nodes: Sequence[str], *, password: str) -> list[Attempt]:
    """One attempt per node, each with a fresh OTP of a key of its own, so that no OTP
    can overtake another of the same key and turn it into a replay."""
    return [Attempt(node, login.keys[n].otp(), password) for n, node in enumerate(nodes)]


def test_failures_count_once_on_every_node(cluster: Cluster) -> None:
    login = cluster.lockme
    everywhere = ("a", "b", "web")

    wrong_1 = race(cluster, login, at_once(login, everywhere, password=WRONG))
    after_first = user_row(cluster.url, login.username)
    wrong_2 = race(cluster, login, at_once(login, everywhere, password=WRONG))
    throttled = user_row(cluster.url, login.username)
    right_while_throttled = race(cluster, login, at_once(login, everywhere, password=PASSWORD))
    assert throttled.throttled_until is not None
    time.sleep(max(0.0, (throttled.throttled_until - datetime.now(UTC)).total_seconds()) + 0.2)
    wrong_3 = race(cluster, login, at_once(login, ["b"], password=WRONG))
    locked = user_row(cluster.url, login.username)
    right_when_locked = race(cluster, login, at_once(login, everywhere, password=PASSWORD))

    assert wrong_1 == wrong_2 == right_while_throttled == right_when_locked == ["reject"] * 3
    assert wrong_3 == ["reject"]
    assert (after_first.failed_logins, after_first.throttled_until) == (3, None)
    assert throttled.failed_logins == THRESHOLD
    assert throttled.status is UserStatus.ACTIVE
    assert locked.failed_logins == HARD_LOCK
    assert (locked.status, locked.lock_cause) == (UserStatus.LOCKED, LockCause.THROTTLE)
    assert auth_log(cluster.url, login.username) == {
        ("reject", "password_wrong"): HARD_LOCK,
        ("reject", "user_throttled"): 3,
        ("reject", "user_locked_throttle"): 3,
    }
