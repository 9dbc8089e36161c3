"""In-memory RADIUS state: challenges and the duplicate cache."""

from __future__ import annotations

import time

from pyrad import packet as rp

from flexnet.radius.handler import _add_message
from flexnet.radius.packets import load_dictionary
from flexnet.radius.state import IN_FLIGHT, Challenge, ChallengeStore, DuplicateCache


def test_challenge_is_single_use_and_bound_to_user_and_nas() -> None:
    store = ChallengeStore()
    state = store.issue(Challenge("otp", "emuster", nas_id=1, password="x"))
    other = store.issue(Challenge("otp", "emuster", nas_id=1, password="x"))

    assert store.take(state, username="emuster", nas_id=2) is None  # other NAS
    assert store.take(state, username="emuster", nas_id=1) is None  # already used up
    assert store.take(other, username="dritter", nas_id=1) is None  # other user
    assert store.take(b"\x00" * 16, username="emuster", nas_id=1) is None


def test_challenge_expires() -> None:
    store = ChallengeStore(ttl=0.05)
    state = store.issue(Challenge("otp", "emuster", nas_id=1))
    time.sleep(0.1)

    assert store.take(state, username="emuster", nas_id=1) is None


def test_a_flood_from_one_source_replaces_only_its_own_challenges() -> None:
    store = ChallengeStore(size=50, per_source=5)
    victim = store.issue(Challenge("otp", "emuster", nas_id=1, source="198.51.100.1"))
    for n in range(500):
        store.issue(Challenge("otp", f"angreifer{n}", nas_id=1, source="203.0.113.66"))

    assert store.take(victim, username="emuster", nas_id=1) is not None


def test_duplicate_cache_keeps_requests_in_flight() -> None:
    cache = DuplicateCache(size=3)
    assert cache.claim("in-flight") is None
    for n in range(10):
        assert cache.claim(n) is None
        cache.store(n, b"reply")

    assert cache.claim("in-flight") is IN_FLIGHT
    cache.store("in-flight", b"answer")
    assert cache.claim("in-flight") == b"answer"


def test_long_reply_messages_are_split_on_character_boundaries() -> None:
    reply = rp.AuthPacket(code=rp.AccessReject, secret=b"s", dict=load_dictionary())
    text = "Ihr Kennwort läuft bald ab; bitte ändern Sie es rechtzeitig. " * 10

    _add_message(reply, text)

    parts = reply["Reply-Message"]
    assert len(parts) > 1
    assert all(len(p.encode()) <= 253 for p in parts)
    assert "".join(parts) == text
