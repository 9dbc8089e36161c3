"""Yubico OTP, decoded without I/O: parse what was typed, decrypt the 16-byte token.

Token layout (Yubico OTP spec): uid[6] | usage counter u16le | timestamp u24le |
session counter u8 | random u16le | crc u16le. A CRC-16 (ISO 13239) over all 16
bytes leaves the residue 0xf0b8 when the token is intact.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from flexnet.otp import modhex

CIPHERTEXT_CHARS = 32
MIN_OTP_CHARS = 32
MAX_OTP_CHARS = 48
PUBLIC_ID_CHARS = 12
_CRC_RESIDUE = 0xF0B8
# Bit 15 of the usage counter is a flag (caps lock), not part of the count.
_USAGE_COUNTER_MASK = 0x7FFF
MAX_USAGE_COUNTER = _USAGE_COUNTER_MASK


@dataclass(frozen=True)
class ParsedOtp:
    public_id: str  # modhex, may be empty for keys without a public id
    ciphertext: bytes = b""

    def __repr__(self) -> str:  # the ciphertext is one-time, but still not for logs
        return f"ParsedOtp(public_id={self.public_id!r})"


@dataclass(frozen=True)
class OtpToken:
    private_id: bytes = field(repr=False)
    usage_counter: int
    timestamp: int  # 8 Hz ticks since the key was powered up
    session_counter: int
    random: int

    def counters(self) -> tuple[int, int]:
        return (self.usage_counter, self.session_counter)


def parse(typed: str) -> ParsedOtp | None:
    """The public id and ciphertext of a typed OTP, or None if it is malformed."""
    if not isinstance(typed, str) or not MIN_OTP_CHARS <= len(typed.strip()) <= MAX_OTP_CHARS:
        return None
    text = modhex.normalize_typed(typed)
    if text is None:
        return None
    return ParsedOtp(
        public_id=text[:-CIPHERTEXT_CHARS], ciphertext=modhex.to_bytes(text[-CIPHERTEXT_CHARS:])
    )


def looks_like_otp(text: str) -> bool:
    return parse(text) is not None


def crc16(data: bytes) -> int:
    """CRC-16/ISO 13239 as the YubiKey computes it (initial 0xffff, reflected 0x8408)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            lsb = crc & 1
            crc >>= 1
            if lsb:
                crc ^= 0x8408
    return crc


def decrypt(ciphertext: bytes, aes_key: bytes) -> OtpToken | None:
    """Decrypt one token; None when the CRC shows a wrong key or a damaged OTP."""
    if len(ciphertext) != 16 or len(aes_key) != 16:
        return None
    # ECB is the Yubico OTP format: exactly one block, never reused (counters change).
    decryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).decryptor()  # noqa: S305
    plain = decryptor.update(ciphertext) + decryptor.finalize()
    if crc16(plain) != _CRC_RESIDUE:
        return None
    return OtpToken(
        private_id=plain[0:6],
        usage_counter=int.from_bytes(plain[6:8], "little") & _USAGE_COUNTER_MASK,
        timestamp=int.from_bytes(plain[8:11], "little"),
        session_counter=plain[11],
        random=int.from_bytes(plain[12:14], "little"),
    )


def same_private_id(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
