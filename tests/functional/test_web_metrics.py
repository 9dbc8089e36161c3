"""``/metrics`` of the web app: only for the scrapers' networks, behind proxies too.

The app runs under gunicorn as in production and is scraped over HTTP; the waiting
work (letters due, open requests) is counted from the database at scrape time.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import URL

from flexnet.db import Database, utcnow
from flexnet.models import (
    Letter,
    LetterKind,
    LetterStatus,
    Practice,
    RequestKind,
    RequestStatus,
    ServiceRequest,
)
from tests.conftest import BOX, NOW
from tests.support.nodes import Node, running, wait_for_health, web_node
from tests.support.seed import add_login


def scrape(node: Node, *, forwarded: str | None = None) -> tuple[int, str]:
    """GET /metrics: the status and the body."""
    request = urllib.request.Request(f"http://127.0.0.1:{node.http_port}/metrics")
    if forwarded is not None:
        request.add_header("X-Forwarded-For", forwarded)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - loopback
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def samples(text: str) -> dict[str, float]:
    """Every unlabelled sample of a scrape by name."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> URL:
    """A database with two letters due (and one cancelled), three open requests (one verified)."""
    path = tmp_path_factory.mktemp("web-metrics") / "flexnet.sqlite3"
    shutil.copyfile(sqlite_template, path)
    url = URL.create("sqlite+pysqlite", database=str(path))
    database = Database.from_url(url)
    try:
        with database.session() as session:
            add_login(session, BOX, bsnr="881230000", now=NOW)
            practice = session.query(Practice).filter_by(bsnr="881230000").one()
            for status in (LetterStatus.DUE, LetterStatus.DUE, LetterStatus.CANCELLED):
                session.add(
                    Letter(
                        kind=LetterKind.TERMS,
                        status=status,
                        practice_id=practice.id,
                        created_at=utcnow(),
                        created_by="test",
                    )
                )
            for status in (RequestStatus.OPEN,) * 3 + (RequestStatus.VERIFIED,):
                session.add(
                    ServiceRequest(
                        created_at=utcnow(),
                        bsnr="881230000",
                        kind=RequestKind.UNLOCK,
                        contact_person="Frau Beispiel",
                        phone="0391 1",
                        status=status,
                    )
                )
    finally:
        database.dispose()
    return url


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-metrics-nodes")


@pytest.fixture(scope="module")
def direct(database_url: URL, workdir: Path) -> Iterator[Node]:
    """Scrapers from loopback allowed, no proxy in front."""
    node = web_node("direct", database_url, workdir, metrics_networks="10.0.0.0/8, 127.0.0.0/8")
    with running(node):
        wait_for_health(node)
        yield node


def letters_due_before_the_gauges(database_url: URL) -> int:
    """Letters due as the gauge must count them (those seeded by add_login included)."""
    database = Database.from_url(database_url)
    try:
        with database.reader() as session:
            return session.query(Letter).filter_by(status=LetterStatus.DUE).count()
    finally:
        database.dispose()


def test_an_allowed_scraper_gets_the_gauges_of_waiting_work(
    direct: Node, database_url: URL
) -> None:
    status, body = scrape(direct)

    assert status == 200, body
    values = samples(body)
    assert values["flexnet_database_reachable"] == 1
    assert values["flexnet_letters_due"] == letters_due_before_the_gauges(database_url)
    assert values["flexnet_letters_due"] >= 2
    assert values["flexnet_requests_open"] == 3
    assert values["flexnet_disconnects_queued"] == 0
    assert "# HELP flexnet_login_decisions_total" in body
    assert "# TYPE flexnet_login_phase_seconds histogram" in body
    assert "881230000" not in body  # no BSNR in any label


def test_the_gauges_follow_the_database(direct: Node, database_url: URL) -> None:
    database = Database.from_url(database_url)
    try:
        with database.session() as session:
            session.add(
                ServiceRequest(
                    created_at=utcnow(),
                    bsnr="881230000",
                    kind=RequestKind.UNLOCK,
                    contact_person="Herr Beispiel",
                    phone="0391 2",
                    status=RequestStatus.OPEN,
                )
            )
        assert samples(scrape(direct)[1])["flexnet_requests_open"] == 4
        with database.session() as session:
            for request in session.query(ServiceRequest).filter_by(phone="0391 2"):
                request.status = RequestStatus.REJECTED
        assert samples(scrape(direct)[1])["flexnet_requests_open"] == 3
    finally:
        database.dispose()


def test_other_addresses_are_refused_and_behind_a_proxy_the_forwarded_one_counts(
    database_url: URL, workdir: Path
) -> None:
    """One reverse proxy (on loopback) in front: the scraper's address is the one it
    forwards, not the proxy's own; a hop the client wrote itself does not count."""
    node = web_node("proxied", database_url, workdir, metrics_networks="192.0.2.0/24", proxies="1")
    with running(node):
        wait_for_health(node)
        assert scrape(node)[0] == 403  # the proxy's own address (loopback) is not allowed
        status, body = scrape(node, forwarded="192.0.2.7")
        assert status == 200, body
        assert samples(body)["flexnet_requests_open"] == 3
        assert scrape(node, forwarded="198.51.100.1")[0] == 403
        assert scrape(node, forwarded="192.0.2.7, 198.51.100.1")[0] == 403  # spoofed first hop
        assert "metrics: scrape from 198.51.100.1 refused" in node.log()


def test_without_networks_there_is_no_metrics_page(database_url: URL, workdir: Path) -> None:
    node = web_node("unconfigured", database_url, workdir)
    with running(node):
        wait_for_health(node)
        assert scrape(node)[0] == 404
        assert scrape(node, forwarded="127.0.0.1")[0] == 404
