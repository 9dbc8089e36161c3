"""Authentication methods flexnet refuses, named: only PAP carries the password and the
OTP that flexnet checks. CHAP, MS-CHAP and MS-CHAPv2 send a hash flexnet cannot check
against its argon2 hashes, EAP is not offered. Each is rejected cleanly and logged by
its name, so the VPN team sees what to switch the concentrator to (PAP)."""

from __future__ import annotations

import struct

from flexnet.authn.decision import Reason
from flexnet.radius.packets import Checked

CHAP_PASSWORD = 3
VENDOR_SPECIFIC = 26
EAP_MESSAGE = 79
MICROSOFT = 311
MS_CHAP_RESPONSE = 1
MS_CHAP2_RESPONSE = 25
EAP_FAILURE = 4


def refused(packet: Checked) -> Reason | None:
    """The refused method this Access-Request uses, or None (PAP or nothing at all)."""
    if packet.values(EAP_MESSAGE):
        return Reason.METHOD_EAP
    for value in packet.values(VENDOR_SPECIFIC):
        if len(value) >= 6 and struct.unpack("!I", value[:4])[0] == MICROSOFT:
            if value[4] == MS_CHAP2_RESPONSE:
                return Reason.METHOD_MSCHAPV2
            if value[4] == MS_CHAP_RESPONSE:
                return Reason.METHOD_MSCHAP
    if packet.values(CHAP_PASSWORD):
        return Reason.METHOD_CHAP
    return None


def eap_failure(packet: Checked) -> bytes:
    """An EAP-Failure (RFC 3748 4.2) answering the EAP-Response of the request (RFC 3579
    2.6.3: an Access-Reject for EAP carries one)."""
    message = b"".join(packet.values(EAP_MESSAGE))
    identifier = message[1] if len(message) >= 2 else 0
    return struct.pack("!BBH", EAP_FAILURE, identifier, 4)
