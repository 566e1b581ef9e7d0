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

It also answers msal's tenant discovery from `DiscoveryCache` when the document is known from
an earlier run, which saves a whole round trip before the first token of every command.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, Literal

import httpx

from credly_connector.errors import ForbiddenHostError
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
    `discovery_cache` answers tenant discovery GETs from an earlier run's document.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        retrier: Retrier | None = None,
        stats: RequestStats | None = None,
        origin: str | None = None,
        service: Literal["entra", "managed_identity"] = "entra",
        discovery_cache: DiscoveryCache | None = None,
    ) -> None:
        self.http = http
        self.retrier = retrier or Retrier()
        self.stats = stats or RequestStats()
        self.origin = origin
        self.service = service
        self.discovery_cache = discovery_cache

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
        cache = self.discovery_cache if self._cacheable(method, url, params) else None
        if cache is not None:
            known = self._known_discovery(cache, url)
            if known is not None:
                return known
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
        if cache is not None and response.status_code == 200 and _usable_discovery(response.text):
            # _check accepted it: a JSON object whose token_endpoint is on the pinned origin.
            cache.put(url, response.text)
        return response

    def _cacheable(self, method: str, url: str, params: Mapping[str, Any] | None) -> bool:
        """Only tenant discovery GETs: the token POSTs (and so the tokens) never reach the cache."""
        return (
            method == "GET"
            and self.service == "entra"
            and not params
            and httpx.URL(url).path.endswith(DISCOVERY_SUFFIX)
        )

    def _known_discovery(self, cache: DiscoveryCache, url: str) -> httpx.Response | None:
        """An earlier run's discovery document, if it passes the checks a live answer must pass."""
        document = cache.get(url)
        if document is None or not _usable_discovery(document):
            return None
        response = httpx.Response(
            200,
            text=document,
            headers={"Content-Type": "application/json"},
            request=httpx.Request("GET", url),
        )
        try:
            self._check("GET", url, response)
        except (UnreadableAnswer, ForbiddenHostError):
            return None  # e.g. edited by hand: ask Entra again (and overwrite it)
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


def _usable_discovery(document: str) -> bool:
    """Whether msal can build its authority from the document (it needs both endpoints)."""
    try:
        parsed = json.loads(document)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, dict) and all(
        isinstance(parsed.get(key), str) for key in ("token_endpoint", "authorization_endpoint")
    )


# -- the tenant discovery document, kept between runs ---------------------------------------
#
# msal reads the authority's OpenID configuration (<authority>/v2.0/.well-known/
# openid-configuration) whenever an application object is built, so once per process: one whole
# round trip before the first token of every command. msal can keep answers between runs through
# its `http_cache` parameter (any dict-like object), but that mapping holds more than discovery
# (msal 1.39, throttled_http_client.py): GET answers with a 2xx status, kept 24 h; POST answers
# to the token endpoint with HTTP 400, kept 60 s under a SHA-256 of the whole form (the client
# secret included); POST answers with 429, a 5xx or a Retry-After header, kept for the
# Retry-After time (a token answer that carried that header would be kept access token and
# all); each with its body and every header, plus a private index whose format msal says may
# change (it suggests pickle). Persisting that would put Entra's error texts (which can echo the
# request: finding M1) and hashes over the secret on disk, and replay a refusal for a minute
# after the admin fixed its cause. So credlyctl keeps exactly one kind of answer itself: the
# discovery document, per URL, as long as msal would keep it in memory (24 h). It holds public
# endpoint metadata only; tokens are never there (they come from POSTs, see
# MsalHttpClient._cacheable).

DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
DISCOVERY_MAX_AGE_SECONDS = 24 * 3600  # msal's own lifetime for a cached discovery answer
_CACHE_FORMAT = 1
_MAX_CACHE_BYTES = 256 * 1024  # a real document is 2 KB; anything far bigger is not ours
_MAX_DOCUMENTS = 8  # one authority per instance; a few more if entra.authority_url changed
# Never follow a link or block on a FIFO put at the cache's path; neither flag exists on Windows.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_BINARY", 0)
)


class DiscoveryCache:
    """Tenant discovery documents kept in one JSON file between runs, best effort.

    Whatever cannot be used (no file, an unreadable or corrupt one, a link, an entry too old or
    from the future) is a miss, never an error; a file that cannot be written is left alone.
    The folder is not created: it is the instance's state folder, made by setup and sync.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_age_seconds: float = DISCOVERY_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.max_age_seconds = max_age_seconds
        self.clock = clock

    @classmethod
    def in_state_folder(cls, state_dir: Path, instance: str) -> DiscoveryCache:
        return cls(state_dir / f"{instance}.entra-discovery.json")

    def get(self, url: str) -> str | None:
        entry = self._fresh(self._read()).get(url)
        return entry["document"] if entry is not None else None

    def put(self, url: str, document: str) -> None:
        folder = self.path.parent
        if not folder.is_dir() or not self._replaceable():
            return
        documents = self._fresh(self._read())
        documents.pop(url, None)
        older = sorted(documents.items(), key=lambda item: item[1]["fetched_at"])
        entry = {"fetched_at": self.clock(), "document": document}
        kept = [*older[-(_MAX_DOCUMENTS - 1) :], (url, entry)]
        text = json.dumps({"format": _CACHE_FORMAT, "documents": dict(kept)}, indent=1)
        try:
            # Written aside then renamed: a reader never sees half a file, and two runs
            # writing at once leave one whole document (os.replace works on Windows too).
            handle, temporary = tempfile.mkstemp(
                dir=folder, prefix=f".{self.path.name}.", suffix=".tmp"
            )
        except OSError:
            return
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, self.path)
        except OSError:
            with suppress(OSError):
                os.unlink(temporary)

    def _replaceable(self) -> bool:
        """No file yet, or a regular one: a link or a folder in its place is left alone."""
        try:
            return stat.S_ISREG(os.lstat(self.path).st_mode)
        except FileNotFoundError:
            return True
        except OSError:
            return False

    def _read(self) -> Any:
        try:
            if not stat.S_ISREG(os.lstat(self.path).st_mode):
                return None
            handle = os.open(self.path, _OPEN_FLAGS)
        except OSError:
            return None
        try:
            with os.fdopen(handle, "rb") as source:
                if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                    return None
                raw = source.read(_MAX_CACHE_BYTES + 1)
            if len(raw) > _MAX_CACHE_BYTES:
                return None
            return json.loads(raw.decode("utf-8"))
        except (OSError, ValueError, RecursionError):  # unreadable, not UTF-8, not JSON
            return None

    def _fresh(self, data: Any) -> dict[str, dict[str, Any]]:
        """The usable entries of what `_read` returned, whatever shape it has."""
        if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
            return {}
        documents = data.get("documents")
        if not isinstance(documents, dict):
            return {}
        now = self.clock()
        fresh: dict[str, dict[str, Any]] = {}
        for url, entry in documents.items():
            if not isinstance(entry, dict):
                continue
            fetched_at = entry.get("fetched_at")
            document = entry.get("document")
            if (
                isinstance(url, str)
                and isinstance(document, str)
                and isinstance(fetched_at, int | float)
                and not isinstance(fetched_at, bool)
                and 0 <= now - fetched_at < self.max_age_seconds
            ):
                fresh[url] = {"fetched_at": fetched_at, "document": document}
        return fresh
