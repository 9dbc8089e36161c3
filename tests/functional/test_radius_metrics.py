"""``flexnet radius --metrics``: what the RADIUS server decided and dropped, for Prometheus.

A real server (one process, and two worker processes sharing the ports) gets accepts,
rejects, a malformed datagram and one from an unknown client over UDP; its endpoint is
scraped over HTTP. The counters move with the fixed codes as labels, and no username,
BSNR, key serial or public id appears anywhere in the scrape.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import port_for
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import URL

from flexnet.config import parse_metrics_address
from tests.support.cli import Invoke
from tests.support.nodes import (
    PASSWORD,
    Login,
    Node,
    exchange,
    exchange_all,
    radius_node,
    running,
    seed_logins,
    verdict,
)

USERNAMES = [f"metrik{n}" for n in range(4)]


@dataclass
class Served:
    node: Node
    logins: list[Login]
    metrics_port: int
    workers: int
    tmpdir: Path  # the node's TMPDIR: where the workers' metrics files live

    def scrape(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.status == 200
            return str(reply.read().decode())


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@pytest.fixture(scope="module", params=[1, 2], ids=["one-process", "two-workers"])
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> Iterator[Served]:
    workers: int = request.param
    workdir = tmp_path_factory.mktemp(f"metrics-{workers}")
    shutil.copyfile(sqlite_template, workdir / "flexnet.sqlite3")
    url = URL.create("sqlite+pysqlite", database=str(workdir / "flexnet.sqlite3"))
    logins = seed_logins(url, USERNAMES)
    port = port_for.select_random()
    node = radius_node("radius", url, workdir, workers=workers, radius_metrics=f"127.0.0.1:{port}")
    tmpdir = workdir / "tmp"
    tmpdir.mkdir()
    node.environ["TMPDIR"] = str(tmpdir)
    with running(node):
        yield Served(node, logins, port, workers, tmpdir)
    assert not list(tmpdir.iterdir()), "the metrics directory outlived the server"


def test_decisions_are_counted_by_channel_outcome_and_reason(served: Served) -> None:
    before = served.scrape()
    accepts = [(served.node.auth_port, login.request(login.key.otp())) for login in served.logins]
    wrong_otp = [
        (served.node.auth_port, login.request(login.key.public_id + "c" * 32))
        for login in served.logins
    ]
    wrong_password = [
        (served.node.auth_port, login.request(login.key.otp(), password="Falsch-2026-Kennwort"))
        for login in served.logins
    ]
    replies = exchange_all(accepts) + exchange_all(wrong_otp) + exchange_all(wrong_password)
    assert [verdict(reply) for reply in replies] == ["accept"] * 4 + ["reject"] * 8

    after = served.scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    decisions = "flexnet_login_decisions_total"
    assert moved(decisions, channel="radius", outcome="accept", reason="ok") == 4
    assert moved(decisions, channel="radius", outcome="reject", reason="password_wrong") == 4
    assert moved(decisions, channel="radius", outcome="reject") == 8
    assert moved(decisions) == 12
    # Four full logins went through all three phases; the fast path's rejects through none.
    for phase in ("otp", "hash", "database"):
        assert moved("flexnet_login_phase_seconds_count", phase=phase) == 8, phase
    assert moved("flexnet_radius_request_seconds_count", port="auth") == 12


def test_drops_are_counted_by_cause(served: Served) -> None:
    before = served.scrape()
    login = served.logins[0]
    assert exchange(served.node.auth_port, b"\x01\x07\x00\x05x", timeout=1) is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.2", 0))  # no NAS client has this address
        other.settimeout(1)
        other.sendto(login.request(login.key.otp()), ("127.0.0.1", served.node.auth_port))
        with pytest.raises(TimeoutError):
            other.recv(4096)

    after = served.scrape()
    cause = "flexnet_radius_dropped_total"
    assert value(after, cause, cause="malformed") - value(before, cause, cause="malformed") == 1
    unknown = value(after, cause, cause="unknown_client") - value(
        before, cause, cause="unknown_client"
    )
    assert unknown == 1
    assert value(after, "flexnet_login_decisions_total") == value(
        before, "flexnet_login_decisions_total"
    )


def test_no_personal_data_in_the_scrape(served: Served) -> None:
    login = served.logins[1]
    exchange_all([(served.node.auth_port, login.request(login.key.otp()))])
    text = served.scrape()

    assert "flexnet_login_decisions_total" in text
    for login in served.logins:
        assert login.username not in text
        assert login.key.public_id not in text  # also in the key's serial
    assert "87000" not in text  # the seeded practices' BSNRs
    assert PASSWORD not in text


def test_both_workers_are_counted(served: Served) -> None:
    """Rejects from 120 sockets: the kernel spreads them over the workers by source
    port, and the one endpoint reports all of them. With two workers, each writes a
    file of its own to a private directory the supervisor made."""
    before = served.scrape()
    login = served.logins[2]
    garbage = [(served.node.auth_port, login.request(login.key.public_id + "d" * 32))] * 120
    assert [verdict(reply) for reply in exchange_all(garbage)] == ["reject"] * 120

    after = served.scrape()
    name = "flexnet_login_decisions_total"
    assert value(after, name, outcome="reject") - value(before, name, outcome="reject") == 120
    directories = list(served.tmpdir.iterdir())
    if served.workers == 1:
        assert directories == []  # one process counts in memory
        return
    (directory,) = directories
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    owners = {path.name.rsplit("_", 1)[1] for path in directory.glob("counter_*.db")}
    assert len(owners) >= 2, owners  # both workers' counters (pids) in the sum
    assert all(os.path.exists(f"/proc/{pid.removesuffix('.db')}") for pid in owners)


def test_a_metrics_address_beyond_loopback_is_refused(invoke: Invoke) -> None:
    result = invoke("radius", "--auth-port", "0", "--metrics", "192.0.2.1:9812")

    assert result.exit_code == 2
    assert "keine Loopback-Adresse" in result.output
    assert "FLEXNET_RADIUS_METRICS_REMOTE=1" in result.output


def test_a_metrics_port_in_use_stops_the_start(invoke: Invoke) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("radius", "--auth-port", "0", "--metrics", f"127.0.0.1:{port}")

    assert result.exit_code == 1
    assert f"(127.0.0.1:{port}) nicht verwendbar" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9812", ("127.0.0.1", 9812)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9812", ("::1", 9812)),
        (":9812", ("127.0.0.1", 9812)),
    ],
)
def test_metrics_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_metrics_address(text) == expected


@pytest.mark.parametrize("text", ["localhost:9812", "127.0.0.1:65536", "127.0.0.1:x", "0.0.0.0:1"])
def test_bad_metrics_addresses(text: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse_metrics_address(text)


def test_any_address_when_allowed() -> None:
    assert parse_metrics_address("0.0.0.0:9812", remote=True) == ("0.0.0.0", 9812)  # noqa: S104
