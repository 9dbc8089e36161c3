"""One SQLite writer at a time per process, served in the order they came.

SQLite has one write lock per file. A connection that finds it taken sleeps in SQLite's
busy handler (1, 2, 5, 10 … 100 ms) and looks again: sixteen threads of one RADIUS
process that want it at once do not queue, they poll, and one that keeps missing the
moment the lock is free runs out of its busy timeout ("database is locked") while
others went twice. Threads of one process therefore wait here first, in a queue that
hands the turn to the longest waiter the moment the writer before it ends; only the
few writers of the *other* processes on the same file are left to meet at SQLite's lock
(``flexnet.db._begin_immediate``, which looks every 2 ms instead of sleeping like the busy
handler).
"""

from __future__ import annotations

import threading
from collections import deque


class WriteGate:
    """A first-come, first-served lock with a bounded wait.

    ``release`` hands the gate straight to the oldest waiter (it never becomes free in
    between, so a thread that releases and asks again at once queues behind it)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queue: deque[threading.Event] = deque()
        self._held = False

    @property
    def waiting(self) -> int:
        """How many threads wait for their turn (for tests and diagnostics)."""
        with self._mutex:
            return len(self._queue)

    def acquire(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the turn; False if it did not come."""
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Event()
            self._queue.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over between the timeout and this line
                return True
            self._queue.remove(turn)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._queue:
                self._queue.popleft().set()
            else:
                self._held = False
