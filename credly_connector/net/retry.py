"""The one retry policy every engine uses: what is retried, how long we wait, what is "remote".

Credly and Graph clients, the msal adapter and the `$batch` writer all decide here:

* Retried: 429, 503 and 504 (Graph's throttling and error pages), and network failures that
  may go away (timeouts, refused or reset connections). A TLS failure, a proxy error or a host
  refused by the guard is final.
* `Retry-After` is honoured up to `MAX_RETRY_AFTER_SECONDS`. Longer, we do not wait at all:
  `RetryAfterTooLong` says what the service asked and the command stops (exit 3); nobody
  wants a CLI that sleeps in silence for an hour.
* A shorter wait is never silent: each one is reported to the `RetryStats` listeners (the
  sync log gets a `retry_wait` event) and counted.
* Retries do not nest: a layer that retries several requests as one unit (the writer retrying
  `$batch` entries) opens an `attempt_budget`; a `Retrier` inside it spends that budget instead
  of starting its own six attempts.
* `is_remote_status` says whether a failed answer is the service's ("remote, try later",
  exit 3) or a refusal that retrying cannot fix.

The sleep function is injectable so tests never really wait.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from credly_connector.errors import Retryable
from credly_connector.net.stats import RequestStats
from credly_connector.net.transport import is_tls_error

Sleep = Callable[[float], None]

# https://learn.microsoft.com/graph/throttling (429 + Retry-After, else exponential backoff) and
# https://learn.microsoft.com/graph/errors (503 may carry Retry-After; 504 goes with 503).
RETRY_STATUSES = frozenset({429, 503, 504})
MAX_ATTEMPTS = 6  # first try included, per request or per `$batch` entry
# The longest Retry-After credlyctl waits within one run (inclusive). Above it the run stops.
MAX_RETRY_AFTER_SECONDS = 300.0

WaitReason = Literal["throttled", "unavailable", "network"]


def is_remote_status(status: int) -> bool:
    """True when a failed answer is the service's trouble: retrying later may help (exit 3).

    429 and every 5xx are remote; 0 stands for "no answer" (a `$batch` entry Graph left out).
    Any other 4xx is a refusal of our request (permission, validation, not found) that
    retrying cannot fix.
    """
    return status == 0 or status == 429 or status >= 500


class RetryAfterTooLong(Retryable):
    """The service asked for a pause longer than credlyctl waits within one run."""

    def __init__(self, where: str, asked: float, cap: float, status: int | None = None) -> None:
        resume = datetime.now(UTC) + timedelta(seconds=asked)
        answered = f"answered HTTP {status} and " if status else ""
        super().__init__(
            f"{where} {answered}asked credlyctl to wait {asked:.0f} s before trying again "
            f"(Retry-After), longer than the {cap:.0f} s it waits within one run.",
            f"Run the command again after {resume:%Y-%m-%d %H:%M} UTC; a sync resumes where it "
            "stopped.",
            error_id="retry_after_too_long",
        )
        self.where = where
        self.asked_seconds = asked
        self.cap_seconds = cap
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = MAX_ATTEMPTS  # first try included
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = MAX_RETRY_AFTER_SECONDS
    retry_statuses: frozenset[int] = RETRY_STATUSES

    def retryable(self, status: int) -> bool:
        return status in self.retry_statuses

    def check_retry_after(self, asked: float | None, where: str, status: int | None = None) -> None:
        """Raise `RetryAfterTooLong` when `asked` is above the cap (the cap itself is waited)."""
        if asked is not None and asked > self.max_retry_after:
            raise RetryAfterTooLong(where, asked, self.max_retry_after, status)

    def delay(
        self,
        status: int,
        retry_after: float | None,
        attempt: int,
        where: str,
        *,
        rng: Callable[[], float] = random.random,
    ) -> float | None:
        """Seconds to wait before retry number `attempt` (0-based) of an answer with `status`.

        None when the answer must not be retried; raises `RetryAfterTooLong` above the cap.
        """
        if not self.retryable(status):
            return None
        if retry_after is None:
            return backoff_delay(attempt, self, rng=rng)
        self.check_retry_after(retry_after, where, status)
        return retry_after


@dataclass(frozen=True)
class RetryWait:
    """One wait before a retry, as the listeners of `RetryStats` hear of it."""

    seconds: float
    reason: WaitReason
    where: str  # the host, or "$batch entries"
    status: int | None = None
    retry_after: float | None = None  # what the service asked, when it asked

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
            "where": self.where,
            "status": self.status,
            "retry_after": self.retry_after,
        }


WaitListener = Callable[[RetryWait], None]


class RetryStats:
    """What retrying cost; thread-safe because page reads and writes run in threads.

    Every wait also goes to the listeners, so a wait is never silent (the sync log).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[WaitListener] = []
        self.throttle_waits = 0  # waits caused by 429/503/504 answers
        self.throttle_seconds = 0.0
        self.network_retries = 0
        self.network_seconds = 0.0

    def listen(self, listener: WaitListener) -> Callable[[], None]:
        """Hear of every wait from now on; call the returned function to stop."""
        with self._lock:
            self._listeners.append(listener)

        def stop() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return stop

    def waited(self, wait: RetryWait) -> None:
        with self._lock:
            if wait.reason == "network":
                self.network_retries += 1
                self.network_seconds += wait.seconds
            else:
                self.throttle_waits += 1
                self.throttle_seconds += wait.seconds
            listeners = list(self._listeners)
        for listener in listeners:
            listener(wait)

    def as_dict(self) -> dict[str, float | int]:
        with self._lock:
            return {
                "throttle_waits": self.throttle_waits,
                "throttle_seconds": round(self.throttle_seconds, 3),
                "network_retries": self.network_retries,
                "network_seconds": round(self.network_seconds, 3),
            }


