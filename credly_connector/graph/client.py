"""Microsoft Graph v1.0 client: users, external connections, items, people admin settings.

Every path template and property name sent is listed in PATH_TEMPLATES / SENT_PROPERTIES, and
tests check them against Graph's own v1.0 metadata (CSDL).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import httpx

from credly_connector.config.resolved import InstanceSettings
from credly_connector.graph.auth import EntraTokenProvider
from credly_connector.graph.batch import (
    MAX_BATCH,
    BatchRequest,
    BatchResponse,
    build_batch_body,
    match_responses,
)
from credly_connector.graph.errors import (
    DeltaExpiredError,
    GraphError,
    GraphPermissionError,
    GraphRefused,
    GraphUnavailable,
)
from credly_connector.graph.models import PERSON_SELECT, USER_SELECT, DirectoryUser
from credly_connector.net.failures import describe_transport_error
from credly_connector.net.metered import MeteredClient
from credly_connector.net.retry import RetryPolicy, backoff_delay
from credly_connector.net.shapes import body_shape, safe_code
from credly_connector.net.transport import ensure_same_origin
from credly_connector.secrets import scrub

Sleep = Callable[[float], None]

# Every path template this client calls (relative to /v1.0); checked against the CSDL.
PATH_TEMPLATES = (
    "/users",
    "/users/{id}",
    "/users/delta",
    "/external/connections",
    "/external/connections/{id}",
    "/external/connections/{id}/schema",
    "/external/connections/{id}/operations/{id}",
    "/external/connections/{id}/items/{id}",
    "/admin/people/profileSources",
    "/admin/people/profileSources(sourceId='{id}')",
    "/admin/people/profilePropertySettings",
    "/admin/people/profilePropertySettings/{id}",
    "/applications(appId='{id}')",
)
# Property names this client puts in request bodies, per Graph type (namespace-less names).
SENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "externalConnectors.externalConnection": ("id", "name", "description", "contentCategory"),
    "externalConnectors.schema": ("baseType", "properties"),
    "externalConnectors.property": ("name", "type", "labels"),
    "externalConnectors.externalItem": ("acl", "properties"),
    "externalConnectors.acl": ("type", "value", "accessType"),
    "profileSource": ("sourceId", "displayName", "webUrl", "kind"),
    "profilePropertySetting": ("prioritizedSourceUrls",),
    "user": (*PERSON_SELECT.split(","), "assignedPlans"),
}

PERM_USERS = "User.Read.All"
PERM_CONNECTIONS = "ExternalConnection.ReadWrite.OwnedBy"
PERM_ITEMS = "ExternalItem.ReadWrite.OwnedBy"
PERM_PEOPLE = "PeopleSettings.ReadWrite.All"
PERM_APPLICATIONS = "Application.Read.All"

FIND_CHUNK = 5  # addresses per $filter: 1 `in` + 2 x 5 `eq` clauses stays within Graph limits
MALFORMED_ATTEMPTS = 3
DELTA_EXPIRED_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
# The person labels of our schema are evolvable enum members in Graph v1.0 (declared after
# `unknownFutureValue`): Graph only accepts and returns them when the request opts in
# (externalConnectors property resource; microsoft/api-guidelines evolvable-enums.md).
INCLUDE_UNKNOWN_ENUMS = {"Prefer": "include-unknown-enum-members"}
REGISTER_SCHEMA_PREFER = {"Prefer": "respond-async, include-unknown-enum-members"}


@dataclass(frozen=True)
class DeltaResult:
    users: list[DirectoryUser]
    removed: list[tuple[str, str]]  # (object id, reason: "changed" | "deleted")
    delta_link: str


class GraphClient(MeteredClient):
    def __init__(
        self,
        settings: InstanceSettings,
        http: httpx.Client,
        tokens: EntraTokenProvider,
        *,
        sleep: Sleep = time.sleep,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(http, sleep=sleep, retry_policy=retry_policy)
        self.settings = settings
        self.tokens = tokens
        self.base = settings.graph_v1

    # ---- users ------------------------------------------------------------------------

    def iter_users(self, select: str = USER_SELECT) -> Iterator[DirectoryUser]:
        return self._paged_users({"$select": select, "$top": "999"})

    def iter_users_with_plans(self) -> Iterator[tuple[DirectoryUser, list[dict[str, Any]]]]:
        """Every user with their `assignedPlans` in one listing (coverage's mailbox rule)."""
        url: str | None = "/users"
        params: dict[str, str] | None = {"$select": USER_SELECT + ",assignedPlans", "$top": "999"}
        while url:
            document = self._json("GET", url, kind="graph.users", perm=PERM_USERS, params=params)
            params = None  # the nextLink carries the query
            for item in _value(document):
                plans = item.get("assignedPlans")
                listed = (
                    [p for p in plans if isinstance(p, dict)] if isinstance(plans, list) else []
                )
                yield DirectoryUser.from_graph(item), listed
            url = _link(document, "@odata.nextLink")

    def users_delta(self, delta_link: str | None) -> DeltaResult:
        url: str | None = delta_link or "/users/delta"
        params: dict[str, str] | None = None if delta_link else {"$select": USER_SELECT}
        users: list[DirectoryUser] = []
        removed: list[tuple[str, str]] = []
        seen: set[str] = set()
        while url:
            try:
                document = self._json(
                    "GET", url, kind="graph.users.delta", perm=PERM_USERS, params=params
                )
            except GraphError as exc:
                if isinstance(exc, GraphPermissionError | GraphUnavailable):
                    raise
                if exc.status == 410 or _is_delta_expired(exc.code):
                    raise DeltaExpiredError(
                        "the saved directory delta link has expired",
                        "credlyctl falls back to a full listing of users.",
                        status=exc.status,
                        code=exc.code,
                        request_id=exc.request_id,
                        error_id="graph.delta_expired",
                    ) from None
                raise
            params = None
            for item in _value(document):
                marker = item.get("@removed")
                if isinstance(marker, dict):
                    reason = marker.get("reason")
                    removed.append((str(item.get("id") or ""), str(reason or "deleted")))
                else:
                    users.append(DirectoryUser.from_graph(item))
            next_link = _next_page(document, seen, "/users/delta")
            if next_link:
                url = next_link
                continue
            final = _link(document, "@odata.deltaLink")
            if not final:
                raise GraphUnavailable(
                    "malformed",
                    "the last page of /users/delta carried no deltaLink",
                    "Retry later; a full crawl will be used meanwhile.",
                )
            # Checked before it is stored: a foreign link would break every later crawl.
            ensure_same_origin(final, self.base, what="Graph delta link")
            return DeltaResult(users=users, removed=removed, delta_link=final)
        raise GraphUnavailable("malformed", "empty delta answer")  # pragma: no cover

    def get_user(self, id_or_upn: str) -> DirectoryUser | None:
        document = self._user_document(id_or_upn, USER_SELECT)
        return DirectoryUser.from_graph(document) if document is not None else None

    def get_user_plans(self, id_or_upn: str) -> list[dict[str, Any]] | None:
        """The user's `assignedPlans` (service plans such as Exchange Online), None if no user.

        Used by the diagnostics to tell whether a licensed user has a mailbox.
        """
        document = self._user_document(id_or_upn, "id,assignedPlans")
        if document is None:
            return None
        plans = document.get("assignedPlans")
        return [p for p in plans if isinstance(p, dict)] if isinstance(plans, list) else []

    def _user_document(self, id_or_upn: str, select: str) -> dict[str, Any] | None:
        return self._get_or_none(
            f"/users/{_segment(id_or_upn)}",
            kind="graph.users",
            perm=PERM_USERS,
            params={"$select": select},
        )

    def find_users_by_addresses(self, addresses: Sequence[str]) -> list[DirectoryUser]:
        """Users whose UPN, mail or any proxy address equals one of `addresses` (any case).

        Filters are chunked and, when there are several chunks, sent 20 at a time in $batch,
        so a lookup never costs one request per address.
        """
        unique = sorted({a.strip().lower() for a in addresses if a and a.strip()})
        if not unique:
            return []
        filters = [
            _address_filter(unique[i : i + FIND_CHUNK]) for i in range(0, len(unique), FIND_CHUNK)
        ]
        found: dict[str, DirectoryUser] = {}
        if len(filters) == 1:
            for user in self._filtered_users(filters[0]):
                found[user.id] = user
            return list(found.values())
        for start in range(0, len(filters), MAX_BATCH):
            chunk = filters[start : start + MAX_BATCH]
            requests = [
                BatchRequest(
                    id=str(n),
                    method="GET",
                    url="/users?" + _query({"$filter": f, "$select": PERSON_SELECT, "$top": "999"}),
                )
                for n, f in enumerate(chunk)
            ]
            for request, response, text in zip(requests, self.batch(requests), chunk, strict=True):
                body = response.body
                if response.ok and isinstance(body, dict) and not body.get("@odata.nextLink"):
                    users = [DirectoryUser.from_graph(u) for u in _value(body)]
                else:
                    # Throttled or failed inside the batch: read this chunk on its own, with
                    # the normal retry and error handling.
                    del request
                    users = list(self._filtered_users(text))
                for user in users:
                    found[user.id] = user
        return list(found.values())

    def search_users_by_name(self, name: str, *, limit: int = 25) -> list[DirectoryUser]:
        text = name.strip()
        if not text:
            return []
        params = {
            "$filter": f"startswith(displayName,{_literal(text)})",
            "$select": USER_SELECT,
            "$top": str(limit),
        }
        document = self._json("GET", "/users", kind="graph.users", perm=PERM_USERS, params=params)
        return [DirectoryUser.from_graph(u) for u in _value(document)]

    def _filtered_users(self, odata_filter: str) -> Iterator[DirectoryUser]:
        # Address lookups serve `sync --user` and diagnosis: a few users, so the fields that
        # tell a person's other addresses (givenName, surname, otherMails) cost nothing.
        return self._paged_users({"$filter": odata_filter, "$select": PERSON_SELECT, "$top": "999"})

    def _paged_users(self, query: dict[str, str]) -> Iterator[DirectoryUser]:
        url: str | None = "/users"
        params: dict[str, str] | None = query
        seen: set[str] = set()
        while url:
            document = self._json("GET", url, kind="graph.users", perm=PERM_USERS, params=params)
            params = None  # the nextLink carries the query
            for item in _value(document):
                yield DirectoryUser.from_graph(item)
            url = _next_page(document, seen, "/users")

    # ---- connections ------------------------------------------------------------------

    def list_connections(self) -> list[dict[str, Any]]:
        return self._list(
            "/external/connections",
            kind="graph.connections",
            perm=PERM_CONNECTIONS,
            headers=INCLUDE_UNKNOWN_ENUMS,
        )

    def get_connection(self, connection_id: str) -> dict[str, Any] | None:
        return self._get_or_none(
            f"/external/connections/{_segment(connection_id)}",
            kind="graph.connections",
            perm=PERM_CONNECTIONS,
            headers=INCLUDE_UNKNOWN_ENUMS,
        )

    def create_connection(
        self,
        connection_id: str,
        name: str,
        description: str,
        content_category: str = "people",
    ) -> dict[str, Any]:
        body = {
            "id": connection_id,
            "name": name,
            "description": description,
            "contentCategory": content_category,
        }
        return self._create(
            "/external/connections",
            body,
            kind="graph.connections",
            perm=PERM_CONNECTIONS,
            read_back=lambda: self.get_connection(connection_id),
        )

    def delete_connection(self, connection_id: str) -> bool:
        return self._delete(
            f"/external/connections/{_segment(connection_id)}",
            kind="graph.connections",
            perm=PERM_CONNECTIONS,
        )

    def get_schema(self, connection_id: str) -> dict[str, Any] | None:
        return self._get_or_none(
            f"/external/connections/{_segment(connection_id)}/schema",
            kind="graph.schema",
            perm=PERM_CONNECTIONS,
            headers=INCLUDE_UNKNOWN_ENUMS,
        )

    def register_schema(self, connection_id: str, properties: list[dict[str, Any]]) -> str:
        """Start the asynchronous schema registration; returns the operation URL to poll."""
        response = self._request(
            "PATCH",
            f"/external/connections/{_segment(connection_id)}/schema",
            kind="graph.schema",
            perm=PERM_CONNECTIONS,
            body={"baseType": "microsoft.graph.externalItem", "properties": properties},
            headers=REGISTER_SCHEMA_PREFER,
        )
        location = response.headers.get("Location")
        if not location:
            raise GraphUnavailable(
                "malformed",
                f"Graph accepted the schema (HTTP {response.status_code}) but sent no "
                "operation Location to follow",
                "Read the connection back with `credlyctl status` in a few minutes.",
                status=response.status_code,
            )
        return str(httpx.URL(self.base + "/").join(location))

    def get_operation(self, url: str) -> dict[str, Any]:
        document = self._json("GET", url, kind="graph.operations", perm=PERM_CONNECTIONS)
        if document is None:  # pragma: no cover - allow_404 is off
            raise GraphUnavailable("malformed", "empty operation answer")
        return document

    # ---- items ------------------------------------------------------------------------

    def item_path(self, connection_id: str, item_id: str) -> str:
        return f"/external/connections/{_segment(connection_id)}/items/{_segment(item_id)}"

    def put_item(self, connection_id: str, item_id: str, body: Mapping[str, Any]) -> None:
        self._request(
            "PUT",
            self.item_path(connection_id, item_id),
            kind="graph.items",
            perm=PERM_ITEMS,
            body=dict(body),
        )

    def get_item(self, connection_id: str, item_id: str) -> dict[str, Any] | None:
        return self._get_or_none(
            self.item_path(connection_id, item_id), kind="graph.items", perm=PERM_ITEMS
        )

    def delete_item(self, connection_id: str, item_id: str) -> bool:
        return self._delete(
            self.item_path(connection_id, item_id), kind="graph.items", perm=PERM_ITEMS
        )

    def batch(self, requests: list[BatchRequest]) -> list[BatchResponse]:
        """One POST /$batch. Entries are not retried here: the caller decides per entry."""
        body = build_batch_body([_opted_in(r) for r in requests])
        document = self._json("POST", "/$batch", kind="graph.batch", perm=PERM_ITEMS, body=body)
        self.request_counts.add("graph.batch.entries", len(requests))
        return match_responses(requests, document)

    # ---- people admin -----------------------------------------------------------------

    def list_profile_sources(self) -> list[dict[str, Any]]:
        return self._list("/admin/people/profileSources", kind="graph.people", perm=PERM_PEOPLE)

    def get_profile_source(self, source_id: str) -> dict[str, Any] | None:
        return self._get_or_none(
            _profile_source_path(source_id), kind="graph.people", perm=PERM_PEOPLE
        )

    def create_profile_source(
        self, source_id: str, display_name: str, web_url: str, kind: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sourceId": source_id,
            "displayName": display_name,
            "webUrl": web_url,
        }
        if kind:
            body["kind"] = kind
        return self._create(
            "/admin/people/profileSources",
            body,
            kind="graph.people",
            perm=PERM_PEOPLE,
            read_back=lambda: self.get_profile_source(source_id),
        )

    def delete_profile_source(self, source_id: str) -> bool:
        return self._delete(_profile_source_path(source_id), kind="graph.people", perm=PERM_PEOPLE)

    def get_profile_property_settings(self) -> list[dict[str, Any]]:
        return self._list(
            "/admin/people/profilePropertySettings", kind="graph.people", perm=PERM_PEOPLE
        )

    def create_profile_property_setting(self, urls: list[str]) -> dict[str, Any]:
        """Create the tenant's default (nameless) setting; new tenants may have none.

        `POST /admin/people/profilePropertySettings` (Graph v1.0; Microsoft's precedence guide).
        """
        created = self._json(
            "POST",
            "/admin/people/profilePropertySettings",
            kind="graph.people",
            perm=PERM_PEOPLE,
            body={"prioritizedSourceUrls": list(urls)},
        )
        return created or {}

    def update_prioritized_sources(self, setting_id: str, urls: list[str]) -> None:
        self._request(
            "PATCH",
            f"/admin/people/profilePropertySettings/{_segment(setting_id)}",
            kind="graph.people",
            perm=PERM_PEOPLE,
            body={"prioritizedSourceUrls": list(urls)},
        )

    def profile_source_url(self, source_id: str) -> str:
        """The URL that names a profile source in prioritizedSourceUrls (people-data doc)."""
        return f"{self.base}{_profile_source_path(source_id)}"

    def get_application(self, app_id: str) -> dict[str, Any] | None:
        return self._get_or_none(
            f"/applications(appId={_literal(app_id)})",
            kind="graph.applications",
            perm=PERM_APPLICATIONS,
        )

    # ---- plumbing ---------------------------------------------------------------------

    def _list(
        self, path: str, *, kind: str, perm: str, headers: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        url: str | None = path
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            document = self._json("GET", url, kind=kind, perm=perm, headers=headers)
            found.extend(_value(document))
            url = _link(document, "@odata.nextLink")
        return found

    def _get_or_none(
        self,
        path: str,
        *,
        kind: str,
        perm: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        return self._json(
            "GET", path, kind=kind, perm=perm, params=params, headers=headers, allow_404=True
        )

    def _create(
        self,
        path: str,
        body: dict[str, Any],
        *,
        kind: str,
        perm: str,
        read_back: Callable[[], dict[str, Any] | None],
    ) -> dict[str, Any]:
        try:
            created = self._json("POST", path, kind=kind, perm=perm, body=body)
        except GraphError as exc:
            if exc.status != 409:
                raise
            # It exists already (maybe created by a call whose answer was lost): read it back.
            existing = read_back()
            if existing is None:
                raise
            return existing
        return created if created is not None else body

    def _delete(self, path: str, *, kind: str, perm: str) -> bool:
        response = self._request("DELETE", path, kind=kind, perm=perm, allow_404=True)
        return response.status_code != 404

    def _json(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        perm: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        allow_404: bool = False,
    ) -> dict[str, Any] | None:
        malformed = 0
        while True:
            response = self._request(
                method,
                path,
                kind=kind,
                perm=perm,
                params=params,
                body=body,
                headers=headers,
                allow_404=allow_404,
            )
            if response.status_code == 404 and allow_404:
                return None
            if response.status_code == 204 or not response.content:
                return {}
            try:
                document = json.loads(response.text)
            except ValueError:
                document = None
            if isinstance(document, dict):
                return document
            malformed += 1
            if malformed >= MALFORMED_ATTEMPTS or method not in ("GET", "PUT", "DELETE"):
                raise GraphUnavailable(
                    "malformed",
                    f"Graph answered with a body that is not a JSON object ({_path(path)})",
                    "Retry later; if it persists, report it with `credlyctl support-bundle`.",
                    status=response.status_code,
                    body_shape=body_shape(response.text),
                )
            self._sleep(backoff_delay(malformed - 1, self._retrier.policy))

    def _request(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        perm: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        allow_404: bool = False,
    ) -> httpx.Response:
        url = self._url(path)
        refreshed = False
        while True:
            token = self.tokens.get_token()
            merged = {"Authorization": f"Bearer {token}", **(headers or {})}
            response = self._metered(
                method, url, kind=kind, params=params, headers=merged, json=body
            )
            if response.status_code == 401 and not refreshed:
                # Expired or revoked early: one fresh token, one more try.
                refreshed = True
                self.tokens.force_refresh()
                continue
            if response.is_success or (response.status_code == 404 and allow_404):
                return response
            raise self._error(response, perm=perm, path=path)

    def _url(self, path: str) -> str:
        if path.startswith("https://") or path.startswith("http://"):
            return str(ensure_same_origin(path, self.base, what="Graph link"))
        return self.base + path

    def _unreachable(self, exc: httpx.TransportError, host: str) -> Exception:
        return GraphUnavailable(*describe_transport_error(exc, host, service="Microsoft Graph"))

    def _error(self, response: httpx.Response, *, perm: str, path: str) -> GraphError:
        status = response.status_code
        code, message, request_id = _graph_error_fields(response)
        shape = body_shape(response.text)
        common: dict[str, Any] = {
            "status": status,
            "code": code,
            "graph_message": message,
            "request_id": request_id,
            "body_shape": shape,
        }
        where = f"{response.request.method} {_path(path)}"
        said = f": {code}" + (f" ({message})" if message else "") if code else ""
        if status == 403 or (status == 401 and message and "roles claim" in message):
            return GraphPermissionError(
                f"Microsoft Graph refused {where} (HTTP {status}{said}); the app needs the "
                f"application permission {perm}",
                f"In Entra admin center > App registrations > the app > API permissions, add "
                f"Microsoft Graph application permission {perm} and grant admin consent.",
                permission=perm,
                **common,
            )
        if status == 401:
            return GraphRefused(
                f"Microsoft Graph rejected the access token for {where} (HTTP 401{said})",
                "The token may be for another cloud's Graph (check entra.cloud) or the clock may "
                "be wrong.",
                error_id="graph.unauthenticated",
                **common,
            )
        if status == 429:
            return GraphUnavailable(
                "throttled",
                f"Microsoft Graph kept throttling {where} (HTTP 429)",
                "Retry later or lower sync.max_write_rate.",
                **common,
            )
        if status >= 500:
            return GraphUnavailable(
                "server",
                f"Microsoft Graph failed on {where} (HTTP {status}{said}) after retries",
                "Retry later.",
                **common,
            )
        return GraphRefused(
            f"Microsoft Graph refused {where} (HTTP {status}{said})",
            "See the message above; `credlyctl diagnose` checks the connection.",
            **common,
        )


def _graph_error_fields(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    request_id = response.headers.get("request-id")
    try:
        document = json.loads(response.text)
    except ValueError:
        return None, None, request_id
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return None, None, request_id
    code = safe_code(error.get("code"))
    inner = error.get("innerError") or error.get("innererror")
    if isinstance(inner, dict):
        inner_code = safe_code(inner.get("code"))
        if code is None or _is_delta_expired(inner_code):
            code = inner_code or code
        rid = inner.get("request-id")
        if isinstance(rid, str) and rid:
            request_id = rid
    raw_message = error.get("message")
    message = scrub(raw_message)[:300] if isinstance(raw_message, str) and raw_message else None
    return code, message, request_id


def _opted_in(request: BatchRequest) -> BatchRequest:
    """A batched connection or schema request carries the evolvable-enum opt-in too."""
    path = request.url.split("?", 1)[0]
    reads_connection = path.startswith("/external/connections") and "/items/" not in path
    if not reads_connection or any(name.lower() == "prefer" for name in request.headers):
        return request
    return replace(request, headers={**request.headers, **INCLUDE_UNKNOWN_ENUMS})


def _is_delta_expired(code: str | None) -> bool:
    """Graph spells these codes in either case (Outlook answers `SyncStateNotFound`)."""
    return code is not None and code.lower() in DELTA_EXPIRED_CODES


def _value(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        return []
    value = document.get("value")
    if value is None:
        return []
    if not isinstance(value, list):
        raise GraphUnavailable("malformed", "a Graph list answer has a `value` that is not a list")
    return [item for item in value if isinstance(item, dict)]


def _link(document: Any, key: str) -> str | None:
    link = document.get(key) if isinstance(document, dict) else None
    return link if isinstance(link, str) and link else None


def _next_page(document: Any, seen: set[str], listing: str) -> str | None:
    """The page's nextLink; a link already followed (a loop) is a server fault, not the end.

    Stopping quietly would leave the listing short, and a short user list plans deletions.
    """
    link = _link(document, "@odata.nextLink")
    if link is not None:
        if link in seen:
            raise GraphUnavailable(
                "malformed",
                f"Graph's {listing} pages loop (a nextLink pointed back to a page already read)",
                "Retry later; if it persists, report it with `credlyctl support-bundle`.",
            )
        seen.add(link)
    return link


def _segment(value: str) -> str:
    # '@' stays readable in UPN keys; '#' (guest UPNs) and '/' must be escaped.
    return quote(value, safe="@")


def _literal(value: str) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _profile_source_path(source_id: str) -> str:
    return f"/admin/people/profileSources(sourceId={_literal(source_id)})"


def _address_filter(addresses: Sequence[str]) -> str:
    literals = ",".join(_literal(a) for a in addresses)
    clauses = [f"userPrincipalName in ({literals})"]
    clauses += [f"mail eq {_literal(a)}" for a in addresses]
    clauses += [f"proxyAddresses/any(x:x eq {_literal('smtp:' + a)})" for a in addresses]
    return " or ".join(clauses)


def _query(params: Mapping[str, str]) -> str:
    return "&".join(f"{k}={quote(v, safe=',()/:=@')}" for k, v in params.items())


def _path(path: str) -> str:
    """The path only: query strings hold email addresses."""
    return httpx.URL(path).path if "://" in path else path.split("?", 1)[0]
