"""Simulated Credly: the web host's OAuth token endpoint and the read side of the API (/v1).

Written from ../shared/reference/credly-api.md. Where the reference marks a behaviour as
inferred (error bodies, 403 vs 404 for a foreign organization, filter case, scope errors,
the day filters, the badge sort), the choice is a switch in knobs.py and the code says so.
"""

from __future__ import annotations

import base64
import copy
import math
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from credly_connector.simulator.core import SimRequest, SimResponse
from credly_connector.simulator.knobs import Knobs

PER_PAGE = 50  # [CREDLY] metadata examples report per: 50; no page-size parameter is known
BADGE_READ_SCOPE = "issued_badges"
# [INFERRED] Day filters on issued badges, by analogy with the badge templates' documented
# `updated_at_min`/`updated_at_max` (YYYY-MM-DD, inclusive); switch `credly_updated_at_filter`.
DAY_FILTERS = ("updated_at_min", "updated_at_max")
# [INFERRED] The one sort key issued badges take here, by analogy with the `recipient_email`
# filter key and the employees' documented `email` sort key; switch `credly_badge_sort`
# (docs/fidelity.md C-BADGE-12). Any other key leaves the organization's order.
SORT_KEY = "recipient_email"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# Moments that change a badge, latest wins: what `updated_at` is derived from when a scenario
# leaves it out, so every simulated badge has one as Credly's do.
_CHANGE_MOMENTS = ("state_updated_at", "accepted_at", "issued_at", "created_at")
_INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication included, "
    "or unsupported authentication method."
)


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class Credential:
    kind: str  # "oauth" or "authorization_token"
    organizations: frozenset[str]
    scopes: frozenset[str] | None  # None: an organization token, not scoped


