"""The per-connection write rate: it finds the rate Graph allows instead of assuming one.

Microsoft no longer publishes an ingestion limit for connectors (the last figure was 25 items
per second per connection), and tenants differ, so the rate is discovered:

* Probing: the rate starts at 25 items/s (or a little under the rate the instance's last
  crawl ended at, from the state: sync/runner.py) and grows in proportion to what Graph
  confirms (about x55 per second of clean writes: a first crawl reaches 500 items/s in under
  a second) while no 429 comes back, as long as the rate is what holds the writer back.
* A 429 is one congestion event, however many entries or batches report it: the rate drops
  once, to the lower of 80 % of itself and what Graph actually accepted over the last second
  (but never below half of itself).
  429s from writes sent before that drop, or within the Retry-After Graph gave, are the same
  event and change nothing (reacting to each of them collapsed the rate, hardening finding M7).
* Steady: after the first 429 the rate creeps up by 5 % per second of clean writes, so it
  finds a higher limit again without provoking Graph often.

A user ceiling (`sync.max_write_rate`) caps all of it, for tenants that keep headroom.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Sleep = Callable[[float], None]
Clock = Callable[[], float]

START_RATE = 25.0  # items per second: Graph's last published per-connection figure
MIN_RATE = 1.0  # never slower: one item per second still finishes a tenant in hours, not days
PROBE_GAIN = 4.0  # items/s added per confirmed item while probing (e^4, about x55, per second)
STEADY_GAIN = 0.05  # items/s added per confirmed item after the first 429 (5 % per second)
DECREASE = 0.8  # the rate after a congestion event, at most (times the rate before)
WINDOW = 1.0  # seconds over which the accepted rate is measured


@dataclass(frozen=True)
class Ticket:
    """Handed out by `acquire`; says when the writes were sent."""

    sent_at: float
    items: int


class AdaptiveRateLimiter:
    def __init__(
        self,
        ceiling: float | None = None,
        *,
        start: float = START_RATE,
        resumed: bool = False,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self.ceiling = max(ceiling, MIN_RATE) if ceiling is not None else None
        self.rate = self._capped(max(start, MIN_RATE))
        self.peak_rate = self.rate
        # A rate resumed from the last crawl is already near the limit: no fast probing.
        self.probing = not resumed
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._next_free = clock()
        self._quiet_until = float("-inf")  # 429s of writes sent before this: already handled
        self._limited_at = float("-inf")  # when a writer last had to wait for the rate
        self._accepted: deque[tuple[float, int]] = deque()
        self.slowdowns = 0
        self.waited_seconds = 0.0

    def _capped(self, rate: float) -> float:
        return min(rate, self.ceiling) if self.ceiling is not None else rate

    def rate_to_remember(self) -> float:
        """The rate the instance's next crawl should start near."""
        return self.rate

    def acquire(self, items: int) -> Ticket:
        """Block until `items` writes fit in the current rate (first come, first served)."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_free)
            self._next_free = start + items / self.rate
            wait = start - now
            if wait > 0:
                self._limited_at = now
                self.waited_seconds += wait
        if wait > 0:
            self._sleep(wait)
        return Ticket(start, items)

    def answered(self, ticket: Ticket, confirmed: int, throttled: int, retry_after: float) -> None:
        """Graph answered the writes of `ticket`: `confirmed` went through, `throttled` got 429.

        `retry_after` is the longest wait Graph asked for (seconds; 0 when it named none).
        """
        with self._lock:
            now = self._clock()
            self._accepted.append((now, confirmed))
            while self._accepted and self._accepted[0][0] < now - WINDOW:
                self._accepted.popleft()
            if throttled:
                if ticket.sent_at >= self._quiet_until:
                    accepted = sum(count for _, count in self._accepted) / WINDOW
                    # At most halved: right after a start or a pause, little was accepted
                    # because little was sent, not because Graph allows little.
                    target = min(self.rate * DECREASE, max(accepted, self.rate / 2))
                    self.rate = max(MIN_RATE, target)
                    self.probing = False
                    self.slowdowns += 1
                    # Writes already on their way were sent at the old rate; and while Graph's
                    # Retry-After runs, more 429s are the same event.
                    self._quiet_until = now + max(retry_after, 0.0)
                    self._next_free = max(self._next_free, now)
                return
            # Grow only while the rate is what holds writes back: a rate nobody reaches would
            # grow without any answer from Graph to check it.
            if confirmed and now - self._limited_at <= WINDOW:
                gain = PROBE_GAIN if self.probing else STEADY_GAIN
                self.rate = self._capped(self.rate + gain * confirmed)
                self.peak_rate = max(self.peak_rate, self.rate)
