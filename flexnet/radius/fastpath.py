"""Rejecting invalid OTPs without a database transaction.

Most failed logins on an exposed VPN are garbage: OTPs that do not decrypt with any key.
Checking them costs microseconds; opening a transaction for each would cap the server
at a few hundred per second. So the RADIUS process keeps a snapshot of the Yubikeys'
key material and rejects such OTPs at once; their auth-log lines and per-source failure
counts go to the auth log's batches (``authn.authlog.RejectLog``). An id the snapshot
does not know (a key handed out since it was loaded) is looked up, sparingly
(:class:`LookupBudget`).

This path can only reject. Valid OTPs, keys checked by an external service and OATH
codes always take the full pipeline (``Authenticator.authenticate``); an OTP this path
decrypted is handed on with its decryption, so the pipeline does not do it again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.authn.decision import Reason
from flexnet.models import Token, TokenKind
from flexnet.otp import yubico
from flexnet.otp.secrets import SecretBox, SecretError, YubicoSecret, token_context
from flexnet.otp.verify import Decrypted, Presented

REMOTE = object()  # marks keys validated by an external service: never fast-rejected


@dataclass(frozen=True)
class KeyMaterial:
    """A key's AES key and private id, and the sealed secret they were opened from."""

    secret: YubicoSecret = field(repr=False)
    sealed: bytes = field(repr=False)


@dataclass(frozen=True)
class KeySnapshot:
    """public id -> key material (or REMOTE), for every Yubico OTP key at load time."""

    keys: dict[str, KeyMaterial | object] = field(repr=False)

    @classmethod
    def load(cls, session: Session, box: SecretBox, *, public_id: str | None = None) -> KeySnapshot:
        """Every Yubico OTP key, or only the one with ``public_id``."""
        keys: dict[str, KeyMaterial | object] = {}
        query = select(Token.serial, Token.public_id, Token.secret, Token.remote_validation).where(
            Token.kind == TokenKind.YUBICO_OTP
        )
        if public_id is not None:
            query = query.where(Token.public_id == public_id)
        rows = session.execute(query)
        for serial, public_id, secret, remote in rows:
            if public_id is None:
                continue
            if remote or secret is None:
                keys[public_id] = REMOTE
                continue
            try:
                opened = YubicoSecret.from_bytes(box.open(secret, context=token_context(serial)))
            except SecretError:
                keys[public_id] = REMOTE  # let the full pipeline report the backend error
                continue
            keys[public_id] = KeyMaterial(opened, secret)
        return cls(keys)

    def merged(self, other: KeySnapshot) -> KeySnapshot:
        return KeySnapshot({**self.keys, **other.keys})

    def judge(self, otp: Presented) -> Presented | Reason:
        """Why ``otp`` is certainly invalid; or the OTP for the full pipeline, decrypted
        if this snapshot could (the pipeline takes that only for the same secret)."""
        parsed = otp.parsed
        if parsed is None:
            return otp  # not a Yubico OTP: maybe an OATH code
        material = self.keys.get(parsed.public_id)
        if material is None:
            return Reason.KEY_UNKNOWN
        if not isinstance(material, KeyMaterial):
            return otp
        decoded = yubico.decrypt(parsed.ciphertext, material.secret.aes_key)
        if decoded is None or not yubico.same_private_id(
            decoded.private_id, material.secret.private_id
        ):
            return Reason.OTP_INVALID
        return replace(otp, decrypted=Decrypted(material.sealed, decoded))

    def rejects(self, otp: str) -> Reason | None:
        """Why the typed ``otp`` is certainly invalid, or None if the pipeline must decide."""
        verdict = self.judge(Presented.typed(otp))
        return verdict if isinstance(verdict, Reason) else None


class LookupBudget:
    """How often an id unknown to the snapshot may be looked up in the database.

    A key handed out since the last reload is found on its first press; but made-up ids
    are the cheapest garbage there is, and each look-up is a database read. So an id is
    looked up at most once per ``repeat_seconds``, and all of them at most
    ``per_second`` times a second; beyond that an unknown id is refused as before.
    """

    def __init__(self, *, per_second: int = 50, repeat_seconds: float = 5.0) -> None:
        self.per_second = per_second
        self.repeat_seconds = repeat_seconds
        self._recent: dict[str, float] = {}
        self._window = 0
        self._used = 0
        self._lock = threading.Lock()

    def allow(self, public_id: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            if now - self._recent.get(public_id, float("-inf")) < self.repeat_seconds:
                return False
            if int(now) != self._window:
                self._window, self._used = int(now), 0
                self._recent = {
                    k: t for k, t in self._recent.items() if now - t < self.repeat_seconds
                }
            if self._used >= self.per_second:
                return False
            self._used += 1
            self._recent[public_id] = now
            return True