class CredlyStore:
    """Organizations, badges, OAuth clients and tokens; shared by the web and API services."""

    def __init__(
        self,
        scenario: dict[str, Any],
        switches: Knobs,
        faults: Knobs,
        clock: Any = time.time,
    ) -> None:
        self.environment = str(scenario.get("environment", "production"))
        self.switches = switches
        self.faults = faults
        self.clock = clock
        self._lock = threading.RLock()
        self._orgs: dict[str, dict[str, Any]] = {}
        self._badges: dict[str, list[dict[str, Any]]] = {}
        self._where: dict[str, tuple[str, int]] = {}  # badge id -> (org id, position)
        self._version = 0
        self._cache: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for org in scenario.get("organizations", []):
            record = {k: copy.deepcopy(v) for k, v in org.items() if k != "badges"}
            org_id = str(record["id"]).lower()
            self._orgs[org_id] = record
            self._badges[org_id] = []
            # The scenario is the runner's private copy: badges are taken over, not copied.
            loaded = iso(self.clock())
            for badge in org.get("badges", []):
                if not badge.get("updated_at"):
                    badge["updated_at"] = _last_change(badge) or loaded
                self._append(org_id, badge)
        self._clients = {str(c["client_id"]): dict(c) for c in scenario.get("oauth_clients", [])}
        self._org_tokens = {
            str(t["token"]): dict(t) for t in scenario.get("authorization_tokens", [])
        }
        self._issued: dict[str, tuple[Credential, float]] = {}

    # -- data --------------------------------------------------------------------------------

    def _append(self, org_id: str, badge: dict[str, Any]) -> None:
        badge_id = str(badge["id"])
        if badge_id in self._where:
            raise ValueError(f"badge {badge_id} already exists")
        self._where[badge_id] = (org_id, len(self._badges[org_id]))
        self._badges[org_id].append(badge)
        self._version += 1

    def organization(self, org_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._orgs.get(org_id.lower())
            return copy.deepcopy(found) if found else None

    def organization_ids(self) -> list[str]:
        with self._lock:
            return list(self._orgs)

    def badges(self, org_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._badges.get(org_id.lower(), []))

    def badge(self, badge_id: str, org_id: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            where = self._where.get(badge_id)
            if where is None or (org_id is not None and where[0] != org_id.lower()):
                return None
            return copy.deepcopy(self._badges[where[0]][where[1]])

    def update_badge(self, badge_id: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            where = self._where.get(badge_id)
            if where is None:
                raise KeyError(badge_id)
            org_id, position = where
            # Replace rather than mutate: a page being serialized keeps a consistent badge.
            updated = {**self._badges[org_id][position], **copy.deepcopy(fields)}
            if "updated_at" not in fields:
                updated["updated_at"] = iso(self.clock())
            self._badges[org_id][position] = updated
            self._version += 1
            return copy.deepcopy(updated)

    def add_badge(self, org_id: str, badge: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            key = org_id.lower()
            if key not in self._orgs:
                raise KeyError(org_id)
            now = iso(self.clock())
            record = {
                "id": str(uuid.uuid4()),
                "state": "pending",
                "public": False,
                "issued_at": now,
                "updated_at": now,
                "accepted_at": None,
                "expires_at": None,
                **copy.deepcopy(badge),
            }
            record.setdefault("badge_url", f"https://www.credly.com/badges/{record['id']}")
            self._append(key, record)
            return copy.deepcopy(record)

    def listing(
        self, org_id: str, filters: dict[str, list[str]], sort: str | None = None
    ) -> list[dict[str, Any]]:
        """The organization's badges matching `filters` (day filters already validated).

        `sort` is a key `parse_sort` kept (`recipient_email` or `-recipient_email`) or None
        for the organization's order. Sorted once per (version, filters, sort), never per page.
        """
        case_sensitive = bool(self.switches.get("recipient_email_filter_case_sensitive"))
        filter_key = tuple(sorted((k, tuple(v)) for k, v in filters.items()))
        key = (org_id, filter_key, case_sensitive, sort)
        with self._lock:
            cache_key = (self._version, *key)
            cached = self._cache.get(cache_key)
            if cached is not None:
                return cached
            result = [b for b in self._badges[org_id] if _matches(b, filters, case_sensitive)]
            if sort is not None:
                result = _by_address(result, descending=sort.startswith("-"))
            if len(self._cache) > 64 or any(k[0] != self._version for k in self._cache):
                self._cache.clear()
            self._cache[cache_key] = result
            return result

    # -- credentials -------------------------------------------------------------------------

    def client(self, client_id: str) -> dict[str, Any] | None:
        return self._clients.get(client_id)

    def issue_token(self, client: dict[str, Any], scopes: frozenset[str]) -> tuple[str, int]:
        lifetime = int(self.faults.get("credly_token_lifetime_seconds"))
        token = secrets.token_urlsafe(32)
        orgs = frozenset(str(o).lower() for o in client.get("organizations", []))
        with self._lock:
            self._issued[token] = (Credential("oauth", orgs, scopes), self.clock() + lifetime)
        return token, lifetime

    def credential(self, request: SimRequest) -> Credential | None:
        bearer = request.bearer()
        if bearer is not None:
            with self._lock:
                found = self._issued.get(bearer)
            if found is None or found[1] <= self.clock():
                return None
            return found[0]
        token = self._basic_token(request.header("authorization") or "")
        if token is None:
            return None
        record = self._org_tokens.get(token)
        if record is None:
            return None
        expires = _parse_time(record.get("expires_at"))
        if expires is not None and expires <= self.clock():
            return None
        return Credential(
            "authorization_token", frozenset({str(record["organization_id"]).lower()}), None
        )

    def _basic_token(self, header: str) -> str | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        user, colon, password = decoded.partition(":")
        if colon and not password:
            return user
        if not colon and self.switches.get("basic_auth_bare_token"):
            return user
        return None


def _last_change(badge: dict[str, Any]) -> str | None:
    moments = [t for t in (_parse_time(badge.get(k)) for k in _CHANGE_MOMENTS) if t is not None]
    return iso(max(moments)) if moments else None


def badge_day(badge: dict[str, Any]) -> str | None:
    """The UTC day (YYYY-MM-DD) of the badge's `updated_at`, what the day filters compare."""
    value = badge.get("updated_at")
    if isinstance(value, str) and len(value) > 10 and value.endswith("Z"):
        return value[:10]  # the usual `...T...Z` form: no parsing for 200,000 badges
    moment = _parse_time(value)
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d") if moment else None


def day_filter_error(filters: dict[str, list[str]]) -> str | None:
    """Why the day filters in `filters` are malformed (one YYYY-MM-DD each), or None."""
    for key in DAY_FILTERS:
        if key not in filters:
            continue
        values = filters[key]
        valid = len(values) == 1 and _DAY.fullmatch(values[0]) is not None
        if valid:
            try:
                date.fromisoformat(values[0])
            except ValueError:
                valid = False
        if not valid:
            return f"Invalid filter value for {key}: expected a date as YYYY-MM-DD"
    return None


def _matches(badge: dict[str, Any], filters: dict[str, list[str]], case_sensitive: bool) -> bool:
    for key, values in filters.items():
        if key in DAY_FILTERS:
            # Inclusive at day granularity, as Credly documents for templates; ISO days
            # compare as strings. A badge without a readable `updated_at` is in no window.
            day = badge_day(badge)
            if day is None or (day < values[0] if key == "updated_at_min" else day > values[0]):
                return False
            continue
        if key == "recipient_email":
            email = str(badge.get("recipient_email") or "")
            if case_sensitive:
                if email not in values:
                    return False
            elif email.lower() not in {v.lower() for v in values}:
                return False
        elif key == "state":
            if str(badge.get("state")) not in values:
                return False
        elif key == "public":
            wanted = {v.strip().lower() == "true" for v in values}
            if bool(badge.get("public")) not in wanted:
                return False
    return True


def _address(badge: dict[str, Any]) -> str:
    return str(badge.get("recipient_email") or "").strip().lower()


def _by_address(badges: list[dict[str, Any]], *, descending: bool) -> list[dict[str, Any]]:
    """Badges by recipient address (stripped, lower-cased, code point order), addressless last.

    Python's sort is stable, also with `reverse=True`: badges of one address keep the
    organization's order in both directions. Badges without an address come last in both
    directions too [INFERRED]: a database would put NULLs at one end; credlyctl does not
    depend on where, since it checks every page's order and stops trusting the sort otherwise.
    """
    keyed = [(_address(b), b) for b in badges]
    with_address = [pair for pair in keyed if pair[0]]
    with_address.sort(key=lambda pair: pair[0], reverse=descending)
    return [b for _, b in with_address] + [b for address, b in keyed if not address]


def parse_sort(raw: str) -> str | None:
    """`recipient_email` or `-recipient_email` when that is the first `|`-joined key, else None.

    [INFERRED] Only the first key counts: a second key could only break ties, and the
    simulator keeps ties in the organization's order. A first key other than SORT_KEY leaves
    the listing unsorted (ignored), as Credly is assumed to drop what it does not know.
    """
    first = raw.split("|", 1)[0].strip()
    return first if first.removeprefix("-") == SORT_KEY else None


def parse_filter(raw: str | None) -> dict[str, list[str]]:
    """`key::value|key::a,b` -> {key: [values]}; unknown keys are dropped (Credly ignores them).

    The day filters (DAY_FILTERS) are kept; the route decides what the switch makes of them.
    """
    filters: dict[str, list[str]] = {}
    for part in (raw or "").split("|"):
        key, sep, value = part.partition("::")
        key = key.strip()
        if not sep or key not in {"recipient_email", "state", "public", *DAY_FILTERS}:
            continue
        filters[key] = [v.strip() for v in value.split(",") if v.strip()]
    return filters


def _message(status: int, message: str) -> SimResponse:
    # [INFERRED] Credly's error body is undocumented; this envelope-like shape is a guess.
    return SimResponse.json(status, {"data": {"message": message}, "metadata": {}})


class CredlyWebService:
    """The web host: only what a client-credentials client touches."""

    name = "credly-web"

    def __init__(self, store: CredlyStore) -> None:
        self.store = store

    def handle(self, request: SimRequest) -> SimResponse:
        path = request.path.rstrip("/") or "/"
        if path == "/" and request.method == "GET":
            return SimResponse(
                200,
                b"<html><body>Credly (simulated)</body></html>",
                {"Content-Type": "text/html; charset=utf-8"},
            )
        if path != "/oauth/token":
            return SimResponse(404, b"Not Found", {"Content-Type": "text/plain"})
        if request.method != "POST":
            return SimResponse(404, b"Not Found", {"Content-Type": "text/plain"})
        return self._token(request)

    def _token(self, request: SimRequest) -> SimResponse:
        params = _token_params(request)
        grant = params.get("grant_type", "")
        if not grant:
            return _oauth_error(400, "invalid_request", "Missing required parameter: grant_type.")
        if grant != "client_credentials":
            return _oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            )
        client = self.store.client(params.get("client_id", ""))
        # Same answer for an unknown client and a wrong secret, as Doorkeeper gives.
        if client is None or not secrets.compare_digest(
            str(client.get("client_secret", "")).encode(), params.get("client_secret", "").encode()
        ):
            return _oauth_error(
                401,
                "invalid_client",
                _INVALID_CLIENT,
                {"WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_client"'},
            )
        allowed = frozenset(str(s) for s in client.get("scopes", []))
        requested = frozenset(params.get("scope", "").split())
        if requested and not requested <= allowed:
            if self.store.switches.get("scope_error") == "token":
                return _oauth_error(
                    400,
                    "invalid_scope",
                    "The requested scope is invalid, unknown, or malformed.",
                )
            requested = requested & allowed
        granted = requested or allowed
        token, lifetime = self.store.issue_token(client, granted)
        return SimResponse.json(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": lifetime,
                "scope": " ".join(sorted(granted)),
                "created_at": int(self.store.clock()),
            },
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )


def _token_params(request: SimRequest) -> dict[str, str]:
    content_type = (request.header("content-type") or "").lower()
    params: dict[str, str] = {}
    if "json" in content_type:
        try:
            document = request.json()
        except ValueError:
            document = None
        if isinstance(document, dict):
            params = {str(k): str(v) for k, v in document.items() if v is not None}
    else:
        params = request.form()
    # [INFERRED] Doorkeeper also takes the client id and secret from HTTP Basic.
    header = request.header("authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic" and "client_id" not in params:
        try:
            user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
            params["client_id"], params["client_secret"] = user, password
        except (ValueError, UnicodeDecodeError):
            pass
    return params


def _oauth_error(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> SimResponse:
    return SimResponse.json(status, {"error": error, "error_description": description}, headers)


class CredlyApiService:
    """The read side of Credly's API. Only GET exists here, so tests can prove no writes."""

    name = "credly-api"

    def __init__(self, store: CredlyStore) -> None:
        self.store = store

    def handle(self, request: SimRequest) -> SimResponse:
        parts = [p for p in request.path.split("/") if p]
        if not parts or parts[0] != "v1":
            return _message(404, "Not found")
        if request.method != "GET":
            return SimResponse.json(
                405, {"data": {"message": "Method not allowed"}, "metadata": {}}, {"Allow": "GET"}
            )
        credential = self.store.credential(request)
        if credential is None:
            return _message(401, "You must be authenticated to access this resource.")
        rest = parts[1:]
        if rest == ["organizations"]:
            return self._organizations(credential)
        if len(rest) >= 2 and rest[0] == "organizations":
            org_id = rest[1].lower()
            denied = self._org_access(credential, org_id)
            if denied is not None:
                return denied
            if len(rest) == 2:
                return SimResponse.json(
                    200, {"data": self._public_org(org_id, request.base_url), "metadata": {}}
                )
            if (
                rest[2] == "badges"
                and credential.scopes is not None
                and (BADGE_READ_SCOPE not in credential.scopes)
            ):
                return _message(403, "The access token does not grant the issued_badges scope.")
            if rest[2:] == ["badges"]:
                return self._badges(org_id, request)
            if len(rest) == 4 and rest[2] == "badges":
                return self._one_badge(org_id, rest[3])
        return _message(404, "Not found")

    def _org_access(self, credential: Credential, org_id: str) -> SimResponse | None:
        if self.store.organization(org_id) is None:
            return _message(404, "Organization not found")
        if org_id not in credential.organizations:
            status = int(self.store.switches.get("foreign_org_status"))
            if status == 404:
                return _message(404, "Organization not found")
            return _message(403, "You are not authorized to access this organization.")
        return None

    def _public_org(self, org_id: str, base_url: str) -> dict[str, Any]:
        org = self.store.organization(org_id) or {}
        org.setdefault("url", f"{base_url}/v1/organizations/{org['id']}")
        return org

    def _organizations(self, credential: Credential) -> SimResponse:
        visible = [
            self.store.organization(org_id)
            for org_id in self.store.organization_ids()
            if org_id in credential.organizations
        ]
        data = [org for org in visible if org is not None]
        return SimResponse.json(
            200,
            {
                "data": data,
                "metadata": {
                    "count": len(data),
                    "current_page": 1,
                    "total_count": len(data),
                    "total_pages": 1,
                    "per": PER_PAGE,
                    "previous_page_url": None,
                    "next_page_url": None,
                },
            },
        )

    def _present(self, badge: dict[str, Any]) -> dict[str, Any]:
        override = self.store.faults.get("unknown_badge_states").get(badge.get("id"))
        return {**badge, "state": override} if override else badge

    def _one_badge(self, org_id: str, badge_id: str) -> SimResponse:
        badge = self.store.badge(badge_id, org_id)
        if badge is None:
            return _message(404, "Badge not found")
        return SimResponse.json(200, {"data": self._present(badge), "metadata": {}})

    def _badges(self, org_id: str, request: SimRequest) -> SimResponse:
        raw_filter = request.first("filter")
        filters = parse_filter(raw_filter)
        day_keys = [key for key in DAY_FILTERS if key in filters]
        if day_keys:
            # [INFERRED] switch credly_updated_at_filter (docs/fidelity.md C-BADGE-11).
            mode = self.store.switches.get("credly_updated_at_filter")
            if mode == "rejected":
                return _message(400, f"Invalid filter: {day_keys[0]} is not a known filter")
            if mode == "ignored":
                filters = {k: v for k, v in filters.items() if k not in DAY_FILTERS}
            else:
                error = day_filter_error(filters)
                if error is not None:
                    return _message(400, error)
        raw_sort = request.first("sort")
        sort = None
        if raw_sort is not None:
            # [INFERRED] switch credly_badge_sort (docs/fidelity.md C-BADGE-12).
            mode = self.store.switches.get("credly_badge_sort")
            if mode == "rejected":
                shown = raw_sort.split("|", 1)[0].strip().removeprefix("-")[:40]
                return _message(400, f"Invalid sort: {shown} is not a known sort key")
            if mode == "honoured":
                sort = parse_sort(raw_sort)
        matched = self.store.listing(org_id, filters, sort)
        try:
            page = max(1, int(request.first("page") or "1"))
        except ValueError:
            page = 1  # [INFERRED] Rails paginators treat a bad page as the first one
        total = len(matched)
        total_pages = math.ceil(total / PER_PAGE)
        chunk = matched[(page - 1) * PER_PAGE : page * PER_PAGE]

        def page_url(number: int) -> str:
            query: dict[str, str] = {}
            if raw_filter is not None:
                query["filter"] = raw_filter
            if raw_sort is not None:
                query["sort"] = raw_sort
            query["page"] = str(number)
            return f"{request.base_url}/v1/organizations/{org_id}/badges?{urlencode(query)}"

        return SimResponse.json(
            200,
            {
                "data": [self._present(b) for b in chunk],
                "metadata": {
                    "count": len(chunk),
                    "current_page": page,
                    "total_count": total,
                    "total_pages": total_pages,
                    "per": PER_PAGE,
                    "previous_page_url": page_url(page - 1) if page > 1 else None,
                    "next_page_url": page_url(page + 1) if page < total_pages else None,
                },
            },
        )
