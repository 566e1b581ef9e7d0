"""The batch writer and its rate limiter, against a scripted fake $batch endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from credly_connector.graph.batch import BatchRequest, BatchResponse
from credly_connector.graph.errors import GraphUnavailable
from credly_connector.net.retry import RetryPolicy
from credly_connector.sync.planner import Action, PlannedOp, Reason
from credly_connector.sync.ratelimit import AdaptiveRateLimiter
from credly_connector.sync.writer import BatchHooks, BatchWriter, ItemFailure, WriteServiceError


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def ops(n: int, action: Action = Action.CREATE) -> list[PlannedOp]:
    return [
        PlannedOp(f"i{k}", f"u{k}", f"u{k}@c.com", action, Reason.NEW_ITEM, {"k": k}, f"h{k}")
        for k in range(n)
    ]


class Recorder:
    def __init__(self) -> None:
        self.before: list[list[str]] = []
        self.written: list[tuple[str, str]] = []
        self.deleted: list[str] = []
        self.failed: list[ItemFailure] = []

    def hooks(self) -> BatchHooks:
        return BatchHooks(
            before=lambda b: self.before.append([o.item_id for o in b]),
            after=self._after,
        )

    def _after(
        self, w: Sequence[tuple[str, str]], d: Sequence[str], f: Sequence[ItemFailure]
    ) -> None:
        self.written += w
        self.deleted += d
        self.failed += f


def answer(
    req: BatchRequest, status: int, headers: dict[str, str] | None = None, body: Any = None
) -> BatchResponse:
    return BatchResponse(req.id, status, headers or {}, body)


def writer(send: Any, clock: FakeClock, rate: float = 1000, attempts: int = 4) -> BatchWriter:
    limiter = AdaptiveRateLimiter(rate, sleep=clock.sleep, clock=clock)
    return BatchWriter(
        send,
        "conn",
        max_rate=rate,
        concurrency=1,
        policy=RetryPolicy(max_attempts=attempts, base_delay=0.1),
        sleep=clock.sleep,
        limiter=limiter,
    )


def test_batches_hold_at_most_20_and_put_or_delete_the_right_urls() -> None:
    sent: list[list[BatchRequest]] = []

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        sent.append(reqs)
        return [answer(r, 200 if r.method == "PUT" else 204) for r in reqs]

    rec = Recorder()
    report = writer(send, FakeClock()).write(ops(41) + ops(2, Action.DELETE), rec.hooks())
    assert [len(b) for b in sent] == [20, 20, 3]
    assert sent[0][0].method == "PUT" and sent[0][0].url == "/external/connections/conn/items/i0"
    assert sent[2][-1].method == "DELETE" and sent[2][-1].body is None
    assert report.written == 41 and report.deleted == 2 and not report.failures
    assert rec.before[0] == [f"i{k}" for k in range(20)]  # intent recorded before sending


def test_429_inside_a_batch_retries_only_that_entry_after_its_retry_after() -> None:
    calls: list[list[str]] = []

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        calls.append([r.id for r in reqs])
        if len(calls) == 1:
            return [answer(reqs[0], 429, {"Retry-After": "7"})] + [answer(r, 200) for r in reqs[1:]]
        return [answer(r, 200) for r in reqs]

    clock = FakeClock()
    w = writer(send, clock)
    report = w.write(ops(3), Recorder().hooks())
    assert calls == [["1", "2", "3"], ["1"]]
    assert 7 in clock.sleeps and report.throttled_entries == 1 and report.written == 3
    assert w.limiter.rate < 1000  # slowed down on its own


def test_503_entries_retry_with_backoff_then_succeed() -> None:
    seen = 0

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        nonlocal seen
        seen += 1
        return [answer(r, 503 if seen < 3 else 200) for r in reqs]

    report = writer(send, FakeClock()).write(ops(2), Recorder().hooks())
    assert seen == 3 and report.written == 2 and report.retries == 2


def test_a_400_is_an_item_failure_and_a_404_delete_counts_as_deleted() -> None:
    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        bad = {"error": {"code": "InvalidRequest", "message": "bad acl"}}
        return [answer(reqs[0], 400, body=bad), answer(reqs[1], 404)]

    rec = Recorder()
    items = ops(1) + ops(1, Action.DELETE)
    report = writer(send, FakeClock()).write(items, rec.hooks())
    assert [(f.item_id, f.status, f.code) for f in report.failures] == [
        ("i0", 400, "InvalidRequest")
    ]
    assert rec.deleted == ["i0"] and report.service_error is None


def test_service_that_keeps_failing_stops_the_run_after_recording_what_was_done() -> None:
    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        if reqs[0].url.endswith("/i0"):
            return [answer(r, 200) for r in reqs]
        raise GraphUnavailable("server", "Graph answered 503")

    rec = Recorder()
    report = writer(send, FakeClock(), attempts=3).write(ops(45), rec.hooks())
    assert isinstance(report.service_error, GraphUnavailable)
    assert len(rec.written) == 20 and report.batches == 2  # the third batch is never started


def test_network_errors_are_retried_then_reported_as_a_service_failure() -> None:
    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        raise httpx.ConnectError("refused")

    report = writer(send, FakeClock(), attempts=2).write(ops(1), Recorder().hooks())
    assert isinstance(report.service_error, WriteServiceError)
    assert report.service_error.exit_code == 3


def test_entries_still_throttled_after_the_limit_are_a_service_failure() -> None:
    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        return [answer(r, 429, {"Retry-After": "1"}) for r in reqs]

    report = writer(send, FakeClock(), attempts=3).write(ops(1), Recorder().hooks())
    assert isinstance(report.service_error, WriteServiceError)
    assert "429" in report.service_error.message


@pytest.mark.parametrize("rate", [25.0, 5.0])
def test_rate_limiter_spaces_writes_to_the_configured_rate(rate: float) -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(rate, sleep=clock.sleep, clock=clock)
    for _ in range(10):
        limiter.acquire(20)
    # 200 items at `rate` per second: the last batch starts after 180 items' worth of time.
    assert clock.now == pytest.approx(180 / rate)


def test_rate_limiter_halves_on_throttling_and_recovers_additively() -> None:
    limiter = AdaptiveRateLimiter(100)
    limiter.throttled()
    limiter.throttled()
    assert limiter.rate == 25
    limiter.succeeded()
    assert limiter.rate == 35
    for _ in range(20):
        limiter.succeeded()
    assert limiter.rate == 100


def test_a_throttled_whole_batch_is_retried_after_a_backoff() -> None:
    calls = 0

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        nonlocal calls
        calls += 1
        if calls == 1:
            # The Graph client gives up on a 429 for the whole $batch after its own retries.
            raise GraphUnavailable("throttled", "Graph answered 429", status=429)
        return [answer(r, 200) for r in reqs]

    clock = FakeClock()
    report = writer(send, clock).write(ops(2), Recorder().hooks())
    assert calls == 2 and report.written == 2 and report.service_error is None
    assert clock.sleeps and report.retries == 1
