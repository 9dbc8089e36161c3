"""The RADIUS fast path rejects only certainly invalid OTPs, without a transaction."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from flexnet.models import Token, TokenStatus
from flexnet.otp import stock
from flexnet.radius.fastpath import KeySnapshot, LookupBudget
from tests.conftest import BOX, NOW, STAFF
from tests.support.yubikeys import SimulatedKey

MakeKey = Callable[..., tuple[Token, SimulatedKey]]


def test_only_certainly_invalid_otps_are_rejected(session: Session, make_yubikey: MakeKey) -> None:
    _, key = make_yubikey()
    remote = stock.register_remote(
        session, serial="77", public_id="vvcccccccccc", actor=STAFF, now=NOW
    )
    snapshot = KeySnapshot.load(session, BOX)

    assert snapshot.rejects(key.otp()) is None  # valid: the full pipeline decides
    assert snapshot.rejects(key.public_id + "c" * 32) == "otp_invalid"
    assert snapshot.rejects(key.craft(1, 1, private_id=b"\x02" * 6)) == "otp_invalid"
    assert snapshot.rejects(SimulatedKey.random().otp()) == "key_unknown"
    assert snapshot.rejects(str(remote.public_id) + "c" * 32) is None  # the service decides
    assert snapshot.rejects("123456") is None  # an OATH code: the pipeline decides


def test_a_locked_key_is_not_fast_path_business(session: Session, make_yubikey: MakeKey) -> None:
    _, key = make_yubikey(status=TokenStatus.LOST)

    # Valid OTPs of locked keys must still be consumed by the pipeline.
    assert KeySnapshot.load(session, BOX).rejects(key.otp()) is None


def test_unknown_ids_are_looked_up_sparingly() -> None:
    """Made-up ids are the cheapest garbage: each is looked up once per 5 s, and all of
    them at most so often per second; a key handed out meanwhile is still found."""
    budget = LookupBudget(per_second=3, repeat_seconds=5.0)

    first = [budget.allow(f"vv{n:010d}", now=100.0) for n in range(5)]
    again = budget.allow("vv0000000000", now=101.0)
    next_second = budget.allow("vv0000000009", now=101.0)
    later = budget.allow("vv0000000000", now=106.0)

    assert first == [True, True, True, False, False]
    assert (again, next_second, later) == (False, True, True)
