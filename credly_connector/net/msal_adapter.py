"""Lets msal talk through credlyctl's httpx client (same CA, proxy, host guard, retries).

Without it msal would build a `requests.Session`, where REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
(set on many machines) silently override the configured CA, and where the host guard would
not apply.

The adapter also stands between msal and two kinds of answer msal handles badly:

- the credential msal sends belongs to exactly one origin (scheme, host and port): the
  authority's, or the managed identity endpoint's. A discovery document naming a
  `token_endpoint` elsewhere, or any request to another origin, is refused before anything
  is sent (hardening finding L1);
- an answer msal cannot read (a redirect, a body that is not a JSON object) is reported as
  `UnreadableAnswer` before msal sees it. msal would otherwise log the body (which may echo
  the form, secret included: finding H2) and raise a bare JSONDecodeError (finding L4).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import httpx

from credly_connector.net.retry import Retrier
from credly_connector.net.stats import RequestStats
from credly_connector.net.transport import ensure_same_origin, origin_of

AnswerProblem = Literal["redirect", "not_json"]


class UnreadableAnswer(Exception):
    """An identity endpoint answered something that is not a usable JSON document.

    Carries what is safe to show (status, media type, the redirect's origin), never the body.
    """

    def __init__(
        self,
        problem: AnswerProblem,
        *,
        endpoint: str,
        status: int,
        content_type: str,
        location: str | None = None,
    ) -> None:
        super().__init__(f"{endpoint}: HTTP {status} {problem}")
        self.problem: AnswerProblem = problem
        self.endpoint = endpoint  # "token", "discovery" or "managed identity"
        self.status = status
        self.content_type = content_type
        self.location = location  # scheme://host:port of a redirect target, if any


class MsalHttpClient:
    """The duck type msal expects: `.post()` / `.get()` returning a response-like object.

    `origin` pins every request to one scheme://host:port (None: the client's guard alone).
    `service` names the counters: "entra" (discovery and token) or "managed_identity".
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        retrier: Retrier | None = None,
        stats: RequestStats | None = None,
        origin: str | None = None,
        service: Literal["entra", "managed_identity"] = "entra",
    ) -> None:
        self.http = http
        self.retrier = retrier or Retrier()
        self.stats = stats or RequestStats()
        self.origin = origin
        self.service = service

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

    def _endpoint(self, method: str) -> str:
        if self.service == "managed_identity":
            return "managed identity"
        return "token" if method == "POST" else "discovery"

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        data: Any,
        headers: Mapping[str, str] | None,
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        if self.origin is not None:
            ensure_same_origin(url, self.origin, what=f"{self._endpoint(method)} URL")
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
        if self.service == "managed_identity":
            kind = "managed_identity.token"
        else:
            kind = "entra.token" if method == "POST" else "entra.discovery"
        response = self.retrier.request(
            self.http,
            method,
            url,
            stats=self.stats,
            kind=kind,
            params=params,
            headers=headers,
            data=form,
            content=content,
            timeout=timeout,
        )
        self._check(method, url, response)
        return response

    def _check(self, method: str, url: str, response: httpx.Response) -> None:
        endpoint = self._endpoint(method)
        status = response.status_code
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip() or "none"
        if 300 <= status < 400:
            location = response.headers.get("Location")
            target = None
            if location:
                try:
                    target = origin_of(str(httpx.URL(url).join(location)))
                except (httpx.InvalidURL, ValueError):
                    target = "an unreadable location"
            raise UnreadableAnswer(
                "redirect",
                endpoint=endpoint,
                status=status,
                content_type=content_type,
                location=target,
            )
        if status >= 500:
            return  # msal raises for these; the retrier already tried again
        if endpoint == "discovery" and status != 200:
            return  # msal reports a 4xx discovery answer itself (unknown tenant...)
        try:
            document = json.loads(response.text)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise UnreadableAnswer(
                "not_json", endpoint=endpoint, status=status, content_type=content_type
            )
        if endpoint == "discovery" and self.origin is not None:
            token_endpoint = document.get("token_endpoint")
            if isinstance(token_endpoint, str):
                ensure_same_origin(token_endpoint, self.origin, what="token_endpoint")
