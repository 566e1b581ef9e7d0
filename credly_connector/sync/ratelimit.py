"""A per-connection write rate that backs off on its own when Graph throttles (AIMD).

Graph last published 25 items per second per connection; the real limit may differ, so the
rate halves on every throttled batch and creeps back up while writes succeed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Sleep = Callable[[float], None]
Clock = Callable[[], float]

MIN_RATE = 0.5  # items per second: never stall completely


class AdaptiveRateLimiter:
    def __init__(
        self,
        max_rate: float,
        *,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        increase_per_success: float | None = None,
    ) -> None:
        self.max_rate = max(max_rate, MIN_RATE)
        self.rate = self.max_rate
        self._sleep = sleep
        self._clock = clock
        # Additive increase: a tenth of the ceiling per successful batch, so recovering from
        # one 429 takes a few seconds of clean writes rather than minutes.
        self._step = increase_per_success or max(self.max_rate / 10, MIN_RATE)
        self._lock = threading.Lock()
        self._next_free = clock()
        self.slowdowns = 0
        self.waited_seconds = 0.0

    def acquire(self, items: int) -> None:
        """Block until `items` writes fit in the current rate (first come, first served)."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_free)
            self._next_free = start + items / self.rate
            wait = start - now
        if wait > 0:
            self.waited_seconds += wait
            self._sleep(wait)

    def throttled(self) -> None:
        with self._lock:
            self.rate = max(MIN_RATE, self.rate / 2)
            self.slowdowns += 1

    def succeeded(self) -> None:
        with self._lock:
            self.rate = min(self.max_rate, self.rate + self._step)
