"""The adaptive write rate (sync/ratelimit.py) on a fake clock, alone and driving the writer.

Two shapes of ingestion limit: the simulator's token bucket (a burst of one second, inferred:
docs/fidelity.md G-THROTTLE-2) and a sliding window of one second (no burst), so that no
figure here holds only because of the bucket's burst.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import pytest

from credly_connector.graph.batch import BatchRequest, BatchResponse
from credly_connector.sync.ratelimit import (
    PROBE_GAIN,
    RESUMED_SHARE,
    START_RATE,
    AdaptiveRateLimiter,
    Ticket,
)
from credly_connector.sync.writer import BatchWriter, WriteReport

# The simulator's shape (Bucket: `rate` items/s, a burst of one second) comes from there too.
from tests.sync.test_writer import Bucket, FakeClock, Recorder, answer, ops


class Sliding:
    """At most `rate` items in any second, no burst."""

    def __init__(self, rate: float, clock: FakeClock) -> None:
        self.rate, self.clock = rate, clock
        self.taken: deque[float] = deque()

    def take(self) -> bool:
        while self.taken and self.taken[0] <= self.clock.now - 1:
            self.taken.popleft()
        if len(self.taken) < self.rate:
            self.taken.append(self.clock.now)
            return True
        return False


Shape = Callable[[float, FakeClock], Bucket | Sliding]


def crawl(
    shape: Shape, limit: float, items: int, remembered: float | None = None
) -> tuple[WriteReport, AdaptiveRateLimiter, float]:
    """One write phase against `limit` (20 ms a round trip): report, limiter, seconds."""
    clock = FakeClock()
    graph = shape(limit, clock)

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        clock.now += 0.02
        return [
            answer(r, 200) if graph.take() else answer(r, 429, {"Retry-After": "1"}) for r in reqs
        ]

    limiter = AdaptiveRateLimiter(
        None,
        start=remembered or START_RATE,
        resumed=remembered is not None,
        sleep=clock.sleep,
        clock=clock,
    )
    w = BatchWriter(send, "conn", concurrency=1, sleep=clock.sleep, clock=clock, limiter=limiter)
    report = w.write(ops(items), Recorder().hooks())
    assert report.written == items and not report.failures
    return report, limiter, clock.now


@pytest.mark.parametrize("shape", [Bucket, Sliding])
def test_a_first_crawl_remembers_what_graph_accepted_not_where_the_probe_went(
    shape: Shape,
) -> None:
    report, limiter, _ = crawl(shape, 500, 1632)
    assert report.peak_rate > 1000  # the probe overshot: the limit is found by a 429
    assert report.throttled_entries > 0
    assert 400 <= limiter.rate_to_remember() <= 560  # was the rate itself: 2,420 items/s


@pytest.mark.parametrize("shape", [Bucket, Sliding])
def test_a_resumed_crawl_starts_under_the_remembered_rate(shape: Shape) -> None:
    report, limiter, _ = crawl(shape, 500, 1632, remembered=500)
    assert limiter.start_rate == 500 * RESUMED_SHARE
    assert 400 <= limiter.rate_to_remember() <= 560
    # Probing for a higher limit costs a congestion event or a few (the sliding window: 3,
    # each after its Retry-After), never a flood of 429s.
    assert limiter.slowdowns <= 3
    assert report.throttled_entries <= 0.1 * 1632


@pytest.mark.parametrize("shape", [Bucket, Sliding])
def test_a_resumed_crawl_finds_a_raised_limit_within_seconds(shape: Shape) -> None:
    """Remembered 25 items/s, Graph now allows 500: creeping at 5 %/s took a minute (9x)."""
    _, limiter, seconds = crawl(shape, 500, 1632, remembered=25)
    assert seconds <= 2.2 * 1632 / 500
    assert limiter.rate_to_remember() >= 400


@pytest.mark.parametrize("shape", [Bucket, Sliding])
def test_a_lowered_limit_is_found_and_remembered(shape: Shape) -> None:
    _, limiter, seconds = crawl(shape, 200, 1632, remembered=500)
    assert seconds <= 1.6 * 1632 / 200
    assert 150 <= limiter.rate_to_remember() <= 230


def test_a_crawl_that_met_no_limit_remembers_what_graph_confirmed() -> None:
    _, limiter, _ = crawl(Bucket, 1e9, 3000)
    most = 20 / 0.02  # one $batch of 20 per 20 ms round trip: all the writer gets through
    assert 0.6 * most <= limiter.rate_to_remember() <= most
    # Probing stops short of running away from what the writer gets through (was unbounded
    # while a writer had waited in the last second).
    assert limiter.peak_rate <= 2.2 * most


def test_a_crawl_too_short_to_measure_keeps_the_remembered_rate() -> None:
    _, limiter, _ = crawl(Bucket, 1e9, 5, remembered=300)
    assert limiter.rate_to_remember() == 300  # not 90 % of it: no decay from crawl to crawl
    _, first, _ = crawl(Bucket, 1e9, 5)
    assert first.rate_to_remember() == START_RATE


def test_a_resumed_probe_is_gentle_at_the_remembered_rate_and_speeds_up_above_it() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(None, start=100, resumed=True, sleep=clock.sleep, clock=clock)

    def gain_at(rate: float) -> float:
        limiter.rate = rate
        limiter.acquire(1)  # the rate holds the writer back
        limiter.acquire(1)
        clock.now += 0.5
        before = limiter.rate
        limiter.answered(Ticket(clock.now - 0.3, 1000), confirmed=1000, throttled=0, retry_after=0)
        return (limiter.rate - before) / 1000

    assert gain_at(100) == pytest.approx(2.0)
    assert gain_at(150) == pytest.approx(3.0)
    assert gain_at(1000) == pytest.approx(PROBE_GAIN)


def test_the_decrease_starts_from_what_was_sent_not_from_a_rate_never_reached() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(None, start=2000, sleep=clock.sleep, clock=clock)
    for k in range(10):  # 1,000 items/s sent and accepted: latency holds the writer back
        clock.now = 0.1 * (k + 1)
        limiter.answered(Ticket(clock.now - 0.1, 100), confirmed=100, throttled=0, retry_after=0)
    clock.now = 1.1
    limiter.answered(Ticket(1.0, 100), confirmed=50, throttled=50, retry_after=1.0)
    assert limiter.slowdowns == 1
    assert limiter.rate == pytest.approx(800, rel=0.05)  # 80 % of what was sent, not 1,600


def test_writes_sent_after_the_drop_and_refused_too_correct_it_once() -> None:
    """A burst let the first second through, so the drop was not enough: what Graph accepted
    of the writes sent after it is its allowance (once per event: no collapse)."""
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(None, start=1000, sleep=clock.sleep, clock=clock)
    for k in range(10):
        clock.now = 0.1 * (k + 1)
        limiter.answered(Ticket(clock.now - 0.1, 100), confirmed=100, throttled=0, retry_after=0)
    clock.now = 1.1
    limiter.answered(Ticket(1.0, 100), confirmed=60, throttled=40, retry_after=1.0)
    dropped = limiter.rate
    assert dropped == pytest.approx(800, rel=0.05)
    # Sent after the drop, inside the Retry-After, a batch every 40 ms at 800 items/s:
    # 500 items/s accepted, the rest refused.
    for sent in (1.12, 1.16, 1.20):
        clock.now = sent + 0.03
        limiter.answered(Ticket(sent, 32), confirmed=20, throttled=12, retry_after=1.0)
        if sent < 1.2:  # 70 ms of evidence is not enough to measure an allowance
            assert limiter.rate == dropped
    assert limiter.slowdowns == 1
    assert 450 <= limiter.rate <= 620
    assert 450 <= limiter.rate_to_remember() <= 620
    corrected = limiter.rate
    clock.now = 1.6
    limiter.answered(Ticket(1.5, 80), confirmed=0, throttled=80, retry_after=1.0)
    assert limiter.rate == corrected  # once per event


def test_a_waiting_writer_sees_the_rate_grow() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(None, start=25, sleep=clock.sleep, clock=clock)
    limiter.acquire(12)  # the next 12 would wait 0.48 s at 25 items/s
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.sleep(seconds)
        limiter.rate = 250  # an answer raised the rate meanwhile

    limiter._sleep = sleep
    limiter.acquire(12)
    assert clock.now == pytest.approx(12 / 250)
    assert len(slept) >= 2


def test_the_ceiling_caps_a_resumed_rate_and_what_is_remembered() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(40, start=500, resumed=True, sleep=clock.sleep, clock=clock)
    assert limiter.rate == 40
    assert limiter.rate_to_remember() == 40
