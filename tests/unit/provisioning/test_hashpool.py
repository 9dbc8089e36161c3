"""The mail run's hashing pool: hashes that verify, in order, and workers that yield the
CPU to logins."""

from __future__ import annotations

import os

from flexnet.authn import passwords
from flexnet.provisioning import hashpool
from flexnet.provisioning.hashpool import Hasher


def test_the_pool_hashes_every_password_in_order() -> None:
    clear = [f"Versand-{n:02d}-Lauf!" for n in range(Hasher.POOL_FROM + 3)]
    with Hasher(len(clear)) as hasher:
        hashes = hasher.hash_all(clear).result()

    assert len(hashes) == len(clear)
    assert all(passwords.verify(p, h).ok for p, h in zip(clear, hashes, strict=True))
    assert not passwords.verify(clear[0], hashes[1]).ok


def test_the_workers_run_at_a_lower_priority_than_the_run() -> None:
    """Batch hashing must not take the CPU from a RADIUS thread that holds SQLite's lock."""
    with Hasher(Hasher.POOL_FROM) as hasher:
        pool = hasher._pool
        assert pool is not None
        worker_niceness = pool.submit(os.nice, 0).result()

    assert worker_niceness == min(os.nice(0) + hashpool.NICENESS, 19)
