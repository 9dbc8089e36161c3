"""Password hashing: argon2id through libpass (imported as ``passlib``).

Passwords are NFKC-normalised on every path (RADIUS, web, CLI) before hashing and
verifying, so that the same typed password matches whatever the client's Unicode form.
Hashes of the previous system (bcrypt, sha512_crypt) still verify and are replaced by
argon2id on the next successful login (``verify`` returns the new hash).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from passlib.context import CryptContext

from flexnet.errors import ValidationError

# PAP carries password + 44-character OTP in at most 128 octets (RFC 2865).
MAX_PASSWORD_BYTES = 84

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
_context = CryptContext(
    schemes=["argon2", "bcrypt", "sha512_crypt"],
    default="argon2",
    deprecated=["bcrypt", "sha512_crypt"],
    argon2__type="ID",
    argon2__memory_cost=19456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)

# A valid hash of a random password: verifying against it costs as much as a real check,
# so that a missing user takes as long as a wrong password.
_DUMMY_HASH = _context.hash("flexnet-timing-equaliser-not-a-password")


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check_transportable(password: str) -> str:
    """The normalised password, if it can travel in PAP next to an OTP."""
    normalized = normalize(password)
    if not normalized:
        raise ValidationError("Das Kennwort darf nicht leer sein")
    if len(normalized.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValidationError(
            f"Das Kennwort ist zu lang (höchstens {MAX_PASSWORD_BYTES} Bytes in UTF-8)"
        )
    return normalized


def hash_password(password: str) -> str:
    hashed: str = _context.hash(normalize(password))
    return hashed


@dataclass(frozen=True)
class Verification:
    ok: bool
    new_hash: str | None = None  # set when the stored hash should be upgraded


def verify(password: str, stored_hash: str | None) -> Verification:
    """Check a password; with no stored hash, spend the same time and fail."""
    if stored_hash is None:
        _context.verify(normalize(password), _DUMMY_HASH)
        return Verification(ok=False)
    ok, new_hash = _context.verify_and_update(normalize(password), stored_hash)
    return Verification(ok=ok, new_hash=new_hash if ok else None)
