"""The metrics' bookkeeping: a decision counts once committed, a scraper by its network."""

from __future__ import annotations

import ipaddress

import pytest
from sqlalchemy.engine import URL

from flexnet import metrics
from flexnet.authn import authlog
from flexnet.authn.decision import Channel, Client, Reason, reject
from flexnet.config import AuthSettings
from flexnet.db import Database
from flexnet.web.metrics import allowed
from tests.conftest import NOW

LABELS = {"channel": "api", "outcome": "reject", "reason": "password_wrong"}


def decisions() -> float:
    return metrics.REGISTRY.get_sample_value("flexnet_login_decisions_total", LABELS) or 0.0


def record(database: Database, *, fail: bool) -> None:
    with database.session() as session:
        authlog.record(
            session,
            reject(Reason.PASSWORD_WRONG),
            username="emuster",
            client=Client(Channel.API, "portal", "198.51.100.7"),
            now=NOW,
        )
        if fail:
            raise RuntimeError("the unit of work fails after the decision was written")


def test_a_decision_counts_once_its_transaction_commits(sqlite_url: URL) -> None:
    database = Database.from_url(sqlite_url)
    before = decisions()
    try:
        record(database, fail=False)
        assert decisions() == before + 1
        with pytest.raises(RuntimeError):
            record(database, fail=True)
        assert decisions() == before + 1  # rolled back: that answer never went out
        record(database, fail=False)
        assert decisions() == before + 2  # nothing left over from the rolled-back one
    finally:
        database.dispose()


def test_a_batched_reject_counts_when_it_is_answered(sqlite_url: URL) -> None:
    database = Database.from_url(sqlite_url)
    log = authlog.RejectLog(database, AuthSettings(), interval=60)
    labels = {"channel": "radius", "outcome": "reject", "reason": "otp_invalid"}
    before = metrics.REGISTRY.get_sample_value("flexnet_login_decisions_total", labels) or 0.0
    try:
        log.reject(
            username="emuster",
            client=Client(Channel.RADIUS, "vpn", None),
            now=NOW,
            reason=Reason.OTP_INVALID,
        )
        counted = metrics.REGISTRY.get_sample_value("flexnet_login_decisions_total", labels)
        assert counted == before + 1
    finally:
        log.close()
        database.dispose()


def test_known_drop_causes_are_there_from_the_start() -> None:
    for cause in ("malformed", "unknown_client", "message_authenticator_missing", "overloaded"):
        value = metrics.REGISTRY.get_sample_value("flexnet_radius_dropped_total", {"cause": cause})
        assert value is not None, cause


NETWORKS = (ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("2001:db8::/32"))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),  # a dual-stack socket's IPv4 scraper
        ("2001:db8::5", True),
        ("10.2.0.1", False),
        ("127.0.0.1", False),
        ("", False),
        (None, False),
        ("not an address", False),
    ],
)
def test_scrapers_by_network(address: str | None, expected: bool) -> None:
    assert allowed(address, NETWORKS) is expected
