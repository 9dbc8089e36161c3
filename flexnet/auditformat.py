"""The audit chain's formats: content hashes, the keyed seal, address commitments and
signed checkpoints. Pure functions; :mod:`flexnet.audit` stores and walks the chain.

An entry's ``hash`` covers its predecessor's hash and its content, so the entries form a
chain. Plain SHA-256 can be recomputed by anyone who can write to the database, so each
entry also carries a ``seal``: an HMAC under ``FLEXNET_AUDIT_KEY``, a key that is not in
the database (like the master key). Rewriting an entry and recomputing the chain then
needs the key; checkpoints of the chain head kept outside the database (signed with a
key derived from the same secret) catch even a holder of the key.

Format 1 (entries written before the key existed) hashed the source address itself;
format 2 hashes a commitment to it instead (SHA-256 of a random salt and the address).
The address and its salt live beside the hashed content and are deleted after the
connection-data period; the commitment stays, so the hash still checks and nothing
left can tell which address it was.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

GENESIS_HASH = "0" * 64
LEGACY = 1  # hash over the raw source address, no seal when written
CURRENT = 2  # hash over an address commitment; sealed under the audit key
CHECKPOINT_FORMAT = "flexnet-audit-checkpoint/1"

# The content every format hashes, in this order, after the predecessor's hash.
CONTENT = ("at", "actor_kind", "actor", "tag", "subject_kind", "subject_id", "data")


@dataclass(frozen=True)
class AuditKey:
    """``FLEXNET_AUDIT_KEY`` and what is derived from it (HKDF, one label per use)."""

    raw: bytes = field(repr=False)

    @cached_property
    def seal_key(self) -> bytes:
        return _derive(self.raw, b"flexnet audit seal v1")

    @cached_property
    def pseudonym_key(self) -> bytes:
        return _derive(self.raw, b"flexnet pseudonym v1")

    def pseudonym(self, text: str) -> str:
        """A stable stand-in for ``text`` that nobody without the key can test guesses
        against (a name typed at sign-in may be a password typed into the wrong field)."""
        digest = hmac.new(self.pseudonym_key, text.encode("utf-8", "replace"), "sha256")
        return digest.hexdigest()[:16]

    @cached_property
    def signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(
            _derive(self.raw, b"flexnet audit checkpoint v1")
        )

    @cached_property
    def public_key(self) -> str:
        """The checkpoint key's public half (base64): checks a checkpoint anywhere."""
        raw = self.signing_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(raw).decode("ascii")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


def fingerprint(public_key: str) -> str:
    """A short name of a checkpoint key, for people comparing two of them."""
    return hashlib.sha256(public_key.encode("ascii")).hexdigest()[:16]


def _derive(raw: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(raw)


def _encode(content: list[Any]) -> bytes:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _content(row: Mapping[str, Any]) -> list[Any]:
    return [
        row["at"].isoformat(timespec="microseconds") if name == "at" else row[name]
        for name in CONTENT
    ]


def legacy_hash(row: Mapping[str, Any]) -> str:
    """Format 1: SHA-256 over the predecessor's hash, the content and the raw address."""
    return hashlib.sha256(_encode([row["prev_hash"], *_content(row), row["source_ip"]])).hexdigest()


def current_hash(row: Mapping[str, Any]) -> str:
    """Format 2: SHA-256 over the predecessor's hash, the content and the commitment to
    the address (never the address)."""
    return hashlib.sha256(
        _encode(["flexnet-audit/2", row["prev_hash"], *_content(row), row["source_ip_digest"]])
    ).hexdigest()


def content_hash(row: Mapping[str, Any]) -> str:
    """The hash an entry's content gives in its own format."""
    return legacy_hash(row) if row["format"] == LEGACY else current_hash(row)


def problem(row: Mapping[str, Any], key: AuditKey | None) -> str | None:
    """What is wrong with one entry's content, address or seal (its link is the
    caller's); without ``key`` the seal is not checked."""
    if row["format"] not in (LEGACY, CURRENT):
        return "Unbekanntes Format"
    address, salt, digest = row["source_ip"], row["source_ip_salt"], row["source_ip_digest"]
    if address is not None and digest is not None and not address_matches(address, salt, digest):
        return "Adresse verändert"
    # A format-1 entry whose address has gone can no longer be hashed: its seal covers it.
    address_gone = row["format"] == LEGACY and address is None and digest is not None
    if not address_gone and content_hash(row) != row["hash"]:
        return "Inhalt verändert"
    if key is None:
        return None
    if row["seal"] is None:
        return "Ohne Siegel (ohne FLEXNET_AUDIT_KEY geschrieben oder Siegel entfernt)"
    # Of a current entry the content hash is its hash (checked just above).
    content = row["hash"] if row["format"] == CURRENT else None
    if not seal_matches(key, row, content):
        return "Siegel falsch (Eintrag verändert oder anderer Schlüssel)"
    return None


def seal(key: AuditKey, row: Mapping[str, Any], content_hash: str | None = None) -> str:
    """The keyed seal of an entry: its stored hash (the link) and its content in the
    current format (for a format-1 entry whose address has gone, the only check left).
    ``content_hash`` is ``current_hash(row)`` if the caller has it already."""
    content = content_hash if content_hash is not None else current_hash(row)
    message = f"flexnet-audit-seal/1\n{row['hash']}\n{content}".encode()
    return hmac.new(key.seal_key, message, hashlib.sha256).hexdigest()


def seal_matches(key: AuditKey, row: Mapping[str, Any], content_hash: str | None = None) -> bool:
    stored = row.get("seal")
    return stored is not None and hmac.compare_digest(seal(key, row, content_hash), stored)


def commit_address(address: str | None) -> tuple[str | None, str | None]:
    """(salt, commitment) for a source address; the salt goes with the address."""
    if address is None:
        return None, None
    salt = secrets.token_hex(16)
    return salt, _commitment(salt, address)


def address_matches(address: str, salt: str | None, digest: str | None) -> bool:
    return (
        salt is not None
        and digest is not None
        and hmac.compare_digest(_commitment(salt, address), digest)
    )


def _commitment(salt: str, address: str) -> str:
    return hashlib.sha256(f"{salt}:{address}".encode()).hexdigest()


# --- checkpoints --------------------------------------------------------------------


def checkpoint(
    key: AuditKey, *, entry_id: int, entry_hash: str, entry_at: datetime, written_at: datetime
) -> dict[str, Any]:
    """A signed statement "the chain's entry N had this hash", to be kept elsewhere."""
    statement = {
        "format": CHECKPOINT_FORMAT,
        "entry": entry_id,
        "hash": entry_hash,
        "entry_at": entry_at.isoformat(),
        "written_at": written_at.isoformat(),
        "public_key": key.public_key,
    }
    signature = key.signing_key.sign(_signed_bytes(statement))
    return {**statement, "signature": base64.b64encode(signature).decode("ascii")}


def checkpoint_signature_valid(statement: Mapping[str, Any]) -> bool:
    """True if the checkpoint was signed by the key it names (which key that may be is
    the caller's question)."""
    try:
        public = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(str(statement["public_key"]), validate=True)
        )
        signature = base64.b64decode(str(statement["signature"]), validate=True)
        public.verify(signature, _signed_bytes(statement))
    except (KeyError, ValueError, TypeError, InvalidSignature):
        return False
    return True


def _signed_bytes(statement: Mapping[str, Any]) -> bytes:
    fields = {name: value for name, value in statement.items() if name != "signature"}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")