class AttemptBudget:
    """Attempts an outer retry loop lends to the requests it makes (see `attempt_budget`)."""

    def __init__(self, attempts: int) -> None:
        self.remaining = max(1, attempts)
        self.used = 0

    def spend(self) -> None:
        self.remaining -= 1
        self.used += 1


_BUDGET: ContextVar[AttemptBudget | None] = ContextVar("credlyctl_attempt_budget", default=None)


@contextmanager
def attempt_budget(attempts: int) -> Iterator[AttemptBudget]:
    """Within the block, every `Retrier` of this thread makes at most `attempts` in all.

    Read `used` afterwards to charge the attempts to the outer loop's own count.
    """
    budget = AttemptBudget(attempts)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


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
        """How long to wait before retrying `response`; None when it must not be retried.

        Raises `RetryAfterTooLong` when the service asks for more than the cap.
        """
        return self.policy.delay(
            response.status_code,
            parse_retry_after(response.headers.get("Retry-After")),
            attempt,
            _where(response),
            rng=self._rng,
        )

    def send(self, attempt_once: Callable[[], httpx.Response]) -> httpx.Response:
        """Call `attempt_once` until it gives a final answer or the attempts run out.

        Returns the last response (possibly a 429/5xx the caller must report); re-raises the
        last network error when every attempt failed on the network. Inside an
        `attempt_budget`, the attempts come out of that budget.
        """
        budget = _BUDGET.get()
        attempt = 0
        while True:
            if budget is not None:
                budget.spend()
            last = attempt + 1 >= self.policy.max_attempts or (
                budget is not None and budget.remaining <= 0
            )
            try:
                response = attempt_once()
            except httpx.TransportError as exc:
                if last or not is_retryable_network_error(exc):
                    raise
                where = exc.request.url.host if _has_request(exc) else "the service"
                self._wait(
                    RetryWait(backoff_delay(attempt, self.policy, rng=self._rng), "network", where)
                )
                attempt += 1
                continue
            delay = self.delay_for(response, attempt)
            if delay is None or last:
                return response
            response.close()
            status = response.status_code
            self._wait(
                RetryWait(
                    delay,
                    "throttled" if status == 429 else "unavailable",
                    _where(response),
                    status,
                    parse_retry_after(response.headers.get("Retry-After")),
                )
            )
            attempt += 1

    def _wait(self, wait: RetryWait) -> None:
        self.stats.waited(wait)
        if wait.seconds > 0:
            self.sleep(wait.seconds)

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


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when the error carries no request
    except RuntimeError:
        return False
    return True


def _where(response: httpx.Response) -> str:
    try:
        return response.request.url.host or "the service"
    except RuntimeError:  # a response built without a request (tests)
        return "the service"
