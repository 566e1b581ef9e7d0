"""What the Credly and Graph clients share: one httpx client, retries, and counts of both.

The sync report and `--json` stats read `request_counts` and `retry_stats` from each client,
so every request a client makes goes through `_metered`, never through `http` directly.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import httpx

from credly_connector.net.retry import Retrier, RetryPolicy, RetryStats
from credly_connector.net.stats import RequestStats

Sleep = Callable[[float], None]


class MeteredClient(ABC):
    def __init__(
        self,
        http: httpx.Client,
        *,
        sleep: Sleep = time.sleep,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.http = http
        self.request_counts = RequestStats()
        self.retry_stats = RetryStats()
        self._sleep = sleep
        self._retrier = Retrier(retry_policy, sleep=sleep, stats=self.retry_stats)

    def stats(self) -> dict[str, Any]:
        return {"requests": self.request_counts.as_dict(), **self.retry_stats.as_dict()}

    def _metered(self, method: str, url: str, *, kind: str, **options: Any) -> httpx.Response:
        """One request with retries, counted under `kind`; `options` go to `http.request`."""
        try:
            return self._retrier.request(
                self.http, method, url, stats=self.request_counts, kind=kind, **options
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc, httpx.URL(url).host) from None

    @abstractmethod
    def _unreachable(self, exc: httpx.TransportError, host: str) -> Exception:
        """The client's own error for a request that got no answer (TLS or network)."""
