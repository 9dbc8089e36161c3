"""Log lines about dropped packets, at most one a minute per NAS and cause.

A NAS retransmits and keeps trying: an old concentrator without Message-Authenticator
sends every login three times, a disabled one goes on sending. One line a minute says
what is wrong and what would admit it; how many more were dropped is in the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

INTERVAL_SECONDS = 60.0
MAX_KEYS = 10_000  # a flood from many unknown addresses must not grow this without bound


class DropLog:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval = interval
        self._clock = clock
        self._seen: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def warning(self, key: Hashable, message: str, *args: object) -> None:
        """Log ``message % args`` unless ``key`` was logged less than a minute ago."""
        now = self._clock()
        with self._lock:
            last, suppressed = self._seen.get(key, (float("-inf"), 0))
            if now - last < self._interval:
                self._seen[key] = (last, suppressed + 1)
                return
            self._seen[key] = (now, 0)
            self._seen.move_to_end(key)
            while len(self._seen) > MAX_KEYS:
                self._seen.popitem(last=False)
        if suppressed:
            self._log.warning(message + " (%d more like it in the last minute)", *args, suppressed)
        else:
            self._log.warning(message, *args)
