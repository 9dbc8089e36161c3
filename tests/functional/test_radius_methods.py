"""Methods other than PAP, as concentrators send them (radclient computes CHAP and
MS-CHAP; MS-CHAPv2 and EAP as the attributes arrive): each rejected and logged by name,
EAP answered with an EAP-Failure. Acct-Terminate-Cause stored by its name."""

from __future__ import annotations

import logging
import struct
import subprocess

import pytest
from pyrad import packet as rp
from sqlalchemy import select

from flexnet.models import AuthEvent, VpnSession
from tests.functional.test_radius_challenges import PASSWORD, Served, served
from tests.support.radius import SECRET

__all__ = ["served"]  # the fixture, shared with the challenge tests


def radclient(served: Served, attributes: str, command: str = "auth") -> str:
    port = served.radius.auth_port if command == "auth" else served.radius.acct_port
    result = subprocess.run(
        ["radclient", "-x", "-r", "1", "-t", "2", f"127.0.0.1:{port}", command, SECRET.decode()],
        input=attributes + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout + result.stderr


def reasons(served: Served) -> list[str]:
    with served.radius.server.handler.database.reader() as session:
        return list(session.scalars(select(AuthEvent.reason).order_by(AuthEvent.id)))


def test_chap_mschap_mschapv2_and_eap_are_rejected_by_name(served: Served) -> None:
    chap = radclient(
        served, f"User-Name=emuster,CHAP-Password='{PASSWORD}',Message-Authenticator=0x00"
    )
    mschap = radclient(
        served, f"User-Name=kmeier,MS-CHAP-Password='{PASSWORD}',Message-Authenticator=0x00"
    )
    request = served.radius.access_request("lschulz", None)
    vsa = struct.pack("!IBB", 311, 25, 52) + bytes(50)  # MS-CHAP2-Response, as sent
    request[26] = [vsa]
    mschapv2 = served.radius.send(request)
    eap = radclient(
        served,
        # EAP-Response/Identity "emuster", identifier 0x2a
        "User-Name=emuster,EAP-Message=0x022a000c01656d7573746572,Message-Authenticator=0x00",
    )

    assert "Received Access-Reject" in chap and "Received Access-Reject" in mschap
    assert mschapv2 is not None and mschapv2.code == rp.AccessReject
    assert "Received Access-Reject" in eap
    assert "EAP-Message = 0x042a0004" in eap  # EAP-Failure, the request's identifier
    assert reasons(served) == [
        "method_chap",
        "method_mschap",
        "method_mschapv2",
        "method_eap",
    ]


def test_acct_terminate_cause_is_stored_by_its_name(served: Served) -> None:
    base = "User-Name=emuster,Framed-IP-Address=10.9.8.7"
    for session_id, cause in (("s-1", "User-Request"), ("s-2", "Idle-Timeout"), ("s-3", "99")):
        radclient(served, f"{base},Acct-Session-Id={session_id},Acct-Status-Type=Start", "acct")
        stop = radclient(
            served,
            f"{base},Acct-Session-Id={session_id},Acct-Status-Type=Stop,"
            f"Acct-Terminate-Cause={cause}",
            "acct",
        )
        assert "Received Accounting-Response" in stop, stop

    with served.radius.server.handler.database.reader() as session:
        stored = session.execute(
            select(VpnSession.acct_session_id, VpnSession.terminate_cause).order_by(
                VpnSession.acct_session_id
            )
        ).all()
    assert [tuple(row) for row in stored] == [
        ("s-1", "User-Request"),
        ("s-2", "Idle-Timeout"),
        ("s-3", "99"),  # a number no RFC names stays a number
    ]


def accounting(served: Served, status: int, **raw: bytes) -> rp.Packet | None:
    client = served.radius.client()
    request = client.CreateAcctPacket()
    request["Acct-Status-Type"] = status
    for code, value in ((1, raw["username"]), (44, raw["session"])):
        request[code] = [value]  # raw octets, as the NAS sent them
    try:
        return served.radius.send(request)
    finally:
        client._CloseSocket()


def test_zero_bytes_in_accounting_text_are_cleaned_and_answered(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL refuses NUL in text: the message was never stored nor answered, and
    the NAS retried it for ever."""
    caplog.set_level(logging.WARNING, logger="flexnet.radius")
    sent = [
        accounting(served, status, username=b"emuster\x00\x00", session=b"ab\x00cd")
        for status in (1, 2)  # Start, then Stop of the same session
    ]

    assert [None if r is None else r.code for r in sent] == [rp.AccountingResponse] * 2
    with served.radius.server.handler.database.reader() as session:
        (stored,) = session.scalars(select(VpnSession))
    assert (stored.username, stored.acct_session_id) == ("emuster", "ab\ufffdcd")
    assert stored.user_id is not None and stored.stopped_at is not None
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "accounting from NAS ocserv-1: zero bytes in session_id, username removed "
        "(trailing) or replaced"
    ]
