"""Retries for throttling (429 + Retry-After), 503/504 and network errors, shared by clients.

Only answers that say "try again" are retried; a TLS failure or a host refused by the guard
is final. The sleep function is injectable so tests never really wait, and every wait is
counted because the sync report shows how long throttling cost.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from credly_connector.net.stats import RequestStats
from credly_connector.net.transport import is_tls_error

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6  # first try included
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A Retry-After above this is not waited for: the answer is returned to the caller, which
    # reports it (nobody wants a CLI that silently sleeps for an hour).
    max_retry_after: float = 300.0
    retry_statuses: frozenset[int] = frozenset({429, 503, 504})


class RetryStats:
    """What retrying cost; thread-safe because page reads and writes run in threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.throttle_waits = 0  # waits caused by 429/503/504 answers
        self.throttle_seconds = 0.0
        self.network_retries = 0
        self.network_seconds = 0.0

    def record(self, seconds: float, *, throttled: bool) -> None:
        with self._lock:
            if throttled:
                self.throttle_waits += 1
                self.throttle_seconds += seconds
            else:
                self.network_retries += 1
                self.network_seconds += seconds

    def as_dict(self) -> dict[str, float | int]:
        with self._lock:
            return {
                "throttle_waits": self.throttle_waits,
                "throttle_seconds": round(self.throttle_seconds, 3),
                "network_retries": self.network_retries,
                "network_seconds": round(self.network_seconds, 3),
            }


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from Retry-After (delta-seconds or an HTTP date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def backoff_delay(
    attempt: int, policy: RetryPolicy, *, rng: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with jitter for retry number `attempt` (0 for the first retry)."""
    ceiling = min(policy.max_delay, policy.base_delay * float(2**attempt))
    # Half fixed, half random: spreads parallel workers without ever waiting ~0.
    return ceiling / 2 + ceiling / 2 * rng()


def is_retryable_network_error(exc: BaseException) -> bool:
    if not isinstance(exc, httpx.TransportError):
        return False
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.ProxyError | httpx.LocalProtocolError):
        return False
    return not is_tls_error(exc)


class Retrier:
    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        sleep: Sleep = time.sleep,
        stats: RetryStats | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.stats = stats or RetryStats()
        self._rng = rng

    def delay_for(self, response: httpx.Response, attempt: int) -> float | None:
        """How long to wait before retrying `response`; None when it must not be retried."""
        if response.status_code not in self.policy.retry_statuses:
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            return backoff_delay(attempt, self.policy, rng=self._rng)
        if retry_after > self.policy.max_retry_after:
            return None
        return retry_after

    def send(self, attempt_once: Callable[[], httpx.Response]) -> httpx.Response:
        """Call `attempt_once` until it gives a final answer or the attempts run out.

        Returns the last response (possibly a 429/5xx the caller must report); re-raises the
        last network error when every attempt failed on the network.
        """
        attempt = 0
        while True:
            try:
                response = attempt_once()
            except httpx.TransportError as exc:
                if attempt + 1 >= self.policy.max_attempts or not is_retryable_network_error(exc):
                    raise
                pause = backoff_delay(attempt, self.policy, rng=self._rng)
                self.stats.record(pause, throttled=False)
                self.sleep(pause)
                attempt += 1
                continue
            if attempt + 1 >= self.policy.max_attempts:
                return response
            delay = self.delay_for(response, attempt)
            if delay is None:
                return response
            response.close()
            self.stats.record(delay, throttled=True)
            self.sleep(delay)
            attempt += 1

    def request(
        self,
        http: httpx.Client,
        method: str,
        url: str,
        *,
        stats: RequestStats,
        kind: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> httpx.Response:
        """`http.request` through `send`; every attempt is counted, so retries show in stats."""

        def once() -> httpx.Response:
            stats.add(kind)
            return http.request(
                method,
                url,
                params=dict(params) if params else None,
                headers=dict(headers) if headers else None,
                **options,
            )

        return self.send(once)
