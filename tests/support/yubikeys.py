"""A simulated YubiKey from the independent ``yubiotp`` package.

Tests never make OTPs with flexnet's own code: a decoder tested against its own
encoder would share its mistakes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from random import randrange

from yubiotp.modhex import modhex
from yubiotp.otp import OTP, YubiKey, encode_otp


@dataclass
class SimulatedKey:
    public_id: str
    private_id: bytes
    aes_key: bytes
    usage_counter: int = 1
    device: YubiKey = field(init=False)

    def __post_init__(self) -> None:
        self.device = YubiKey(uid=self.private_id, session=self.usage_counter, counter=0)

    @classmethod
    def random(cls, usage_counter: int = 1) -> SimulatedKey:
        public_id = "vv" + modhex(os.urandom(5)).decode()
        return cls(public_id, os.urandom(6), os.urandom(16), usage_counter)

    def otp(self) -> str:
        """The next OTP, as a button press would type it."""
        return self._encode(self.device.generate())

    def replug(self) -> None:
        """Power cycle: usage counter + 1, session counter back to 0."""
        self.device = YubiKey(uid=self.private_id, session=self.device.session + 1, counter=0)

    def craft(
        self,
        usage: int,
        session: int,
        timestamp: int = 0,
        aes_key: bytes | None = None,
        private_id: bytes | None = None,
    ) -> str:
        """An OTP with chosen fields (usage may carry the caps-lock bit 0x8000)."""
        otp = OTP(private_id or self.private_id, usage, timestamp, session, randrange(0xFFFF))  # noqa: S311 - the token's filler, not a secret
        return self._encode(otp, aes_key)

    def _encode(self, otp: OTP, aes_key: bytes | None = None) -> str:
        token: bytes = encode_otp(otp, aes_key or self.aes_key, public_id=self.public_id.encode())
        return token.decode()
