"""RADIUS packet handling without I/O: strict checks, password decoding, replies.

pyrad encodes and decodes; what it lacks is done here: the checks FreeRADIUS makes in
``rad_packet_ok()`` before anything is decoded, and a strict User-Password decoding
(pyrad drops invalid UTF-8 silently, which would turn garbage into a valid-looking
password).
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass, field

from pyrad import packet as rp
from pyrad.dictionary import Dictionary

from flexnet import resources
from flexnet.otp import yubico
from flexnet.otp.verify import Presented

MAX_PACKET = 4096
MAX_ATTRIBUTES = 200
MAX_PASSWORD_OCTETS = 128
HEADER = 20
MESSAGE_AUTHENTICATOR = 80
USER_PASSWORD = 2
PROXY_STATE = 33


class Port(enum.Enum):
    AUTH = "auth"
    ACCT = "acct"


# Status-Server (RFC 5997) is served on both ports: proxies check each one.
_CODES = {
    Port.AUTH: {rp.AccessRequest, rp.StatusServer},
    Port.ACCT: {rp.AccountingRequest, rp.StatusServer},
}


def load_dictionary() -> Dictionary:
    return Dictionary(str(resources.radius_dictionary()))


@dataclass(frozen=True)
class Checked:
    """A well-formed datagram and its attributes by type, from one walk over them."""

    data: bytes = field(repr=False)
    attributes: dict[int, list[bytes]] = field(repr=False)

    def values(self, kind: int) -> list[bytes]:
        """Values of one attribute type straight from the packet (no pyrad decoding)."""
        return self.attributes.get(kind, [])


def check(data: bytes, port: Port) -> Checked | str:
    """The datagram with its attributes indexed, or why it must be dropped before decoding."""
    if len(data) < HEADER:
        return "shorter than a RADIUS header"
    if len(data) > MAX_PACKET:
        return "longer than 4096 octets"
    code, _identifier, length = struct.unpack("!BBH", data[:4])
    if code not in _CODES[port]:
        return f"code {code} is not served on the {port.value} port"
    if length < HEADER or length > MAX_PACKET:
        return f"length field {length} out of range"
    if length > len(data):
        return f"length field {length} exceeds the datagram ({len(data)})"
    attributes = _attributes(data, length)
    return Checked(data, attributes) if isinstance(attributes, dict) else attributes


def check_raw(data: bytes, port: Port) -> str | None:
    """Why a datagram must be dropped before decoding, or None if it is well formed."""
    checked = check(data, port)
    return checked if isinstance(checked, str) else None


def _attributes(data: bytes, length: int) -> dict[int, list[bytes]] | str:
    found: dict[int, list[bytes]] = {}
    offset = HEADER
    count = 0
    while offset < length:
        if length - offset < 2:
            return "attribute header does not fit"
        kind, size = data[offset], data[offset + 1]
        if kind == 0:
            return "attribute type 0"
        if size < 2:
            return f"attribute {kind} with length {size}"
        if offset + size > length:
            return f"attribute {kind} overflows the packet"
        if kind == MESSAGE_AUTHENTICATOR and size != 18:
            return f"Message-Authenticator of length {size}"
        count += 1
        if count > MAX_ATTRIBUTES:
            return "more than 200 attributes"
        found.setdefault(kind, []).append(data[offset + 2 : offset + size])
        offset += size
    return found


def decrypt_password(hidden: bytes, secret: bytes, authenticator: bytes) -> bytes | None:
    """RFC 2865 5.2, strictly: None when the length is not 16..128 in steps of 16."""
    if not hidden or len(hidden) % 16 or len(hidden) > MAX_PASSWORD_OCTETS:
        return None
    plain = bytearray()
    previous = authenticator
    for start in range(0, len(hidden), 16):
        block = hidden[start : start + 16]
        pad = hashlib.md5(secret + previous, usedforsecurity=False).digest()
        plain.extend(a ^ b for a, b in zip(block, pad, strict=True))
        previous = block
    return bytes(plain).rstrip(b"\x00")


def decode_password(hidden: bytes, secret: bytes, authenticator: bytes) -> str | None:
    """The typed password as text, or None if it is not valid UTF-8 (a reject)."""
    plain = decrypt_password(hidden, secret, authenticator)
    if plain is None or b"\x00" in plain:
        return None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class PapParts:
    password: str = field(repr=False)
    otp: str | None = field(repr=False)  # None: no OTP at the end, the challenge asks for it
    parsed: yubico.ParsedOtp | None = None  # the OTP as parsed here, handed on

    def presented(self) -> Presented | None:
        return None if self.otp is None else Presented(self.otp, self.parsed)


def split_pap(typed: str) -> PapParts:
    """Password immediately followed by a 44-character Yubikey OTP, or the password alone."""
    otp_length = yubico.PUBLIC_ID_CHARS + yubico.CIPHERTEXT_CHARS
    parsed = yubico.parse(typed[-otp_length:]) if len(typed) >= otp_length else None
    if parsed is not None:
        # A bare OTP is an OTP with an empty password: it is used up and rejected, never
        # kept as a "password" in a challenge.
        return PapParts(typed[:-otp_length], typed[-otp_length:], parsed)
    return PapParts(typed, None)


def message_authenticator_first(reply: bytes) -> bool:
    """BlastRADIUS: every response of ours carries Message-Authenticator first."""
    return len(reply) > HEADER + 1 and reply[HEADER] == MESSAGE_AUTHENTICATOR
