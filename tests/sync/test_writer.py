"""The batch writer and its rate limiter, against a scripted fake $batch endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from credly_connector.graph.batch import BatchRequest, BatchResponse
from credly_connector.graph.errors import GraphError, GraphUnavailable
from credly_connector.net.retry import RetryAfterTooLong, RetryPolicy, RetryWait
from credly_connector.sync.planner import Action, PlannedOp, Reason
from credly_connector.sync.ratelimit import AdaptiveRateLimiter, Ticket
from credly_connector.sync.writer import (
    MAX_IN_FLIGHT,
    BatchHooks,
    BatchWriter,
    ItemFailure,
    WriteReport,
    WriteServiceError,
    _Entry,
)
from tests.clients.helpers import FakeServer
from tests.clients.test_graph_client import graph as graph_client


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


def writer(
    send: Any, clock: FakeClock, rate: float = 1000, attempts: int = 4, concurrency: int = 1
) -> BatchWriter:
    limiter = AdaptiveRateLimiter(rate, start=rate, sleep=clock.sleep, clock=clock)
    return BatchWriter(
        send,
        "conn",
        concurrency=concurrency,
        policy=RetryPolicy(max_attempts=attempts, base_delay=0.1),
        sleep=clock.sleep,
        clock=clock,
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
        raise GraphUnavailable("server", "Graph answered 503", status=503)

    rec = Recorder()
    report = writer(send, FakeClock(), attempts=3).write(ops(45), rec.hooks())
    assert isinstance(report.service_error, WriteServiceError)
    assert report.service_error.exit_code == 3
    assert len(rec.written) == 20
    # The second batch was tried 3 times; the third never started.
    assert report.batches == 4 and "i40" not in {i for b in rec.before for i in b}


def test_a_refusal_of_the_whole_batch_stops_at_once() -> None:
    calls = 0

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        nonlocal calls
        calls += 1
        raise GraphError("Graph refused POST /$batch (HTTP 400)", status=400)

    report = writer(send, FakeClock()).write(ops(3), Recorder().hooks())
    assert isinstance(report.service_error, GraphError) and calls == 1


def test_network_errors_are_retried_then_reported_as_a_service_failure() -> None:
    calls = 0

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused")

    report = writer(send, FakeClock(), attempts=2).write(ops(1), Recorder().hooks())
    assert isinstance(report.service_error, WriteServiceError)
    assert report.service_error.exit_code == 3 and calls == 2


def test_entries_throttled_every_time_while_nothing_goes_through_are_a_service_failure() -> None:
    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        return [answer(r, 429, {"Retry-After": "1"}) for r in reqs]

    report = writer(send, FakeClock(), attempts=3).write(ops(1), Recorder().hooks())
    assert isinstance(report.service_error, WriteServiceError)
    assert "429" in report.service_error.message


def test_l10_one_entry_that_uses_up_its_attempts_does_not_stop_the_crawl() -> None:
    """Hardening L10: an unlucky entry is an item failure; the rest of the crawl is written."""
    sent: list[str] = []

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        sent.extend(r.url.rsplit("/", 1)[1] for r in reqs)
        return [answer(r, 503 if r.url.endswith("/i3") else 200) for r in reqs]

    rec = Recorder()
    report = writer(send, FakeClock(), attempts=3).write(ops(45), rec.hooks())
    assert report.service_error is None
    assert report.written == 44 and len(rec.written) == 44
    assert [(f.item_id, f.status) for f in report.failures] == [("i3", 503)]
    assert "next sync writes it again" in report.failures[0].message
    assert sent.count("i3") == 3  # its 3 attempts, no more
    assert "i44" in sent  # the crawl went on past it


def test_m2_a_retry_after_above_the_cap_stops_at_once_and_says_what_graph_asked() -> None:
    """Hardening M2: no silent 25-minute sleep inside $batch."""
    clock = FakeClock()

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        return [answer(r, 429, {"Retry-After": "3600"}) for r in reqs]

    rec = Recorder()
    w = BatchWriter(send, "conn", concurrency=1, sleep=clock.sleep, clock=clock)
    report = w.write(ops(30), rec.hooks())
    error = report.service_error
    assert isinstance(error, RetryAfterTooLong) and error.exit_code == 3
    assert "3600 s" in error.message and "300 s" in error.message
    assert clock.now < 5  # nothing like 5 x 300 s
    assert len(rec.before) == 1 and len(rec.before[0]) < 30  # the rest was never started


def test_a_retry_after_at_the_cap_is_waited_with_a_visible_event() -> None:
    clock = FakeClock()
    heard: list[RetryWait] = []
    calls = 0

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        nonlocal calls
        calls += 1
        status = 429 if calls == 1 else 200
        return [answer(r, status, {"Retry-After": "300"}) for r in reqs]

    w = BatchWriter(send, "conn", concurrency=1, sleep=clock.sleep, clock=clock)
    hooks = Recorder().hooks()
    hooks.waiting = heard.append
    report = w.write(ops(2), hooks)
    assert report.service_error is None and report.written == 2
    assert clock.sleeps == [300.0]
    assert [(h.reason, h.seconds, h.retry_after) for h in heard] == [("throttled", 300.0, 300.0)]


def test_m3_retries_do_not_nest_at_most_6_requests_per_entry() -> None:
    """Hardening M3: the Graph client's envelope retries come out of the entries' 6 attempts."""
    server = FakeServer()
    server.on("POST", "/v1.0/$batch", lambda request: httpx.Response(503))
    client = graph_client(server)
    report = BatchWriter(client.batch, "conn", concurrency=1, sleep=lambda s: None).write(
        ops(3), Recorder().hooks()
    )
    assert isinstance(report.service_error, WriteServiceError)
    assert len(server.paths("POST")) == 6  # was 36: 6 writer attempts x 6 client attempts


def test_m3_entry_retries_and_envelope_retries_share_one_budget() -> None:
    server = FakeServer()
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls % 2:
            return httpx.Response(503)  # the envelope fails: the client retries it
        entries = json.loads(request.content)["requests"]
        throttled = {"headers": {"Retry-After": "0"}, "status": 429}
        return httpx.Response(
            200, json={"responses": [{"id": e["id"]} | throttled for e in entries]}
        )

    server.on("POST", "/v1.0/$batch", handler)
    client = graph_client(server)
    report = BatchWriter(client.batch, "conn", concurrency=1, sleep=lambda s: None).write(
        ops(1), Recorder().hooks()
    )
    assert report.service_error is not None
    assert calls == 6


def test_never_more_than_25_entries_in_flight_whatever_the_concurrency() -> None:
    lock = threading.Lock()
    in_flight = peak = 0

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        nonlocal in_flight, peak
        with lock:
            in_flight += len(reqs)
            peak = max(peak, in_flight)
        time.sleep(0.002)
        with lock:
            in_flight -= len(reqs)
        return [answer(r, 200) for r in reqs]

    for concurrency in (1, 2, 3, 4, 8, 16):
        peak = 0
        limiter = AdaptiveRateLimiter(None, start=1e6)
        w = BatchWriter(send, "conn", concurrency=concurrency, limiter=limiter)
        report = w.write(ops(200), Recorder().hooks())
        assert report.written == 200
        assert 0 < peak <= MAX_IN_FLIGHT and report.peak_in_flight <= MAX_IN_FLIGHT
        assert w.batch_size * concurrency <= MAX_IN_FLIGHT


@pytest.mark.parametrize("rate", [25.0, 5.0])
def test_rate_limiter_spaces_writes_to_the_configured_rate(rate: float) -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(rate, start=rate, sleep=clock.sleep, clock=clock)
    for _ in range(10):
        limiter.acquire(20)
    # 200 items at `rate` per second: the last batch starts after 180 items' worth of time.
    assert clock.now == pytest.approx(180 / rate)


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


class Bucket:
    """Graph's ingestion limit as the simulator models it: `rate` items/s, a burst of 1 s."""

    def __init__(self, rate: float, clock: FakeClock) -> None:
        self.rate, self.clock = rate, clock
        self.level, self.stamp = rate, clock.now
        self.refused = 0

    def take(self) -> bool:
        self.level = min(self.rate, self.level + (self.clock.now - self.stamp) * self.rate)
        self.stamp = self.clock.now
        if self.level >= 1:
            self.level -= 1
            return True
        self.refused += 1
        return False


