"""Read-only Credly client: OAuth client credentials or an organization authorization token.

The client never writes to Credly: the only non-GET request it can make is the OAuth token
POST. Answers are parsed tolerantly (credly-api.md §1): unknown fields are ignored, unknown
badge states kept, malformed JSON retried and then reported.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import date
from typing import Any

import httpx

from credly_connector.config.resolved import CredlySettings
from credly_connector.credly.errors import CredlyAuthError, CredlyUnavailable
from credly_connector.credly.models import Badge, Organization
from credly_connector.errors import ConfigError
from credly_connector.net.failures import describe_transport_error
from credly_connector.net.metered import MeteredClient
from credly_connector.net.retry import RetryPolicy, backoff_delay
from credly_connector.net.shapes import body_shape, safe_code
from credly_connector.net.transport import ensure_same_origin
from credly_connector.secrets import register_secret_value

# The only scope a read needs (credly-api.md §2.1). If Credly refuses it (invalid_scope), the
# token is requested once more without a scope, so the application's default scopes apply.
READ_SCOPE = "issued_badges"
DEFAULT_TOKEN_LIFETIME = 7200.0  # Doorkeeper's default, used when expires_in is missing
RENEW_MARGIN = 120.0  # renew this long before expiry so a request never carries a dying token
MALFORMED_ATTEMPTS = 3
# 1,000,000 badges at Credly's 50 per page: far beyond any organization. A `total_pages` or a
# chain of `next_page_url`s longer than this is a server fault, reported instead of read forever.
MAX_BADGE_PAGES = 20_000
AUTH_TOKEN_LIFETIME_DAYS = 180
# Answers to page 1 of a sorted listing that mean "this endpoint does not take that sort": the
# sort keys of issued badges are inferred (docs/fidelity.md C-BADGE-12), so the pages are read
# again without it. The same statuses credly/changes.py reads as a refused filter.
SORT_REFUSED_STATUSES = frozenset({400, 422})

Sleep = Callable[[float], None]


class CredlyClient(MeteredClient):
    def __init__(
        self,
        settings: CredlySettings,
        http: httpx.Client,
        *,
        page_concurrency: int = 8,
        sleep: Sleep = time.sleep,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(http, sleep=sleep, retry_policy=retry_policy)
        self.settings = settings
        self.page_concurrency = max(1, page_concurrency)
        self._clock = clock
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._token_deadline = 0.0
        self._send_scope = True
        self.token_requests = 0
        # Whether the latest `iter_badge_pages` read its pages without the sort it was asked
        # for, because Credly refused the sort (see there).
        self.sort_refused = False

    # ---- public API -------------------------------------------------------------------

    @property
    def org_url(self) -> str:
        return f"{self.settings.api_base}/organizations/{self.settings.org_id}"

    def get_organization(self) -> Organization:
        document = self._get_json(self.org_url, kind="credly.organization", org_path=True)
        data = document.get("data")
        if not isinstance(data, dict):
            raise _malformed("the organization answer has no `data` object", document)
        return Organization.from_api(data)

    def list_organizations(self) -> list[Organization]:
        """Every organization the credentials can see (Credly may refuse this: forbidden)."""
        url: str | None = f"{self.settings.api_base}/organizations"
        found: list[Organization] = []
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            try:
                document = self._get_json(url, kind="credly.organizations")
            except CredlyAuthError as exc:
                if exc.kind != "forbidden":
                    raise
                raise CredlyAuthError(
                    "forbidden",
                    "the Credly credentials may not list organizations (HTTP 403)",
                    "Listing is only a diagnostic aid; reading the configured organization "
                    "does not need it.",
                    status=exc.status,
                    body_shape=exc.body_shape,
                ) from None
            found.extend(Organization.from_api(d) for d in _data_list(document))
            url = self._next_page(document)
        return found

    def iter_badges(
        self,
        *,
        recipient_email: str | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> Iterator[Badge]:
        """Every badge matching the filters, page after page (following next_page_url)."""
        params = self._badge_params(recipient_email, filters)
        url: str | None = f"{self.org_url}/badges"
        seen: set[str] = set()
        first = True
        while url and url not in seen:
            seen.add(url)
            document = self._get_json(
                url, kind="credly.badges", params=params if first else None, org_path=True
            )
            first = False
            for item in _data_list(document):
                yield Badge.from_api(item)
            url = self._next_page(document)

    def list_badges(
        self,
        *,
        recipient_email: str | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> list[Badge]:
        """All badges, in page order, each once (see `iter_badge_pages`)."""
        pages = dict(self.iter_badge_pages(recipient_email=recipient_email, filters=filters))
        by_id: dict[str, Badge] = {}
        for n in sorted(pages):
            for badge in pages[n]:
                # Pages shift when badges are issued mid-read; the id keeps each badge once.
                by_id[badge.id or f"#{len(by_id)}"] = badge
        return list(by_id.values())

    def iter_badge_pages(
        self,
        *,
        recipient_email: str | None = None,
        filters: Mapping[str, str] | None = None,
        sort: str | None = None,
    ) -> Iterator[tuple[int, list[Badge]]]:
        """Every page as (page number, badges), each as soon as it is read, in any order.

        Pages 2..N are read in parallel when Credly reports `total_pages`. Pages are parsed
        as they arrive so raw JSON never piles up, and at most two pages per reader wait to
        be taken: a slow consumer slows the reading instead of filling memory. Badges issued
        while pages are read shift them, so a badge may come twice (the consumer keeps it
        once, by id), and pages past the reported total are followed by `next_page_url`.

        `sort` (e.g. `"recipient_email"`, `"-recipient_email"` for descending) is sent as
        `sort=<value>` with every page. Which keys issued badges take is inferred
        (docs/fidelity.md C-BADGE-12): Credly may ignore the sort, so the caller must check
        the order it gets; and if page 1 answers 400 or 422 to the sorted request, Credly
        refused the sort: the pages are read again without it (not an error) and
        `self.sort_refused` is True. `sort_refused` is reset to False when this is called
        and is final once page 1 has been yielded; it describes the latest call only.
        Any other failure, and a 400 or 422 without a sort, raises as it always does.
        """
        self.sort_refused = False
        return self._badge_pages(self._badge_params(recipient_email, filters), sort)

    def _badge_pages(
        self, params: dict[str, str], sort: str | None
    ) -> Iterator[tuple[int, list[Badge]]]:
        base = f"{self.org_url}/badges"
        first = self._first_badge_page(base, params, sort)
        if sort is not None and not self.sort_refused:
            params = {**params, "sort": sort}
        total_pages = _credible_total_pages(first)
        next_url = self._next_page(first)
        yield 1, _badges(first)
        del first
        number = 1
        if total_pages and total_pages > 1:

            def read(page: int) -> tuple[int, list[Badge], str | None]:
                paged = {**params, "page": str(page)}
                document = self._get_json(base, kind="credly.badges", params=paged, org_path=True)
                return page, _badges(document), self._next_page(document)

            numbers = iter(range(2, total_pages + 1))
            workers = min(self.page_concurrency, total_pages - 1)
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="credly-page")
            try:
                running = {pool.submit(read, n) for n in itertools.islice(numbers, 2 * workers)}
                while running:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        page, badges, link = future.result()
                        if page == total_pages:
                            next_url = link  # the last page's link: pages added since
                        running.update(pool.submit(read, n) for n in itertools.islice(numbers, 1))
                        yield page, badges
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            number = total_pages
        # Badges issued while we read can add a page: keep following the links from the end.
        seen: set[str] = set()
        while next_url and next_url not in seen:
            seen.add(next_url)
            if number >= MAX_BADGE_PAGES:
                raise _too_many_pages(number + 1, first_page=None)
            document = self._get_json(next_url, kind="credly.badges", org_path=True)
            number += 1
            next_url = self._next_page(document)
            yield number, _badges(document)

    def _first_badge_page(
        self, base: str, params: dict[str, str], sort: str | None
    ) -> dict[str, Any]:
        if sort is None:
            return self._get_json(base, kind="credly.badges", params=params, org_path=True)
        sorted_params = {**params, "sort": sort}
        try:
            return self._get_json(base, kind="credly.badges", params=sorted_params, org_path=True)
        except CredlyUnavailable as exc:
            if exc.kind != "unexpected" or exc.status not in SORT_REFUSED_STATUSES:
                raise
        self.sort_refused = True
        return self._get_json(base, kind="credly.badges", params=params, org_path=True)

    # ---- authentication ---------------------------------------------------------------

    def _auth_header(self) -> str:
        token = self.settings.authorization_token
        if token is not None:
            encoded = base64.b64encode(f"{token.reveal()}:".encode()).decode("ascii")
            register_secret_value(encoded)
            return f"Basic {encoded}"
        return f"Bearer {self._bearer()}"

    def _bearer(self) -> str:
        with self._lock:
            if self._access_token and self._clock() < self._token_deadline:
                return self._access_token
            return self._fetch_token()

    def _invalidate(self, token_used: str) -> None:
        with self._lock:
            if self._access_token is not None and self._access_token in token_used:
                self._access_token = None

    def _fetch_token(self) -> str:
        settings = self.settings
        secret = settings.client_secret
        if not settings.client_id or secret is None or secret.is_empty:
            raise ConfigError(
                "Credly OAuth needs a client id and a client secret, and one of them is missing "
                "or empty",
                "Set credly.client_id and credly.client_secret (or an authorization token).",
                error_id="credly.missing_credentials",
            )
        for _ in range(2):
            form = {
                "grant_type": "client_credentials",
                "client_id": settings.client_id,
                "client_secret": secret.reveal(),
            }
            if self._send_scope:
                form["scope"] = READ_SCOPE
            response = self._send("POST", settings.token_url, kind="credly.token", data=form)
            document = _parse_json(response.text)
            error = safe_code(document.get("error")) if isinstance(document, dict) else None
            if response.status_code == 400 and error == "invalid_scope" and self._send_scope:
                self._send_scope = False
                continue
            if response.status_code == 200 and isinstance(document, dict):
                token = document.get("access_token")
                if isinstance(token, str) and token:
                    register_secret_value(token)
                    lifetime = _number(document.get("expires_in")) or DEFAULT_TOKEN_LIFETIME
                    margin = min(RENEW_MARGIN, lifetime / 10)
                    self._access_token = token
                    self._token_deadline = self._clock() + lifetime - margin
                    self.token_requests += 1
                    return token
                raise _malformed("the token answer has no access_token", document)
            if response.status_code in (400, 401, 403) and error in (
                "invalid_client",
                "unauthorized_client",
                "invalid_grant",
                None,
            ):
                raise CredlyAuthError(
                    "invalid_client",
                    f"Credly rejected the OAuth client id {settings.client_id!r} or its secret "
                    f"(HTTP {response.status_code}{', ' + error if error else ''}) at "
                    f"{settings.web_base}",
                    "Check the client id in Credly under Developers > OAuth Applications. A "
                    "client secret cannot be read back after creation: if in doubt, create a "
                    "new secret (or a new OAuth application) and update credly.client_secret. "
                    "Also check that it belongs to this Credly environment "
                    f"({settings.environment.value}).",
                    status=response.status_code,
                    body_shape=body_shape(response.text),
                )
            raise _status_error(response, what="the Credly token endpoint")
        raise CredlyAuthError(  # pragma: no cover - the loop always returns or raises
            "invalid_client", "Credly refused every token request", "", status=None
        )

    # ---- plumbing ---------------------------------------------------------------------

    def _badge_params(
        self, recipient_email: str | None, filters: Mapping[str, str] | None
    ) -> dict[str, str]:
        parts = [f"{key}::{value}" for key, value in (filters or {}).items()]
        if recipient_email is not None:
            parts.insert(0, f"recipient_email::{recipient_email}")
        return {"filter": "|".join(parts)} if parts else {}

    def _next_page(self, document: Mapping[str, Any]) -> str | None:
        metadata = document.get("metadata")
        if not isinstance(metadata, dict):
            return None
        next_url = metadata.get("next_page_url")
        if not isinstance(next_url, str) or not next_url:
            return None
        return str(ensure_same_origin(next_url, self.settings.api_base, what="next_page_url"))

    def _get_json(
        self,
        url: str,
        *,
        kind: str,
        params: Mapping[str, str] | None = None,
        org_path: bool = False,
    ) -> dict[str, Any]:
        refreshed = False
        malformed = 0
        while True:
            response, token_used = self._authorized_get(url, kind, params)
            status = response.status_code
            if status == 401 and self.settings.uses_oauth and not refreshed:
                # The bearer may have expired early or been revoked: one fresh token, one retry.
                refreshed = True
                self._invalidate(token_used)
                continue
            if status == 200:
                document = _parse_json(response.text)
                if isinstance(document, dict):
                    return document
                malformed += 1
                if malformed >= MALFORMED_ATTEMPTS:
                    raise CredlyUnavailable(
                        "malformed",
                        f"Credly answered {malformed} times with a body that is not a JSON "
                        f"object ({_path(url)})",
                        "Retry later; if it persists, report it with `credlyctl support-bundle`.",
                        status=status,
                        body_shape=body_shape(response.text),
                    )
                self._sleep(backoff_delay(malformed - 1, self._retrier.policy))
                continue
            raise self._api_error(response, org_path=org_path)

    def _authorized_get(
        self, url: str, kind: str, params: Mapping[str, str] | None
    ) -> tuple[httpx.Response, str]:
        header = self._auth_header()
        response = self._send(
            "GET", url, kind=kind, params=params, headers={"Authorization": header}
        )
        return response, header

    def _send(
        self,
        method: str,
        url: str,
        *,
        kind: str,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        form = dict(data) if data else None
        return self._metered(method, url, kind=kind, params=params, headers=headers, data=form)

    def _unreachable(self, exc: httpx.TransportError, host: str) -> Exception:
        return CredlyUnavailable(*describe_transport_error(exc, host, detailed=True))

    def _api_error(self, response: httpx.Response, *, org_path: bool) -> Exception:
        status = response.status_code
        shape = body_shape(response.text)
        org = self.settings.org_id
        env = self.settings.environment.value
        if status == 401:
            if self.settings.authorization_token is not None:
                created = self.settings.authorization_token_created
                age = ""
                if created is not None:
                    days = (date.today() - created).days
                    age = f" (created {created.isoformat()}, {days} days ago)"
                return CredlyAuthError(
                    "token_rejected",
                    f"Credly rejected the organization authorization token{age}",
                    "Authorization tokens expire 180 days after creation. Create a new one in "
                    "Credly under Developers > Authorization Tokens (read access is enough) and "
                    "update credly.authorization_token; check it belongs to the "
                    f"{env} environment.",
                    status=status,
                    body_shape=shape,
                )
            return CredlyAuthError(
                "token_rejected",
                "Credly rejected a freshly issued OAuth access token (HTTP 401)",
                "Check that the OAuth application belongs to this organization and environment "
                f"({env}) and has the issued_badges scope.",
                status=status,
                body_shape=shape,
            )
        if status == 403:
            return CredlyAuthError(
                "forbidden",
                f"the Credly credentials are valid but may not read organization {org} (HTTP 403)",
                "Use credentials created in this organization (Developers menu of the "
                "organization in Credly), or correct credly.organization_id; "
                "`credlyctl test-credentials` lists the organizations these credentials see. "
                "An OAuth application also needs the issued_badges scope.",
                status=status,
                body_shape=shape,
            )
        if status == 404 and org_path:
            return CredlyAuthError(
                "not_found",
                f"Credly organization {org} does not exist in the {env} environment or is not "
                "visible to these credentials (HTTP 404)",
                "Copy the Organization ID from Credly (Developers menu) and check the "
                "environment: sandbox and production are separate.",
                status=status,
                body_shape=shape,
            )
        return _status_error(response, what="Credly")

    # ---- totals -----------------------------------------------------------------------

    def badge_total(self, filters: Mapping[str, str] | None = None) -> int | None:
        """`metadata.total_count` of page 1 of the badge listing with `filters` (one request).

        None when Credly reports no usable count. Failures raise as for `iter_badges`; a 400
        or 422 is a `CredlyUnavailable` of kind `unexpected` carrying the status.
        """
        document = self._get_json(
            f"{self.org_url}/badges",
            kind="credly.badges",
            params=self._badge_params(None, filters),
            org_path=True,
        )
        metadata = document.get("metadata")
        count = metadata.get("total_count") if isinstance(metadata, dict) else None
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            return count
        return None


def _status_error(response: httpx.Response, *, what: str) -> CredlyUnavailable:
    status = response.status_code
    shape = body_shape(response.text)
    if status == 429:
        return CredlyUnavailable(
            "throttled",
            f"{what} kept answering 429 Too Many Requests",
            "Credly is throttling this client; retry later or lower sync.credly_page_concurrency.",
            status=status,
            body_shape=shape,
        )
    if status >= 500:
        return CredlyUnavailable(
            "server",
            f"{what} failed with HTTP {status} after retries",
            "Credly seems to be having problems; retry later.",
            status=status,
            body_shape=shape,
        )
    return CredlyUnavailable(
        "unexpected",
        f"{what} answered HTTP {status} to {_path(str(response.request.url))}",
        "This is unexpected; report it with `credlyctl support-bundle`.",
        status=status,
        body_shape=shape,
    )


def _malformed(reason: str, document: Any) -> CredlyUnavailable:
    return CredlyUnavailable(
        "malformed",
        f"Credly's answer was not understood: {reason}",
        "Retry later; if it persists, report it with `credlyctl support-bundle`.",
        body_shape=body_shape(json.dumps(document)) if document is not None else None,
    )


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _data_list(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    data = document.get("data")
    if not isinstance(data, list):
        raise _malformed("a page has no `data` list", document)
    return [item for item in data if isinstance(item, dict)]


def _badges(document: Mapping[str, Any]) -> list[Badge]:
    return [Badge.from_api(item) for item in _data_list(document)]


def _total_pages(document: Mapping[str, Any]) -> int | None:
    metadata = document.get("metadata")
    if isinstance(metadata, dict):
        value = metadata.get("total_pages")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _credible_total_pages(document: Mapping[str, Any]) -> int | None:
    """`total_pages`, capped by what `total_count` allows: an absurd figure is not read.

    A count that pages shifted by (badges issued mid-read) is caught up by following
    `next_page_url` from the last page, so the cap loses nothing.
    """
    total = _total_pages(document)
    if total is None:
        return None
    metadata = document.get("metadata")
    count = metadata.get("total_count") if isinstance(metadata, dict) else None
    per = metadata.get("per") if isinstance(metadata, dict) else None
    if not (isinstance(per, int) and per > 0):
        per = len(document.get("data") or []) or None
    if isinstance(count, int) and count >= 0 and per:
        total = min(total, -(-count // per) + 1)
    if total > MAX_BADGE_PAGES:
        raise _too_many_pages(total, first_page=document)
    return total


def _too_many_pages(pages: int, first_page: Any) -> CredlyUnavailable:
    return _malformed(
        f"it reports {pages} or more pages of badges, more than credlyctl reads "
        f"({MAX_BADGE_PAGES} pages, 1,000,000 badges)",
        first_page,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if parsed > 0 else None
    return None


def _path(url: str) -> str:
    """The URL's path only: query strings can carry recipient emails."""
    return httpx.URL(url).path
