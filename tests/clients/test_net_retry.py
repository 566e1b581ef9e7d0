"""Retry-After, backoff, limits and the throttling counters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from credly_connector.net import Retrier, RetryPolicy, backoff_delay, parse_retry_after
from credly_connector.net.retry import is_retryable_network_error

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


def test_a_huge_retry_after_is_not_waited_for() -> None:
    sleeps: list[float] = []
    retrier = Retrier(RetryPolicy(max_retry_after=60), sleep=sleeps.append)
    _, once = answers(resp(429, **{"Retry-After": "3600"}))
    assert retrier.send(once).status_code == 429
    assert sleeps == []


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