@pytest.mark.parametrize(("limit", "items"), [(10, 600), (25, 1500), (200, 8000), (500, 16000)])
def test_m7_the_default_writer_finds_the_allowed_rate_and_does_not_collapse(
    limit: float, items: int
) -> None:
    """Hardening M7 / issue 12: with the defaults, writing takes at most 1.15 x the floor."""
    clock = FakeClock()
    bucket = Bucket(limit, clock)

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        clock.now += 0.02  # one round trip
        return [
            answer(r, 200) if bucket.take() else answer(r, 429, {"Retry-After": "1"}) for r in reqs
        ]

    w = BatchWriter(send, "conn", concurrency=1, sleep=clock.sleep, clock=clock)
    report = w.write(ops(items), Recorder().hooks())
    assert report.written == items and not report.failures
    floor = items / limit
    assert clock.now <= 1.15 * floor, (clock.now, floor, report)
    assert report.final_rate >= 0.7 * limit  # was ~0.2 x the limit: halved per 429'd batch


def test_the_ceiling_caps_the_probing() -> None:
    clock = FakeClock()

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        clock.now += 0.02
        return [answer(r, 200) for r in reqs]

    w = BatchWriter(send, "conn", max_rate=40, concurrency=1, sleep=clock.sleep, clock=clock)
    report = w.write(ops(2000), Recorder().hooks())
    assert report.peak_rate == 40
    assert clock.now >= 2000 / 40 * 0.95


