"""In-memory state of one RADIUS process: duplicate answers and pending challenges.

Both are bounded and expire; neither is needed after a restart (a NAS retransmits or
starts a new login). Challenge state stays in the process that issued it, as RADIUS
clients send the next request of a challenge to the same server.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

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
    expires: float = 0.0


class ChallengeStore:
    """Single-use challenge states (128 random bits), bound to user and NAS, 60 s."""

    def __init__(self, *, ttl: float = 60.0, size: int = 10_000, per_source: int = 5) -> None:
        self._ttl = ttl
        self._size = size
        self._per_source = per_source
        self._entries: OrderedDict[bytes, Challenge] = OrderedDict()
        self._by_source: dict[str, list[bytes]] = {}
        self._lock = threading.Lock()

    def issue(self, challenge: Challenge) -> bytes:
        """Store a challenge; one source keeps at most a few, so a flood from one place
        replaces its own states instead of everyone else's."""
        state = secrets.token_bytes(16)
        challenge.expires = time.monotonic() + self._ttl
        source = challenge.source or challenge.username
        with self._lock:
            own = [s for s in self._by_source.get(source, []) if s in self._entries]
            while len(own) >= self._per_source:
                self._entries.pop(own.pop(0), None)
            own.append(state)
            self._by_source[source] = own
            self._entries[state] = challenge
            while len(self._entries) > self._size:
                oldest, evicted = self._entries.popitem(last=False)
                self._forget_source(evicted, oldest)
        return state

    def _forget_source(self, challenge: Challenge, state: bytes) -> None:
        source = challenge.source or challenge.username
        states = self._by_source.get(source)
        if states is not None and state in states:
            states.remove(state)
            if not states:
                del self._by_source[source]

    def take(self, state: bytes, *, username: str, nas_id: int) -> Challenge | None:
        """The challenge of ``state`` if it is valid for this user and NAS; used up either way."""
        with self._lock:
            challenge = self._entries.pop(state, None)
            if challenge is not None:
                self._forget_source(challenge, state)
        if challenge is None or challenge.expires < time.monotonic():
            return None
        if challenge.username != username or challenge.nas_id != nas_id:
            return None
        return challenge
