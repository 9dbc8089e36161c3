"""Token secrets at rest: AES-256-GCM under FLEXNET_MASTER_KEY.

Each ciphertext is bound to its row by associated data (``token:<serial>``,
``wsapi-client:<id>``), so a ciphertext copied to another row does not decrypt.
Layout: version byte 0x01 | 12-byte nonce | ciphertext with tag.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
_NONCE_BYTES = 12


class SecretError(Exception):
    """A ciphertext cannot be opened: wrong master key, wrong row, or tampering."""


@dataclass(frozen=True)
class SecretBox:
    key: bytes = field(repr=False)

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + AESGCM(self.key).encrypt(nonce, plaintext, context.encode())

    def open(self, blob: bytes, *, context: str) -> bytes:
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _VERSION:
            raise SecretError("unknown secret format")
        nonce, ciphertext = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return AESGCM(self.key).decrypt(nonce, ciphertext, context.encode())
        except InvalidTag:
            raise SecretError("secret does not open with this key and context") from None


def token_context(serial: str) -> str:
    return f"token:{serial}"


def wsapi_client_context(client_id: int) -> str:
    return f"wsapi-client:{client_id}"


def staff_totp_context(staff_id: int) -> str:
    return f"staff-totp:{staff_id}"


@dataclass(frozen=True)
class YubicoSecret:
    private_id: bytes = field(repr=False)
    aes_key: bytes = field(repr=False)

    def to_bytes(self) -> bytes:
        return self.private_id + self.aes_key

    @classmethod
    def from_bytes(cls, data: bytes) -> YubicoSecret:
        if len(data) != 22:
            raise SecretError("Yubico secret has the wrong length")
        return cls(private_id=data[:6], aes_key=data[6:])
