"""Lets msal talk through credlyctl's httpx client (same CA, proxy, host guard, retries).

Without it msal would build a `requests.Session`, where REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
(set on many machines) silently override the configured CA, and where the host guard would
not apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from credly_connector.net.retry import Retrier
from credly_connector.net.stats import RequestStats


class MsalHttpClient:
    """The duck type msal expects: `.post()` / `.get()` returning a response-like object."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        retrier: Retrier | None = None,
        stats: RequestStats | None = None,
    ) -> None:
        self.http = http
        self.retrier = retrier or Retrier()
        self.stats = stats or RequestStats()

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return self._send("POST", url, params, data, headers, kwargs)

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return self._send("GET", url, params, None, headers, kwargs)

    def close(self) -> None:
        """msal may close its client; the shared httpx client belongs to the caller."""

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        data: Any,
        headers: Mapping[str, str] | None,
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        timeout = kwargs.get("timeout", httpx.USE_CLIENT_DEFAULT)
        content: bytes | str | None = None
        form: Mapping[str, Any] | None = None
        if isinstance(data, bytes | str):
            content = data
        elif data is not None:
            # msal puts the signed client assertion in as bytes; requests encodes those as
            # text, httpx would send their repr ("b'...'").
            form = {
                key: value.decode("ascii") if isinstance(value, bytes) else value
                for key, value in dict(data).items()
            }
        return self.retrier.request(
            self.http,
            method,
            url,
            stats=self.stats,
            kind="entra.token" if method == "POST" else "entra.discovery",
            params=params,
            headers=headers,
            data=form,
            content=content,
            timeout=timeout,
        )
