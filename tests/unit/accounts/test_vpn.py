"""Sessions from accounting: keyed by NAS client, concentrator and session id."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.accounts import vpn
from flexnet.clients import nas
from flexnet.errors import ValidationError
from flexnet.models import AuditEntry, NasClient, VpnSession
from tests.conftest import BOX, NOW, STAFF


def add_nas(session: Session, *, proxy: bool) -> NasClient:
    return nas.add_nas(
        session,
        name="proxy-1" if proxy else "vpn-1",
        address="192.0.2.10" if proxy else "192.0.2.20",
        secret="s" * 20,
        box=BOX,
        actor=STAFF,
        now=NOW,
        proxy=proxy,
    )


def record(status: str, session_id: str = "s1", **fields: object) -> vpn.AccountingRecord:
    values: dict[str, object] = {
        "status": status,
        "session_id": session_id,
        "username": "emuster",
        "framed_ip": None,
        "calling_station": None,
        "input_octets": 0,
        "output_octets": 0,
        "terminate_cause": None,
        "nas_address": "192.0.2.10",
    }
    values.update(fields)
    return vpn.AccountingRecord(**values)  # type: ignore[arg-type]


def rows(session: Session) -> list[VpnSession]:
    return list(session.scalars(select(VpnSession).order_by(VpnSession.id)))


def test_behind_a_proxy_each_concentrator_has_its_own_sessions(session: Session) -> None:
    proxy = add_nas(session, proxy=True)
    for address in ("10.0.0.1", "10.0.0.2", "2001:db8::3"):
        vpn.record_accounting(
            session,
            nas_id=proxy.id,
            record=record("Start", nas_ip_address=address),
            now=NOW,
            behind_proxy=True,
        )
    vpn.record_accounting(
        session,
        nas_id=proxy.id,
        record=record("Stop", nas_ip_address="10.0.0.2", input_octets=7),
        now=NOW + timedelta(minutes=5),
        behind_proxy=True,
    )

    stored = rows(session)
    assert [s.concentrator for s in stored] == ["ip=10.0.0.1", "ip=10.0.0.2", "ip=2001:db8::3"]
    assert [s.stopped_at is not None for s in stored] == [False, True, False]
    assert stored[1].input_octets == 7


def test_a_retransmitted_stop_changes_nothing_and_a_new_start_is_a_new_row(
    session: Session,
) -> None:
    client = add_nas(session, proxy=False)
    for status, minute in (("Start", 0), ("Stop", 10), ("Stop", 11), ("Start", 20)):
        vpn.record_accounting(
            session,
            nas_id=client.id,
            record=record(status, nas_address="192.0.2.20"),
            now=NOW + timedelta(minutes=minute),
        )

    stored = rows(session)
    assert len(stored) == 2
    assert stored[0].stopped_at == NOW + timedelta(minutes=10)  # the first Stop's time
    assert stored[1].stopped_at is None and stored[1].started_at == NOW + timedelta(minutes=20)


def test_marking_a_nas_as_proxy_is_audited_once(session: Session) -> None:
    add_nas(session, proxy=False)
    nas.change_nas(session, name="vpn-1", proxy=True, actor=STAFF, now=NOW)
    with pytest.raises(ValidationError, match="nichts geändert"):
        nas.change_nas(session, name="vpn-1", proxy=True, actor=STAFF, now=NOW)

    changes = session.scalars(select(AuditEntry).where(AuditEntry.tag == "radius:nas:change"))
    assert [json.loads(entry.data) for entry in changes] == [{"proxy": [False, True]}]
    assert nas.load_active(session, BOX)[0].proxy is True


def test_an_accounting_on_ends_only_the_sessions_of_the_concentrator_that_sent_it(
    session: Session,
) -> None:
    """One NAS entry may be a network of concentrators: each reboots alone."""
    client = add_nas(session, proxy=False)
    for source in ("192.0.2.21", "192.0.2.22", "192.0.2.23"):
        vpn.record_accounting(
            session, nas_id=client.id, record=record("Start", nas_address=source), now=NOW
        )
    vpn.record_accounting(
        session, nas_id=client.id, record=record("Accounting-On", nas_address="192.0.2.22"), now=NOW
    )

    assert [s.stopped_at is None for s in rows(session)] == [True, False, True]