def test_one_congestion_event_lowers_the_rate_once_however_many_batches_report_it() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(None, start=100, sleep=clock.sleep, clock=clock)

    def sent(at: float) -> Ticket:
        return Ticket(sent_at=at, items=20)

    limiter.answered(sent(0.0), confirmed=100, throttled=0, retry_after=0.0)
    clock.now = 0.5
    rate = limiter.rate
    for _ in range(4):  # four batches sent together, all partly throttled
        limiter.answered(sent(0.4), confirmed=15, throttled=5, retry_after=1.0)
    assert limiter.slowdowns == 1 and limiter.rate == pytest.approx(rate * 0.8)
    clock.now = 1.2  # sent within Graph's Retry-After: the same event
    limiter.answered(sent(1.1), confirmed=0, throttled=20, retry_after=1.0)
    assert limiter.slowdowns == 1
    clock.now = 2.0  # sent after the Retry-After ran out: a new event
    limiter.answered(sent(1.6), confirmed=0, throttled=20, retry_after=1.0)
    assert limiter.slowdowns == 2
    # Never below half of what was sent in one step: 40 items sent from 1.1 s to 2.0 s.
    assert limiter.rate >= 40 / 0.9 / 2 - 1e-9


def test_after_the_last_retry_failed_for_good_new_entries_still_go_out() -> None:
    """No deadlock: Graph looked down, the retried entries became item failures, and the
    rest of the plan is still written (with two batches in flight this happens for real)."""
    w = BatchWriter(lambda reqs: [], "conn", concurrency=2)
    w._fresh.extend(_Entry(op) for op in ops(3))
    w._healthy = False  # the last answer confirmed nothing
    assert [e.op.item_id for e in w._ready(0.0)] == ["i0", "i1", "i2"]
    waiting = _Entry(ops(1)[0], attempts=1, not_before=5.0)
    w._fresh.extend(_Entry(op) for op in ops(3))
    w._retrying.append(waiting)
    assert w._ready(0.0) == []  # a retry is pending: it tells whether Graph is back
    assert w._ready(5.0) == [waiting]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_writer_that_expects_more_waits_for_them_until_the_end(concurrency: int) -> None:
    """Streamed writes (sync/streamed.py): `write` returns only after `end`, having sent
    everything `add` brought meanwhile, and a batch of a 429 is retried as before."""
    throttled: set[str] = set()

    def send(reqs: list[BatchRequest]) -> list[BatchResponse]:
        out = []
        for r in reqs:
            if r.url.endswith("i3") and "i3" not in throttled:
                throttled.add("i3")
                out.append(answer(r, 429, {"Retry-After": "0"}))
            else:
                out.append(answer(r, 200))
        return out

    w = BatchWriter(send, "conn", concurrency=concurrency, limiter=AdaptiveRateLimiter(10_000))
    w.expect_more()
    rec = Recorder()
    result: list[WriteReport] = []
    thread = threading.Thread(target=lambda: result.append(w.write(ops(2), rec.hooks())))
    thread.start()
    batch = ops(10)
    for op in batch[2:6]:
        w.add([op])
    time.sleep(0.2)
    assert thread.is_alive() and not result  # all sent, but more may come
    w.add(batch[6:])
    w.end()
    thread.join(10)
    assert not thread.is_alive()
    assert sorted(i for i, _ in rec.written) == sorted(f"i{k}" for k in range(10))
    assert result[0].written == 10 and w.backlog() == 0
