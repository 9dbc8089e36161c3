"""What a Disconnect-Request names (RFC 5176 § 3)."""

from __future__ import annotations

from pyrad import packet as rp

from flexnet.models import VpnSession
from flexnet.radius.disconnect import identification
from flexnet.radius.packets import load_dictionary
from tests.conftest import NOW


def named(**fields: object) -> dict[str, str | int]:
    base: dict[str, object] = {"acct_session_id": "s-1", "username": "emuster"}
    return identification(VpnSession(**(base | fields)), NOW)


def test_ipv4_ipv6_and_identifier_are_named_as_received() -> None:
    assert named(nas_ip_address="10.0.0.1") == {
        "NAS-IP-Address": "10.0.0.1",
        "Acct-Session-Id": "s-1",
        "User-Name": "emuster",
        "Event-Timestamp": int(NOW.timestamp()),
    }
    assert named(nas_ip_address="2001:db8::1")["NAS-IPv6-Address"] == "2001:db8::1"
    only_identifier = named(nas_identifier="ocserv-a")
    assert only_identifier["NAS-Identifier"] == "ocserv-a"
    assert "NAS-IP-Address" not in only_identifier


def test_the_attributes_encode_in_a_disconnect_request() -> None:
    request = rp.CoAPacket(code=rp.DisconnectRequest, secret=b"s" * 16, dict=load_dictionary())
    for name, value in named(nas_ip_address="2001:db8::1", nas_identifier="x").items():
        request[name] = value
    decoded = rp.CoAPacket(packet=request.RequestPacket(), secret=b"s" * 16, dict=load_dictionary())
    assert decoded["NAS-IPv6-Address"] == ["2001:db8::1"]
    assert decoded["Event-Timestamp"] == [int(NOW.timestamp())]
