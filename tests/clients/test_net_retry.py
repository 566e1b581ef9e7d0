"""Retry-After, backoff, limits and the throttling counters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from credly_connector.exit_codes import ExitCode
from credly_connector.net import Retrier, RetryPolicy, backoff_delay, parse_retry_after
from credly_connector.net.retry import (
    MAX_RETRY_AFTER_SECONDS,
    RetryAfterTooLong,
    RetryWait,
    attempt_budget,
    is_remote_status,
    is_retryable_network_error,
)

REQ = httpx.Request("GET", "https://graph.microsoft.com/v1.0/users")


def answers(
    *responses: httpx.Response | Exception,
) -> tuple[list[int], Callable[[], httpx.Response]]:
    calls: list[int] = []
    queue = list(responses)

    def once() -> httpx.Response:
        calls.append(1)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return calls, once


def resp(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=REQ)


def test_parse_retry_after_seconds_dates_and_garbage() -> None:
    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30)), now=now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30)), now=now) == 0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None


def test_backoff_grows_with_jitter_and_a_ceiling() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=8)
    assert backoff_delay(0, policy, rng=lambda: 0.0) == 0.5
    assert backoff_delay(0, policy, rng=lambda: 1.0) == 1.0
    assert backoff_delay(2, policy, rng=lambda: 1.0) == 4.0
    assert backoff_delay(10, policy, rng=lambda: 1.0) == 8.0


def test_429_waits_exactly_retry_after_and_is_counted() -> None:
    sleeps: list[float] = []
    retrier = Retrier(sleep=sleeps.append)
    calls, once = answers(
        resp(429, **{"Retry-After": "3"}), resp(429, **{"Retry-After": "1"}), resp(200)
    )
    assert retrier.send(once).status_code == 200
    assert sleeps == [3.0, 1.0]
    assert len(calls) == 3
    stats = retrier.stats.as_dict()
    assert stats["throttle_waits"] == 2
    assert stats["throttle_seconds"] == 4.0


def test_503_and_504_back_off_without_retry_after() -> None:
    sleeps: list[float] = []
    retrier = Retrier(RetryPolicy(base_delay=1), sleep=sleeps.append, rng=lambda: 1.0)
    _, once = answers(resp(503), resp(504), resp(200))
    assert retrier.send(once).status_code == 200
    assert sleeps == [1.0, 2.0]


def test_attempts_are_limited_and_the_last_answer_returned() -> None:
    sleeps: list[float] = []
    retrier = Retrier(RetryPolicy(max_attempts=3), sleep=sleeps.append)
    calls, once = answers(resp(503), resp(503), resp(503), resp(200))
    assert retrier.send(once).status_code == 503
    assert len(calls) == 3
    assert len(sleeps) == 2


def test_a_huge_retry_after_is_not_waited_for_the_run_stops_saying_what_was_asked() -> None:
    sleeps: list[float] = []
    retrier = Retrier(RetryPolicy(max_retry_after=60), sleep=sleeps.append)
    calls, once = answers(resp(429, **{"Retry-After": "3600"}), resp(200))
    with pytest.raises(RetryAfterTooLong) as caught:
        retrier.send(once)
    assert sleeps == [] and len(calls) == 1
    error = caught.value
    assert error.exit_code == ExitCode.REMOTE
    assert error.asked_seconds == 3600 and error.status == 429
    assert "graph.microsoft.com" in error.message and "3600 s" in error.message
    assert "60 s" in error.message and "Run the command again after" in error.hint


@pytest.mark.parametrize(
    ("asked", "waited"), [("300", True), ("300.001", False), ("301", False), ("299", True)]
)
def test_the_retry_after_cap_is_inclusive_at_exactly_300_seconds(asked: str, waited: bool) -> None:
    sleeps: list[float] = []
    retrier = Retrier(sleep=sleeps.append)  # the shipped policy: the cap every engine uses
    assert retrier.policy.max_retry_after == MAX_RETRY_AFTER_SECONDS == 300
    _, once = answers(resp(503, **{"Retry-After": asked}), resp(200))
    if waited:
        assert retrier.send(once).status_code == 200
        assert sleeps == [float(asked)]
    else:
        with pytest.raises(RetryAfterTooLong):
            retrier.send(once)
        assert sleeps == []


def test_the_cap_applies_on_the_last_attempt_too() -> None:
    retrier = Retrier(RetryPolicy(max_attempts=1), sleep=lambda s: None)
    _, once = answers(resp(429, **{"Retry-After": "301"}))
    with pytest.raises(RetryAfterTooLong):
        retrier.send(once)


def test_every_wait_is_reported_to_the_listeners_never_silent() -> None:
    heard: list[RetryWait] = []
    retrier = Retrier(RetryPolicy(base_delay=1), sleep=lambda s: None, rng=lambda: 1.0)
    retrier.stats.listen(heard.append)
    _, once = answers(resp(429, **{"Retry-After": "2"}), httpx.ConnectError("x"), resp(200))
    retrier.send(once)
    assert [(w.reason, w.seconds, w.status, w.retry_after) for w in heard] == [
        ("throttled", 2.0, 429, 2.0),
        ("network", 2.0, None, None),
    ]
    assert heard[0].where == "graph.microsoft.com"


def test_retries_do_not_nest_inside_an_attempt_budget() -> None:
    sleeps: list[float] = []
    retrier = Retrier(sleep=sleeps.append)
    calls, once = answers(*[resp(503) for _ in range(6)])
    with attempt_budget(2) as budget:
        assert retrier.send(once).status_code == 503
    assert len(calls) == 2 and budget.used == 2 and len(sleeps) == 1
    calls, once = answers(resp(503), resp(200))
    assert retrier.send(once).status_code == 200  # outside the block: its own attempts again
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("status", "remote"),
    [
        (0, True),
        (429, True),
        (500, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
    ],
)
def test_remote_means_the_services_trouble_not_a_refusal(status: int, remote: bool) -> None:
    assert is_remote_status(status) is remote


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 409, 500])
def test_other_statuses_are_final(status: int) -> None:
    sleeps: list[float] = []
    calls, once = answers(resp(status))
    assert Retrier(sleep=sleeps.append).send(once).status_code == status
    assert sleeps == [] and len(calls) == 1


def test_network_errors_are_retried_then_raised() -> None:
    sleeps: list[float] = []
    retrier = Retrier(RetryPolicy(max_attempts=2), sleep=sleeps.append)
    _, once = answers(httpx.ConnectError("refused"), resp(200))
    assert retrier.send(once).status_code == 200
    _, once = answers(httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow"))
    with pytest.raises(httpx.ReadTimeout):
        retrier.send(once)
    assert retrier.stats.as_dict()["network_retries"] == 2


def test_tls_failures_are_not_retried() -> None:
    import ssl

    err = httpx.ConnectError("x")
    err.__cause__ = ssl.SSLCertVerificationError(1, "CERTIFICATE_VERIFY_FAILED")
    assert not is_retryable_network_error(err)
    sleeps: list[float] = []
    calls, once = answers(err)
    with pytest.raises(httpx.ConnectError):
        Retrier(sleep=sleeps.append).send(once)
    assert len(calls) == 1 and sleeps == []
