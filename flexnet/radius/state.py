"""State of the RADIUS server: duplicate answers (per process) and pending challenges
(in the database).

Duplicates are answered from a bounded, expiring cache of the process that answered
first: with several worker processes on one port (``SO_REUSEPORT``), Linux hands every
datagram of one NAS socket (its address and port) to the same worker, so a
retransmission reaches the cache that holds its answer. Challenges are kept in the
database: the second round of a login may come from another NAS socket, and so reach
another worker, or another node.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from flexnet.db import Database, utcnow
from flexnet.models import ChallengeKind, RadiusChallenge
from flexnet.otp.secrets import SecretBox

IN_FLIGHT = object()


class DuplicateCache:
    """RFC 5080: a retransmitted request gets the cached answer, never a new evaluation."""

    def __init__(self, *, ttl: float = 30.0, size: int = 200_000) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: OrderedDict[Hashable, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, key: Hashable) -> object | None:
        """None if the request is new (now marked in flight), else IN_FLIGHT or the reply."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(key)
            if entry is not None:
                return entry[1]
            self._entries[key] = (now + self._ttl, IN_FLIGHT)
            while len(self._entries) > self._size:
                oldest, (_, value) = next(iter(self._entries.items()))
                if value is IN_FLIGHT:
                    # Its answer is still coming; evicting it would let a retransmission
                    # be evaluated again. In-flight entries are few (bounded by the server).
                    self._entries.move_to_end(oldest)
                else:
                    del self._entries[oldest]
            return None

    def store(self, key: Hashable, reply: bytes) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self._ttl, reply)

    def forget(self, key: Hashable) -> None:
        """Nothing was answered (internal error): a retransmit may be evaluated again."""
        with self._lock:
            self._entries.pop(key, None)

    def _expire(self, now: float) -> None:
        while self._entries:
            first_key, (expires, _) = next(iter(self._entries.items()))
            if expires > now:
                break
            del self._entries[first_key]


@dataclass
class Challenge:
    kind: str  # "otp": the password came, the OTP is asked for; "new_password", "confirm"
    username: str
    nas_id: int
    source: str = ""  # Calling-Station-Id, or the username when the NAS sends none
    password: str = field(default="", repr=False)
    user_id: int | None = None
    tries: int = 0


STATE_CHARS = 32  # secrets.token_urlsafe(24)
_STATE_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def altered(state: bytes) -> str | None:
    """Why ``state`` cannot be one this server issued (cut, padded, re-encoded by a NAS
    or proxy on the way), or None if it could be."""
    if len(state) != STATE_CHARS:
        return f"{len(state)} octets instead of {STATE_CHARS}"
    if not set(state) <= _STATE_ALPHABET:
        return "octets that no issued State contains"
    return None


def _digest(state: bytes) -> str:
    return hashlib.sha256(state).hexdigest()


def _context(digest: str) -> str:
    return f"radius-challenge:{digest}"


class ChallengeStore:
    """Single-use challenge states, bound to user and NAS, 60 s, shared by every worker
    process and node through the database (a short write each).

    A State value is 32 printable characters (192 random bits, never a zero byte, which
    some NAS cut values at). Only its SHA-256 is stored; the password of the first round
    (or the new one to confirm) is sealed under the master key, bound to that hash.
    """

    def __init__(
        self,
        database: Database,
        box: SecretBox,
        *,
        ttl: float = 60.0,
        size: int = 10_000,
        per_source: int = 5,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.box = box
        self._ttl = timedelta(seconds=ttl)
        self._size = size
        self._per_source = per_source
        self._clock = clock

    def issue(self, challenge: Challenge) -> bytes:
        """Store a challenge; one source keeps at most a few, so a flood from one place
        replaces its own states instead of everyone else's."""
        state = secrets.token_urlsafe(STATE_CHARS * 3 // 4).encode("ascii")
        digest = _digest(state)
        now = self._clock()
        source = (challenge.source or challenge.username)[:64]
        secret = {"password": challenge.password, "user_id": challenge.user_id}
        sealed = self.box.seal(
            json.dumps({**secret, "tries": challenge.tries}).encode(), context=_context(digest)
        )
        with self.database.session() as session:
            session.execute(delete(RadiusChallenge).where(RadiusChallenge.expires_at <= now))
            own = session.scalars(
                select(RadiusChallenge.state_hash)
                .where(RadiusChallenge.source == source)
                .order_by(RadiusChallenge.expires_at)
            ).all()
            self._drop(session, own[: max(0, len(own) - self._per_source + 1)])
            total = session.scalar(select(func.count()).select_from(RadiusChallenge)) or 0
            if total >= self._size:  # many sources at once: the oldest make room
                oldest = session.scalars(
                    select(RadiusChallenge.state_hash)
                    .order_by(RadiusChallenge.expires_at)
                    .limit(total - self._size + 1)
                ).all()
                self._drop(session, oldest)
            session.add(
                RadiusChallenge(
                    state_hash=digest,
                    kind=ChallengeKind(challenge.kind),
                    username=challenge.username[:64],
                    nas_id=challenge.nas_id,
                    source=source,
                    sealed=sealed,
                    expires_at=now + self._ttl,
                )
            )
        return state

    @staticmethod
    def _drop(session: Session, digests: Sequence[str]) -> None:
        if digests:
            session.execute(
                delete(RadiusChallenge).where(RadiusChallenge.state_hash.in_(list(digests)))
            )

    def take(self, state: bytes, *, username: str, nas_id: int) -> Challenge | None:
        """The challenge of ``state`` if it is valid for this user and NAS; used up either way."""
        digest = _digest(state)
        with self.database.session() as session:
            # Expired ones go too: a sealed password stays no longer than its minute.
            session.execute(
                delete(RadiusChallenge).where(
                    RadiusChallenge.expires_at <= self._clock(),
                    RadiusChallenge.state_hash != digest,
                )
            )
            row = session.execute(
                delete(RadiusChallenge)
                .where(RadiusChallenge.state_hash == digest)
                .returning(
                    RadiusChallenge.kind,
                    RadiusChallenge.username,
                    RadiusChallenge.nas_id,
                    RadiusChallenge.source,
                    RadiusChallenge.sealed,
                    RadiusChallenge.expires_at,
                )
            ).first()
        if row is None or row.expires_at <= self._clock():
            return None
        if row.username != username or row.nas_id != nas_id:
            return None
        secret = json.loads(self.box.open(row.sealed, context=_context(digest)))
        return Challenge(
            ChallengeKind(row.kind).value,
            row.username,
            row.nas_id,
            source=row.source,
            password=secret["password"],
            user_id=secret["user_id"],
            tries=secret["tries"],
        )
