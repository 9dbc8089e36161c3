"""Argon2id for the passwords of a mail run, on every core.

Apart from the mail run (``flexnet.provisioning.mailruns``), which it serves: its tasks
need nothing but ``flexnet.authn.passwords`` to be unpickled in a worker.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from flexnet.authn import passwords

NICENESS = 10  # added to the workers' nice value (lower priority), as batch jobs run


class Hasher:
    """Argon2id for many passwords on every core: a process pool (spawned, so that it is
    safe from a threaded web worker), which the rendering in this process does not slow
    down as threads contending for the GIL would; a few passwords are hashed here.

    The workers are started at once (``expected``: how many passwords may come), and
    take the passwords in small chunks, so that none idles at the end while the other
    still has a long chunk to go."""

    POOL_FROM = 16
    CHUNK = 16  # passwords per task: ~0.3 s of one core, little next to its transfer

    def __init__(self, expected: int) -> None:
        self._pool: ProcessPoolExecutor | None = None
        if expected >= self.POOL_FROM:
            self._start_pool()

    def _start_pool(self) -> ProcessPoolExecutor:
        cores = os.cpu_count() or 1
        pool = ProcessPoolExecutor(
            cores, mp_context=multiprocessing.get_context("spawn"), initializer=_yield_to_logins
        )
        for _ in range(cores):  # a worker is spawned per task waiting for one
            pool.submit(_ready)
        self._pool = pool
        return pool

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def hash_all(self, clear: list[str]) -> Hashes:
        """Start hashing ``clear``; ``result()`` waits for the hashes, in order."""
        pool = self._pool
        if pool is None and len(clear) >= self.POOL_FROM:
            pool = self._start_pool()  # more letters were queued since they were counted
        if pool is None:
            return Hashes([passwords.hash_password(password) for password in clear], [])
        parts = [clear[n : n + self.CHUNK] for n in range(0, len(clear), self.CHUNK)]
        return Hashes([], [pool.submit(_hash_chunk, part) for part in parts])


def _yield_to_logins() -> None:
    """A mail run is batch work: its hashing takes what the CPU has to spare. Logins on
    the same machine (RADIUS, self-service) come first; a RADIUS thread that held
    SQLite's write lock and lost its core to the pool made the logins behind it wait
    past their bound (the shared-SQLite benchmark: three unanswered)."""
    os.nice(NICENESS)


def _ready() -> None:
    """Nothing: unpickling this task imports this module (and argon2) in the worker."""


@dataclass(frozen=True)
class Hashes:
    done: list[str]
    running: list[Future[list[str]]]

    def result(self) -> list[str]:
        return self.done + [password_hash for f in self.running for password_hash in f.result()]


def _hash_chunk(clear: list[str]) -> list[str]:
    return [passwords.hash_password(password) for password in clear]
