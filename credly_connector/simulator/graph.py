"""The simulated Microsoft Graph v1.0 (issue 3; behaviour from microsoft-graph.md).

`GraphService.handle` authenticates every call, routes it to users, external connections,
people admin settings or applications, and renders failures in Graph's error shape. `$batch`
runs each entry back through the same router with the outer request's token. Control methods
(`items`, `set_ingestion_limit`, ...) let tests and `credlyctl demo` inspect and steer it.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from credly_connector.simulator.core import SimRequest, SimResponse, TokenStore
from credly_connector.simulator.graph_common import (
    USERS_READ,
    Caller,
    GraphError,
    authenticate,
    error_response,
)
from credly_connector.simulator.graph_external import ExternalApi
from credly_connector.simulator.graph_people import PeopleApi
from credly_connector.simulator.graph_profile import profile_view
from credly_connector.simulator.graph_users import DirectoryLike, UsersApi

MAX_BATCH_REQUESTS = 20
_CONNECTION = r"/external/connections/(?P<conn>[^/]+)"
_Handler = Callable[[SimRequest, Caller, dict[str, str]], SimResponse]


def _key(value: str) -> str:
    """An OData key literal (`'o''neil'`) as plain text."""
    return value.replace("''", "'")


def _with_request_ids(request: SimRequest, response: SimResponse) -> SimResponse:
    """Graph stamps every answer with request-id and echoes client-request-id."""
    request_id = response.headers.get("request-id") or str(uuid.uuid4())
    response.headers["request-id"] = request_id
    response.headers["client-request-id"] = request.header("client-request-id") or request_id
    return response


class GraphService:
    name = "graph"

    def __init__(
        self,
        directory: DirectoryLike,
        tokens: TokenStore,
        graph_scenario: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        scenario = graph_scenario or {}
        self.directory = directory
        self.tokens = tokens
        self.clock = clock
        self.users = UsersApi(directory, clock, scenario)
        self.external = ExternalApi(scenario, clock)
        self.people = PeopleApi(scenario, directory)
        # [INFERRED] Graph does not promise an order for $batch answers; "reversed" tests that.
        self.batch_order = str(scenario.get("batch_response_order", "request"))
        self._routes = self._build_routes()

    # -- control methods -----------------------------------------------------------------
    def items(self, connection_id: str) -> dict[str, dict[str, Any]]:
        with self.external.lock:
            connection = self.external.connections.get(connection_id)
            return copy.deepcopy(connection.items) if connection else {}

    def connections(self) -> list[dict[str, Any]]:
        self.external.settle()
        with self.external.lock:
            shaped = []
            for connection in self.external.connections.values():
                document = connection.to_graph("")
                document.pop("@odata.context")
                document["schema"] = copy.deepcopy(connection.schema)
                document["owner_app_id"] = connection.owner_app_id
                shaped.append(document)
            return shaped

    def profile_sources(self) -> list[dict[str, Any]]:
        return self.people.profile_sources()

    def profile_property_settings(self) -> list[dict[str, Any]]:
        return self.people.profile_property_settings()

    def invalid_values(self) -> list[dict[str, Any]]:
        with self.external.lock:
            return copy.deepcopy(self.external.invalid)

    def profile_view(self, id_or_upn: str) -> dict[str, Any]:
        """What the user's profile would show from people connectors (see graph_profile)."""
        return profile_view(self.directory, self.external, self.people, id_or_upn)

    def set_ingestion_limit(self, per_second: float | None) -> None:
        self.external.set_ingestion_limit(per_second)

    def set_concurrency_limit(self, operations: int | None) -> None:
        self.external.operations.limit = operations

    def throttled_operations(self) -> list[dict[str, Any]]:
        """Every item operation answered 429, with `reason` "concurrency" or "rate"."""
        with self.external.lock:
            return copy.deepcopy(self.external.throttled)

    def set_schema_delay(self, seconds: float) -> None:
        with self.external.lock:
            self.external.schema_delay = float(seconds)

    def set_evolvable_enums(self, enforce: bool) -> None:
        """Enforce Graph's evolvable-enum rule (default) or answer leniently (older model)."""
        with self.external.lock:
            self.external.enforce_evolvable_enums = bool(enforce)

    def set_connection_state(self, connection_id: str, state: str | None) -> None:
        """Force a connection's state (e.g. limitExceeded); None returns to the computed one."""
        self.external.set_connection_state(connection_id, state)

    def expire_delta_tokens(self) -> None:
        self.users.expire_delta_tokens()

    def served_routes(self) -> dict[str, frozenset[str]]:
        """Each path pattern (below /v1.0) with its methods; tests check them against the CSDL."""
        return {pattern.pattern: frozenset(handlers) for pattern, handlers in self._routes}

    # -- entry point ---------------------------------------------------------------------
    def handle(self, request: SimRequest) -> SimResponse:
        try:
            response = self._dispatch(request, allow_batch=True)
        except GraphError as error:
            response = error_response(request, error)
        finally:
            self.external.operations.answered(request.serial)
        return _with_request_ids(request, response)

    def _dispatch(self, request: SimRequest, allow_batch: bool) -> SimResponse:
        path = request.path
        if not path.startswith("/v1.0/"):
            raise GraphError(
                400, "BadRequest", f"Invalid version: use /v1.0 (the path was '{path}')."
            )
        relative = path[len("/v1.0") :].rstrip("/") or "/"
        caller = authenticate(request, self.tokens, getattr(self.directory, "tenant_id", None))
        self.external.settle()
        if relative == "/$batch":
            if not allow_batch:
                raise GraphError(400, "BadRequest", "A batch cannot contain another batch.")
            if request.method != "POST":
                raise GraphError(405, "notAllowed", "Use POST for $batch.")
            return self._batch(request)
        for pattern, handlers in self._routes:
            match = pattern.fullmatch(relative)
            if match is None:
                continue
            handler = handlers.get(request.method)
            if handler is None:
                raise GraphError(
                    405,
                    "Request_BadRequest" if relative.startswith("/users") else "notAllowed",
                    f"The method {request.method} is not allowed on this resource.",
                )
            params = {k: v for k, v in match.groupdict().items() if v is not None}
            return handler(request, caller, params)
        raise GraphError(
            400,
            "BadRequest",
            f"Resource not found for the segment '{relative.strip('/').split('/')[-1]}'.",
        )

    # -- routing table -------------------------------------------------------------------
    def _build_routes(self) -> list[tuple[re.Pattern[str], dict[str, _Handler]]]:
        users, ext, people = self.users, self.external, self.people

        def users_call(call: Callable[[], SimResponse], caller: Caller) -> SimResponse:
            caller.require(USERS_READ)
            return call()

        table: list[tuple[str, dict[str, _Handler]]] = [
            ("/users", {"GET": lambda r, c, p: users_call(lambda: users.list_users(r), c)}),
            (
                r"/users/delta(?:\(\))?",
                {"GET": lambda r, c, p: users_call(lambda: users.delta(r), c)},
            ),
            (
                r"/users/(?P<user>[^/]+)",
                {"GET": lambda r, c, p: users_call(lambda: users.get(r, p["user"]), c)},
            ),
            (
                "/external/connections",
                {
                    "GET": lambda r, c, p: ext.list_connections(r, c),
                    "POST": lambda r, c, p: ext.create_connection(r, c),
                },
            ),
            (
                _CONNECTION,
                {
                    "GET": lambda r, c, p: ext.get_connection(r, c, p["conn"]),
                    "PATCH": lambda r, c, p: ext.update_connection(r, c, p["conn"]),
                    "DELETE": lambda r, c, p: ext.delete_connection(r, c, p["conn"]),
                },
            ),
            (
                _CONNECTION + "/schema",
                {
                    "GET": lambda r, c, p: ext.get_schema(r, c, p["conn"]),
                    "PATCH": lambda r, c, p: ext.patch_schema(r, c, p["conn"]),
                },
            ),
            (
                _CONNECTION + "/operations/(?P<op>[^/]+)",
                {"GET": lambda r, c, p: ext.get_operation(r, c, p["conn"], p["op"])},
            ),
            (
                _CONNECTION + "/items",
                {
                    "GET": lambda r, c, p: ext.list_items(r, c, p["conn"]),
                    "POST": lambda r, c, p: ext.list_items(r, c, p["conn"]),
                },
            ),
            (
                _CONNECTION + "/items/(?P<item>[^/]+)",
                {
                    "GET": lambda r, c, p: ext.get_item(r, c, p["conn"], p["item"]),
                    "PUT": lambda r, c, p: ext.put_item(r, c, p["conn"], p["item"]),
                    "DELETE": lambda r, c, p: ext.delete_item(r, c, p["conn"], p["item"]),
                },
            ),
            (
                "/admin/people/profileSources",
                {
                    "GET": lambda r, c, p: people.list_sources(r, c),
                    "POST": lambda r, c, p: people.create_source(r, c),
                },
            ),
            (
                r"/admin/people/profileSources\(sourceId='(?P<key>(?:[^']|'')*)'\)",
                {
                    "GET": lambda r, c, p: people.get_source(r, c, _key(p["key"]), True),
                    "DELETE": lambda r, c, p: people.delete_source(r, c, _key(p["key"]), True),
                },
            ),
            (
                r"/admin/people/profileSources/(?P<id>[^/]+)",
                {
                    "GET": lambda r, c, p: people.get_source(r, c, p["id"], False),
                    "DELETE": lambda r, c, p: people.delete_source(r, c, p["id"], False),
                },
            ),
            (
                "/admin/people/profilePropertySettings",
                {
                    "GET": lambda r, c, p: people.list_settings(r, c),
                    "POST": lambda r, c, p: people.create_setting(r, c),
                },
            ),
            (
                r"/admin/people/profilePropertySettings/(?P<id>[^/]+)",
                {
                    "GET": lambda r, c, p: people.get_setting(r, c, p["id"]),
                    "PATCH": lambda r, c, p: people.patch_setting(r, c, p["id"]),
                },
            ),
            (
                r"/applications\(appId='(?P<app>(?:[^']|'')*)'\)",
                {"GET": lambda r, c, p: people.get_application(r, c, _key(p["app"]))},
            ),
        ]
        return [(re.compile(pattern), handlers) for pattern, handlers in table]

    # -- $batch --------------------------------------------------------------------------
    def _batch(self, request: SimRequest) -> SimResponse:
        try:
            document = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise GraphError(400, "BadRequest", "Invalid batch payload format.") from exc
        entries = document.get("requests") if isinstance(document, dict) else None
        if not isinstance(entries, list) or not entries:
            raise GraphError(400, "BadRequest", "Invalid batch payload format.")
        if len(entries) > MAX_BATCH_REQUESTS:
            raise GraphError(
                400,
                "BadRequest",
                f"Number of batch requests exceeds the limit of {MAX_BATCH_REQUESTS}.",
            )
        ids: dict[str, dict[str, Any]] = {}
        for entry in entries:
            self._check_entry(entry)
            key = str(entry["id"]).lower()
            if key in ids:
                raise GraphError(
                    400, "BadRequest", f"Batch request id '{entry['id']}' is not unique."
                )
            ids[key] = entry
        for entry in entries:
            for dependency in entry.get("dependsOn") or []:
                if str(dependency).lower() not in ids:
                    raise GraphError(
                        400, "BadRequest", f"dependsOn names an unknown request '{dependency}'."
                    )
        results: dict[str, dict[str, Any]] = {}
        pending = list(entries)
        while pending:
            ready = [
                e
                for e in pending
                if all(str(d).lower() in results for d in e.get("dependsOn") or [])
            ]
            if not ready:
                raise GraphError(400, "BadRequest", "dependsOn forms a cycle.")
            for entry in ready:
                pending.remove(entry)
                results[str(entry["id"]).lower()] = self._run_entry(request, entry, results)
        answers = [results[str(entry["id"]).lower()] for entry in entries]
        if self.batch_order == "reversed":
            answers.reverse()
        return SimResponse.json(200, {"responses": answers})

    @staticmethod
    def _check_entry(entry: Any) -> None:
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) and entry.get(k) for k in ("id", "method", "url")
        ):
            raise GraphError(
                400, "BadRequest", "Every batch request needs an id, a method and a url."
            )
        headers = entry.get("headers") or {}
        if not isinstance(headers, dict):
            raise GraphError(400, "BadRequest", "Batch request headers must be an object.")
        if "body" in entry and not any(k.lower() == "content-type" for k in headers):
            raise GraphError(
                400,
                "BadRequest",
                f"Batch request '{entry['id']}' has a body but no Content-Type header.",
            )
        depends = entry.get("dependsOn")
        if depends is not None and not isinstance(depends, list):
            raise GraphError(400, "BadRequest", "dependsOn must be a list of request ids.")

    def _run_entry(
        self, outer: SimRequest, entry: dict[str, Any], results: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        for dependency in entry.get("dependsOn") or []:
            status = int(results[str(dependency).lower()]["status"])
            if not 200 <= status < 300:
                failed = GraphError(424, "failedDependency", "A request it depends on failed.")
                return self._entry_answer(entry, error_response(outer, failed))
        url = entry["url"]
        if "://" in url or not url.startswith("/"):
            invalid = GraphError(400, "BadRequest", "Batch request urls must be relative.")
            return self._entry_answer(entry, error_response(outer, invalid))
        parts = urlsplit(url)
        headers = {str(k).lower(): str(v) for k, v in (entry.get("headers") or {}).items()}
        authorization = outer.header("authorization")
        if authorization:
            headers["authorization"] = authorization
        body = entry.get("body")
        if body is None:
            raw = b""
        elif isinstance(body, str):
            raw = body.encode("utf-8")
        else:
            raw = json.dumps(body).encode("utf-8")
        inner = SimRequest(
            method=entry["method"].upper(),
            path="/v1.0" + unquote(parts.path),
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            body=raw,
            base_url=outer.base_url,
            received=outer.received,
            serial=outer.serial,
        )
        try:
            response = self._dispatch(inner, allow_batch=False)
        except GraphError as error:
            response = error_response(inner, error)
        return self._entry_answer(entry, _with_request_ids(inner, response))

    @staticmethod
    def _entry_answer(entry: dict[str, Any], response: SimResponse) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id": entry["id"],
            "status": response.status,
            "headers": dict(response.headers),
        }
        if response.body:
            try:
                answer["body"] = json.loads(response.body)
            except json.JSONDecodeError:
                answer["body"] = response.body.decode("utf-8", "replace")
        return answer
