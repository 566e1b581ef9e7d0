"""The per-connection write rate: it finds the rate Graph allows instead of assuming one.

Microsoft no longer publishes an ingestion limit for connectors (the last figure was 25 items
per second per connection), and tenants differ, so the rate is discovered, and what a crawl
found is remembered for the next one (sync/runner.py keeps it in the state's meta table):

* First crawl: the rate starts at 25 items/s and probes upward in proportion to what Graph
  confirms (about x55 per second of clean writes: 500 items/s in under a second) while no 429
  comes back and the rate is what holds the writer back. A waiting writer looks at the rate
  again every 20 ms, so a wait computed at 25 items/s does not hold back a rate that has
  since grown. Probing never takes the rate above twice what Graph confirmed over the last
  quarter second: once latency and the 25 operations in flight are what limit the writer, a
  higher number sends nothing more and only makes the decrease start from a rate never sent.
* A resumed crawl (a rate remembered from the last one) starts at 90 % of it, where no 429 is
  expected, and probes more gently than a first crawl: the gain is e^2 (about x7) per second
  at the remembered rate and grows with how far above it Graph keeps confirming (the first
  crawl's gain from twice it). An unchanged limit costs one overshoot; a limit raised from 25
  to 500 items/s is found in about a second instead of a minute of 5 % creep.
* A 429 is one congestion event, however many entries or batches report it: the rate drops
  once, to the lower of 80 % of what was sent and what Graph accepted (over the last second
  of answers, from the first of those writes' sending), never below half of what was sent.
  429s of writes sent before that drop, or within the Retry-After Graph gave, are the same
  event (reacting to each of them collapsed the rate, hardening finding M7), with one
  exception: when writes sent after the drop are refused too, for a tenth of a second or
  more, the drop was not enough, and the rate is corrected once to what Graph accepted of them
  (never below half). That is the case when Graph accepted a burst before its first 429.
* Steady: after the first 429 the rate creeps up by 5 % per second of clean writes, so it
  finds a higher limit again without provoking Graph often.
* What is remembered (`rate_to_remember`) is what Graph accepted, not where the limiter's
  rate ended: after a 429, the accepted rate measured at the last event (or its correction),
  or the rate if lower; with no 429, the highest rate Graph confirmed over a second, or the
  rate the crawl started from if higher (a crawl of a few items teaches nothing).

How Graph enforces the ingestion limit is not documented. The simulator's token bucket
(docs/fidelity.md, G-THROTTLE-2) lets a first second through at any speed, so there the first
429 comes late and the accepted rate measured at it is up to twice the limit: the correction
above brings it down. That shape is inferred; the design does not depend on it: against a
sliding one-second window (no burst) the first measurement is already close, and
tests/sync/test_ratelimit.py runs both shapes.

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
# A resumed crawl probes at RESUMED_GAIN x (rate / remembered rate), at most PROBE_GAIN: at the
# remembered rate e^2 per second, half the first crawl's exponent, so an unchanged limit is
# overshot less; each clean second above it is evidence the limit rose, and the probe speeds
# up. Measured (2,000 users, simulator, 20 ms): a gain of 1.0 took 1.17-1.25 x the floor to
# find a limit raised from 25 to 500 items/s, 2.0 took 1.03 x, with the same 429 counts.
RESUMED_GAIN = 2.0
RESUMED_SHARE = 0.9  # a resumed crawl starts a little under the rate Graph accepted last time
STEADY_GAIN = 0.05  # items/s added per confirmed item after the first 429 (5 % per second)
DECREASE = 0.8  # the rate after a congestion event, at most (times the rate sent before)
WINDOW = 1.0  # seconds over which the accepted and sent rates are measured
# Growth never takes the rate above CONFIRMED_CAP x what Graph confirmed over CAP_WINDOW.
# Two times a quarter second's confirmations still lets a x55-per-second probe through (the
# quarter second's average is about 0.6 of its end) but stops the rate running away once
# latency and the 25 operations in flight, not the rate, hold the writer back.
CONFIRMED_CAP = 2.0
CAP_WINDOW = 0.25
# A drop that was not enough is corrected once its refusals span this long. Every write
# refused costs a whole Retry-After (1 s in the simulator) before it can go again, so near
# the end of a crawl each refusal after the drop pushes the crawl's end back: measured
# (2,000 users, 500 items/s, simulator), a quarter second of refusals took 79 writes into
# the tail and 0.1 s took 39; a tenth of a second at 500 items/s is still ~50 answers.
CORRECT_SPAN = 0.1
WAIT_SLICE = 0.02  # seconds: how often a waiting writer looks at the rate again


@dataclass(frozen=True)
class Ticket:
    """Handed out by `acquire`; says when the writes were sent."""

    sent_at: float
    items: int


@dataclass(frozen=True)
class _Answer:
    at: float
    sent_at: float
    confirmed: int
    throttled: int


@dataclass
class _SinceDrop:
    """The answers to writes sent after the last congestion event's drop."""

    at: float
    first_sent: float = float("inf")
    confirmed: int = 0
    throttled: int = 0
    corrected: bool = False  # the drop was corrected once already


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
        """`start` is the first rate; with `resumed`, the rate the last crawl found Graph
        accepting (the limiter starts at RESUMED_SHARE of it and probes gently)."""
        self.ceiling = max(ceiling, MIN_RATE) if ceiling is not None else None
        # The rate a previous crawl found Graph accepting; None on a first crawl.
        self.known = max(start, MIN_RATE) if resumed else None
        first = start * RESUMED_SHARE if resumed else start
        self.rate = self._capped(max(first, MIN_RATE))
        self.start_rate = self.rate
        self.peak_rate = self.rate
        self.probing = True  # until the first 429
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        # The last writes let through: the next may go once they have had their share of the
        # rate, computed at the rate of the moment (so a rate that grows shortens the wait).
        self._last_sent = float("-inf")
        self._last_items = 0
        self._quiet_until = float("-inf")  # 429s of writes sent before this: already handled
        self._limited_at = float("-inf")  # when a writer last had to wait for the rate
        self._answers: deque[_Answer] = deque()
        self._accepted_at_event: float | None = None  # measured at the last congestion event
        self._best_accepted = 0.0  # the highest accepted rate measured while no 429 came
        self._since_drop: _SinceDrop | None = None
        self.slowdowns = 0
        self.waited_seconds = 0.0

    def _capped(self, rate: float) -> float:
        return min(rate, self.ceiling) if self.ceiling is not None else rate

    def rate_to_remember(self) -> float:
        """The rate the instance's next crawl should start near: what Graph accepted."""
        with self._lock:
            if self._accepted_at_event is not None:
                # The rate may still be above what Graph accepted if the crawl ended before
                # a second event could correct an overshoot.
                remembered = min(self.rate, self._accepted_at_event)
            else:
                # No 429: the limit is at least what Graph confirmed, and a crawl too short
                # to measure anything gives no reason to start lower than it did.
                remembered = max(self.known or self.start_rate, self._best_accepted)
            return self._capped(max(remembered, MIN_RATE))

    def acquire(self, items: int) -> Ticket:
        """Block until `items` writes fit in the current rate (first come, first served).

        The wait is re-evaluated every WAIT_SLICE seconds: while probing, the rate grows
        several times over within one wait at a low rate, and a wait computed once at the old
        rate held the probe back (at 25 items/s a batch of 12 waits half a second).
        """
        waited = False
        while True:
            with self._lock:
                now = self._clock()
                ready = self._last_sent + self._last_items / self.rate
                if now >= ready:
                    self._last_sent, self._last_items = now, items
                    if waited:
                        self._limited_at = now
                    return Ticket(now, items)
                # Only a probing rate grows fast enough to shorten a wait already begun; a
                # steady one is left to sleep it out (no wake-ups for minutes at 25 items/s).
                wait = min(ready - now, WAIT_SLICE) if self.probing else ready - now
                self._limited_at = now
                self.waited_seconds += wait
            waited = True
            self._sleep(wait)

    def _measured(self, now: float, window: float) -> tuple[float, float]:
        """Items/s Graph confirmed, and items/s sent, by the answers of the last `window`
        seconds, over the time those writes took (from the first one's sending: right after
        a start or a pause, the little that was sent says nothing of what Graph allows)."""
        answers = [a for a in self._answers if a.at >= now - window]
        if not answers:
            return 0.0, 0.0
        # At least CAP_WINDOW: one batch answered 20 ms after it left is no rate of 600/s.
        span = max(now - min(a.sent_at for a in answers), CAP_WINDOW)
        confirmed = sum(a.confirmed for a in answers)
        sent = confirmed + sum(a.throttled for a in answers)
        return confirmed / span, sent / span

    def answered(self, ticket: Ticket, confirmed: int, throttled: int, retry_after: float) -> None:
        """Graph answered the writes of `ticket`: `confirmed` went through, `throttled` got 429.

        `retry_after` is the longest wait Graph asked for (seconds; 0 when it named none).
        """
        with self._lock:
            now = self._clock()
            self._answers.append(_Answer(now, ticket.sent_at, confirmed, throttled))
            while self._answers and self._answers[0].at < now - WINDOW:
                self._answers.popleft()
            since = self._since_drop
            if since is not None and ticket.sent_at >= since.at:
                since.first_sent = min(since.first_sent, ticket.sent_at)
                since.confirmed += confirmed
                since.throttled += throttled
            if throttled:
                if ticket.sent_at >= self._quiet_until:
                    self._congestion(now, retry_after)
                elif since is not None and since.throttled and not since.corrected:
                    self._correct(now, since)
                return
            if not self.slowdowns and now - self._answers[0].sent_at >= WINDOW / 2:
                self._best_accepted = max(self._best_accepted, self._measured(now, WINDOW)[0])
            # Grow only while the rate is what holds writes back: a rate nobody reaches would
            # grow without any answer from Graph to check it.
            if confirmed and now - self._limited_at <= WINDOW:
                grown = self._capped(self.rate + self._gain() * confirmed)
                recent = self._measured(now, CAP_WINDOW)[0]
                ceiling = max(self.rate, CONFIRMED_CAP * recent)
                self.rate = min(grown, ceiling)
                self.peak_rate = max(self.peak_rate, self.rate)

    def _gain(self) -> float:
        if not self.probing:
            return STEADY_GAIN
        if self.known is None:
            return PROBE_GAIN
        return min(PROBE_GAIN, RESUMED_GAIN * self.rate / self.known)

    def _correct(self, now: float, since: _SinceDrop) -> None:
        """Writes sent after the drop are refused too: the drop was not enough. What Graph
        accepted of them, once they span CORRECT_SPAN, is its allowance right now (the accepted
        rate measured at the event counts writes Graph took before it started refusing,
        e.g. a burst); one correction per event, never below half, so no collapse."""
        span = now - since.first_sent
        if span < CORRECT_SPAN:
            return
        accepted = since.confirmed / span
        self.rate = max(MIN_RATE, min(self.rate, max(accepted, self.rate / 2)))
        if self._accepted_at_event is not None:
            self._accepted_at_event = min(self._accepted_at_event, max(accepted, MIN_RATE))
        since.corrected = True

    def _congestion(self, now: float, retry_after: float) -> None:
        accepted, sent = self._measured(now, WINDOW)
        # The rate may be above what the writer could send (latency, 25 in flight): decrease
        # from what was sent. At most halved: right after a start or a pause, little was
        # accepted because little was sent, not because Graph allows little.
        base = min(self.rate, sent) if sent > 0 else self.rate
        target = max(min(base * DECREASE, accepted), base / 2)
        self.rate = max(MIN_RATE, target)
        self._accepted_at_event = max(accepted, MIN_RATE)
        self.probing = False
        self.slowdowns += 1
        # Writes already on their way were sent at the old rate; and while Graph's
        # Retry-After runs, more 429s are the same event.
        self._quiet_until = now + max(retry_after, 0.0)
        self._since_drop = _SinceDrop(now)
