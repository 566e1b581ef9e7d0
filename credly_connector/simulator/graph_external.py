"""`/external/connections`: connections, schema, operations and items (microsoft-graph.md §1, §2).

Schema registration is asynchronous like Graph's: PATCH answers 202 and an operation that stays
`inprogress` until the configured delay has passed on the service clock; only then does the
schema apply and the connection turn `ready`. State advances lazily, on the next call.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from credly_connector.simulator.core import SimRequest, SimResponse
from credly_connector.simulator.graph_common import (
    CONNECTIONS_READ,
    CONNECTIONS_WRITE,
    ITEMS_READ,
    ITEMS_WRITE,
    Caller,
    GraphError,
    Permission,
    bad_request,
    read_json_object,
)
from credly_connector.simulator.graph_enums import (
    CONTENT_CATEGORY_MEMBERS,
    FAIRFAX_LABEL_MEMBERS,
    LABEL_MEMBERS,
    PROPERTY_TYPE_MEMBERS,
    applied_headers,
    check_category_input,
    check_schema_input,
    known,
    mask_category,
    mask_schema,
)

CONTENT_CATEGORIES = known(CONTENT_CATEGORY_MEMBERS)
CONNECTION_STATES = frozenset({"draft", "ready", "obsolete", "limitExceeded"})
PROPERTY_TYPES = known(PROPERTY_TYPE_MEMBERS)
LABELS = known(LABEL_MEMBERS)
# The US Government clouds' v1.0 metadata (v1.0-Fairfax.csdl): no `contentCategory` on
# externalConnection, and a label enum that ends at iconUrl (no person labels).
US_GOVERNMENT_CLOUDS = frozenset({"usgov", "usgovdod"})
FAIRFAX_LABELS = known(FAIRFAX_LABEL_MEMBERS)
# Labels and types the people-data doc says are not supported yet.
PEOPLE_UNSUPPORTED_LABELS = frozenset(
    {
        "personManager",
        "personAssistants",
        "personColleagues",
        "personAlternateContacts",
        "personEmergencyContacts",
    }
)
PEOPLE_LABEL_TYPES = {
    "personAccount": "string",
    "personAwards": "stringCollection",
    "personCertifications": "stringCollection",
}
ACL_TYPES = frozenset({"user", "group", "everyone", "everyoneExceptGuests", "externalGroup"})
ACCESS_TYPES = frozenset({"grant", "deny"})
RESERVED_CONNECTION_IDS = frozenset(
    name.lower()
    for name in [
        "None",
        "Directory",
        "Exchange",
        "ExchangeArchive",
        "LinkedIn",
        "Mailbox",
        "OneDriveBusiness",
        "SharePoint",
        "Teams",
        "Yammer",
        "Connectors",
        "TaskFabric",
        "PowerBI",
        "Assistant",
        "TopicEngine",
        "MSFT_All_Connectors",
    ]
)
_ALNUM = re.compile(r"^[A-Za-z0-9]+$")
MAX_ITEM_BYTES = 4 * 1024 * 1024
_HINTS = {
    "string": ("String", "Edm.String"),
    "int64": ("Int64", "Edm.Int64"),
    "double": ("Double", "Edm.Double"),
    "dateTime": ("DateTimeOffset", "Edm.DateTimeOffset"),
    "boolean": ("Boolean", "Edm.Boolean"),
    "stringCollection": ("Collection(String)", "Collection(Edm.String)"),
    "int64Collection": ("Collection(Int64)", "Collection(Edm.Int64)"),
    "doubleCollection": ("Collection(Double)", "Collection(Edm.Double)"),
    "dateTimeCollection": ("Collection(DateTimeOffset)", "Collection(Edm.DateTimeOffset)"),
}


@dataclass
class Operation:
    id: str
    created: float
    schema: dict[str, Any]
    problem: str | None  # why the schema will fail, decided when it was submitted
    status: str = "inprogress"


@dataclass
class Connection:
    id: str
    name: str
    description: str | None
    content_category: str
    owner_app_id: str | None
    authorized_app_ids: list[str] = field(default_factory=list)
    schema: dict[str, Any] | None = None
    forced_state: str | None = None
    operations: dict[str, Operation] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def state(self) -> str:
        if self.forced_state:
            return self.forced_state
        return "ready" if self.schema is not None else "draft"

    def to_graph(self, base_url: str) -> dict[str, Any]:
        return {
            "@odata.context": f"{base_url}/v1.0/$metadata#external/connections/$entity",
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "contentCategory": self.content_category,
            "state": self.state,
            "configuration": {"authorizedAppIds": list(self.authorized_app_ids)},
        }

    def property_types(self) -> dict[str, dict[str, Any]]:
        return {prop["name"]: prop for prop in (self.schema or {}).get("properties", [])}


class TokenBucket:
    """Ingestion throttling per connection; `rate` items/s refill, burst of one second."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.clock = clock
        self.level = max(1.0, rate)
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.level = min(max(1.0, self.rate), self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level >= 1.0:
            self.level -= 1.0
            return True
        return False


# "Applications are limited to 25 concurrent operations against a connection"
# (https://learn.microsoft.com/graph/api/resources/connectors-api-overview, known limitations).
MAX_CONCURRENT_OPERATIONS = 25
# [INFERRED] the answer past that limit: 429 with a Retry-After, like ingestion throttling.
CONCURRENCY_RETRY_AFTER = "1"


@dataclass
class _Hold:
    """The item operations one request carries on one connection."""

    received: float
    count: int = 0
    answered: float | None = None  # None while the request is being answered
    others: int = 0  # operations of other requests in flight with it, when it was handled


class ConcurrentOperations:
    """Item operations in flight per connection, each from its request's arrival (before
    any injected latency) until its answer; every entry of a `$batch` counts.

    An operation is admitted when, at every moment from its request's arrival until now,
    fewer than `limit` operations were in flight. A request that arrived meanwhile but is
    handled later counts this one when its turn comes, so no overlap is missed.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._holds: dict[str, dict[int, _Hold]] = {}  # connection -> request serial -> hold
        self.peak: dict[str, int] = {}

    def admit(self, connection_id: str, request: SimRequest) -> bool:
        holds = self._holds.setdefault(connection_id, {})
        mine = holds.get(request.serial)
        if mine is None:
            mine = holds[request.serial] = _Hold(request.received)
        # Looked at again for every operation: two requests handled at the same time (their
        # entries admitted in turn) each see the other's operations as they are admitted.
        mine.others = max(mine.others, self._others(holds, request))
        busy = mine.others + mine.count
        if self.limit is not None and busy >= self.limit:
            return False
        mine.count += 1
        self.peak[connection_id] = max(self.peak.get(connection_id, 0), busy + 1)
        return True

    @staticmethod
    def _others(holds: dict[int, _Hold], request: SimRequest) -> int:
        """The most operations of other requests in flight at once since `request` arrived.

        Requests are not always handled in arrival order, so every arrival since then is
        looked at (concurrency only rises when a request arrives); one arriving meanwhile but
        handled later counts this request when its turn comes.
        """
        now = time.monotonic()
        for serial, old in list(holds.items()):
            if serial != request.serial and old.answered is not None and old.answered < now - 10:
                del holds[serial]  # over long before any request still being handled arrived
        at = request.received
        instants = [at] + [h.received for h in holds.values() if at < h.received <= now]
        return max(
            sum(
                h.count
                for serial, h in holds.items()
                if serial != request.serial
                and h.received <= t
                and (h.answered is None or h.answered > t)
            )
            for t in instants
        )

    def answered(self, serial: int) -> None:
        now = time.monotonic()
        for holds in self._holds.values():
            hold = holds.get(serial)
            if hold is not None:
                hold.answered = now


def _member(value: Any, allowed: frozenset[str]) -> bool:
    """Enum membership that cannot trip over unhashable JSON (a list where a string belongs)."""
    return isinstance(value, str) and value in allowed


def _not_found(what: str, code: str = "itemNotFound") -> GraphError:
    return GraphError(404, code, f"{what} was not found.")


def _check_connection_id(connection_id: Any) -> str:
    if not isinstance(connection_id, str):
        raise bad_request("The connection id is required.")
    if not (3 <= len(connection_id) <= 32) or not _ALNUM.match(connection_id):
        raise bad_request(
            "The connection id must be 3 to 32 alphanumeric characters (no spaces or punctuation)."
        )
    if connection_id.lower().startswith("microsoft"):
        raise bad_request("The connection id must not start with 'Microsoft'.")
    if connection_id.lower() in RESERVED_CONNECTION_IDS:
        raise bad_request(f"The connection id '{connection_id}' is reserved.")
    return connection_id


def _schema_shape_problem(body: dict[str, Any], labels_known: frozenset[str]) -> str | None:
    """Problems Graph rejects at once (the body does not deserialize to a schema)."""
    if body.get("baseType") != "microsoft.graph.externalItem":
        return "The schema baseType must be 'microsoft.graph.externalItem'."
    properties = body.get("properties")
    if not isinstance(properties, list) or not 1 <= len(properties) <= 128:
        return "A schema needs between 1 and 128 properties."
    for prop in properties:
        if not isinstance(prop, dict) or not isinstance(prop.get("name"), str):
            return "Every schema property needs a name."
        if not _member(prop.get("type"), PROPERTY_TYPES):
            return f"Property '{prop.get('name')}' has an unknown type {prop.get('type')!r}."
        labels = prop.get("labels", [])
        if not isinstance(labels, list) or any(
            not _member(label, labels_known) for label in labels
        ):
            return f"Property '{prop['name']}' has an unknown label in {labels!r}."
    return None


def _schema_semantic_problem(body: dict[str, Any], people: bool) -> str | None:
    """Problems Graph reports through a failed operation ([INFERRED] which ones fail late)."""
    seen_names: set[str] = set()
    label_owner: dict[str, str] = {}
    for prop in body["properties"]:
        name = prop["name"]
        if len(name) > 32 or not _ALNUM.match(name):
            return f"Property name '{name}' must be at most 32 alphanumeric characters."
        if name.lower() in seen_names:
            return f"Property name '{name}' is used more than once."
        seen_names.add(name.lower())
        for label in prop.get("labels", []):
            if label in label_owner:
                return f"Label '{label}' is on both '{label_owner[label]}' and '{name}'."
            label_owner[label] = name
            if people and label in PEOPLE_UNSUPPORTED_LABELS:
                return f"Label '{label}' is not supported for people data yet."
            wanted = PEOPLE_LABEL_TYPES.get(label)
            if wanted and prop["type"] != wanted:
                return f"Label '{label}' needs a property of type {wanted}, not {prop['type']}."
        if people and prop["type"] in ("principal", "principalCollection"):
            return f"Property type {prop['type']} is not supported for people data yet."
    if people and "personAccount" not in label_owner:
        return "A people connection needs exactly one property labelled personAccount."
    return None


def _value_matches(kind: str, value: Any) -> bool:
    if kind.endswith("Collection"):
        return isinstance(value, list) and all(
            _value_matches(kind.removesuffix("Collection"), v) for v in value
        )
    if kind == "string":
        return isinstance(value, str)
    if kind == "int64":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "double":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "dateTime":
        if not isinstance(value, str):
            return False
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        return True
    return True  # principal types: shape not modelled


def _entity_problem(label: str, text: str) -> str | None:
    """Why a labelled people value is not a valid JSON entity ([INFERRED] the exact rules)."""
    try:
        entity = json.loads(text)
    except json.JSONDecodeError:
        return "not valid JSON"
    if not isinstance(entity, dict):
        return f"not a JSON object but {type(entity).__name__}"
    if label == "personAccount":
        if not any(
            isinstance(entity.get(key), str) and entity.get(key)
            for key in ("userPrincipalName", "externalDirectoryObjectId")
        ):
            return "no userPrincipalName or externalDirectoryObjectId"
    elif label in ("personAwards", "personCertifications") and not (
        isinstance(entity.get("displayName"), str) and entity["displayName"].strip()
    ):
        return "no displayName"
    return None


class ExternalApi:
    def __init__(self, scenario: dict[str, Any], clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.schema_delay = float(scenario.get("schema_delay_seconds", 0.0))
        self.enforce_owned_by = bool(scenario.get("enforce_owned_by", True))
        # The documented evolvable-enum rule (graph_enums); false = the earlier lenient model.
        self.enforce_evolvable_enums = bool(scenario.get("enforce_evolvable_enums", True))
        # Which Microsoft cloud this Graph plays (the scenario's entra.cloud by default).
        self.cloud = str(scenario.get("cloud") or "global")
        # Item ids: the externalItem page says "alphanumeric", but Microsoft's people-connector
        # sample writes ids with "_" and a third-party ingester ids with "-", so Graph accepts
        # those. [INFERRED] the exact set; `strict_item_ids` applies the page's letter.
        self.item_id_pattern = re.compile(
            r"^[A-Za-z0-9]+$" if scenario.get("strict_item_ids") else r"^[A-Za-z0-9_-]+$"
        )
        limit = scenario.get("ingestion_limit_per_second")
        self.ingestion_limit: float | None = float(limit) if limit is not None else None
        self.buckets: dict[str, TokenBucket] = {}
        limit = scenario.get("concurrent_operations_limit", MAX_CONCURRENT_OPERATIONS)
        self.operations = ConcurrentOperations(int(limit) if limit is not None else None)
        # Every item operation answered 429: {"connection_id", "item_id", "method", "reason"}.
        self.throttled: list[dict[str, Any]] = []
        self.connections: dict[str, Connection] = {}
        self.invalid: list[dict[str, Any]] = []
        for spec in scenario.get("connections", []):
            self._load(spec)

    def _load(self, spec: dict[str, Any]) -> None:
        schema = spec.get("schema")
        if isinstance(schema, list):
            schema = {"baseType": "microsoft.graph.externalItem", "properties": schema}
        elif schema is None and "properties" in spec:
            schema = {"baseType": "microsoft.graph.externalItem", "properties": spec["properties"]}
        connection = Connection(
            id=str(spec["id"]),
            name=str(spec.get("name", spec["id"])),
            description=spec.get("description"),
            content_category=str(spec.get("contentCategory", "uncategorized")),
            # Pre-existing connections (e.g. Microsoft's own Credly connector) belong to
            # another app unless the scenario says otherwise.
            owner_app_id=spec.get("owner_app_id"),
            schema=copy.deepcopy(schema),
        )
        state = spec.get("state")
        if state and state != connection.state:
            connection.forced_state = str(state)
        for item_id, item in (spec.get("items") or {}).items():
            connection.items[str(item_id)] = copy.deepcopy(item)
        self.connections[connection.id] = connection

    # -- control -------------------------------------------------------------------------
    def settle(self) -> None:
        """Finish every schema operation whose delay has passed."""
        now = self.clock()
        with self.lock:
            for connection in self.connections.values():
                for operation in connection.operations.values():
                    if operation.status != "inprogress":
                        continue
                    if now - operation.created < self.schema_delay:
                        continue
                    if operation.problem:
                        operation.status = "failed"
                    else:
                        operation.status = "completed"
                        connection.schema = copy.deepcopy(operation.schema)

    def set_ingestion_limit(self, per_second: float | None) -> None:
        with self.lock:
            self.ingestion_limit = per_second
            self.buckets.clear()

    def set_connection_state(self, connection_id: str, state: str | None) -> None:
        if state is not None and state not in CONNECTION_STATES:
            raise ValueError(f"state must be one of {sorted(CONNECTION_STATES)}")
        with self.lock:
            self.connections[connection_id].forced_state = state

    # -- helpers -------------------------------------------------------------------------
    @property
    def us_government(self) -> bool:
        return self.cloud in US_GOVERNMENT_CLOUDS

    def _render_connection(self, connection: Connection, request: SimRequest) -> dict[str, Any]:
        document = connection.to_graph(request.base_url)
        if self.us_government:
            del document["contentCategory"]  # not a property in the US Government metadata
        elif self.enforce_evolvable_enums:
            document["contentCategory"] = mask_category(connection.content_category, request)
        return document

    def _connection(self, connection_id: str) -> Connection:
        connection = self.connections.get(connection_id)
        if connection is None:
            raise _not_found(f"The connection '{connection_id}'")
        return connection

    def _reaches(self, caller: Caller, needed: Permission, connection: Connection) -> bool:
        """Whether the caller's permission covers this connection.

        The OwnedBy permissions: "can only read and write external connections that it is
        authorized to, or it can create new external connections" (Graph permissions
        reference): the app that created the connection, or one in its authorizedAppIds.
        """
        if not (self.enforce_owned_by and caller.only_owned_by(needed)):
            return True
        allowed = {connection.owner_app_id, *connection.authorized_app_ids}
        return caller.app_id.lower() in {str(a).lower() for a in allowed if a}

    def _owned(self, caller: Caller, needed: Permission, connection: Connection) -> None:
        caller.require(needed)
        if not self._reaches(caller, needed, connection):
            # [INFERRED] 403 rather than 404 for a connection the app may not reach.
            raise needed.denied()

    def _throttle(self, connection_id: str, request: SimRequest, item_id: str) -> None:
        if self.ingestion_limit is None:
            return
        bucket = self.buckets.get(connection_id)
        if bucket is None:
            bucket = self.buckets[connection_id] = TokenBucket(self.ingestion_limit, self.clock)
        if not bucket.take():
            self._note_throttled(connection_id, request, item_id, "rate")
            raise GraphError(
                429,
                "activityLimitReached",
                "The request has been throttled: too many items were written to this connection.",
                {"Retry-After": "1"},
            )

    def _admit(self, connection_id: str, request: SimRequest, item_id: str) -> None:
        """Graph's 25 concurrent operations per connection (see ConcurrentOperations)."""
        if not self.operations.admit(connection_id, request):
            self._note_throttled(connection_id, request, item_id, "concurrency")
            raise GraphError(
                429,
                "tooManyRequests",
                f"Too many concurrent operations against the connection '{connection_id}' "
                f"(at most {self.operations.limit}).",
                {"Retry-After": CONCURRENCY_RETRY_AFTER},
            )

    def _note_throttled(
        self, connection_id: str, request: SimRequest, item_id: str, reason: str
    ) -> None:
        self.throttled.append(
            {
                "connection_id": connection_id,
                "item_id": item_id,
                "method": request.method,
                "reason": reason,
            }
        )

    # -- connections ---------------------------------------------------------------------
    def list_connections(self, request: SimRequest, caller: Caller) -> SimResponse:
        caller.require(CONNECTIONS_READ)
        with self.lock:
            value = [
                self._render_connection(c, request)
                for c in self.connections.values()
                if self._reaches(caller, CONNECTIONS_READ, c)
            ]
        for entry in value:
            entry.pop("@odata.context")
        document = {"@odata.context": f"{request.base_url}/v1.0/$metadata#external/connections"}
        return SimResponse.json(200, {**document, "value": value}, applied_headers(request))

    def create_connection(self, request: SimRequest, caller: Caller) -> SimResponse:
        caller.require(CONNECTIONS_WRITE)
        body = read_json_object(request)
        connection_id = _check_connection_id(body.get("id"))
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            raise bad_request("The connection name is required (at most 128 characters).")
        if self.us_government and "contentCategory" in body:
            # [INFERRED] the text: OData refuses a property its metadata does not declare.
            raise bad_request(
                "The property 'contentCategory' does not exist on type "
                "'microsoft.graph.externalConnectors.externalConnection'.",
                "BadRequest",
            )
        category = body.get("contentCategory", "uncategorized")
        if not _member(category, CONTENT_CATEGORIES):
            raise bad_request(f"Unknown contentCategory {category!r}.")
        if self.enforce_evolvable_enums:
            check_category_input(category, request)
        description = body.get("description")
        # The create page lists description as required; [INFERRED] an empty string passes.
        if not isinstance(description, str):
            raise bad_request("The connection description is required (a string).")
        configuration = body.get("configuration") or {}
        app_ids = (
            configuration.get("authorizedAppIds", []) if isinstance(configuration, dict) else []
        )
        with self.lock:
            if connection_id in self.connections:
                raise GraphError(
                    409, "Conflict", f"A connection with the id '{connection_id}' already exists."
                )
            connection = Connection(
                id=connection_id,
                name=name,
                description=description,
                content_category=category,
                owner_app_id=caller.app_id,
                authorized_app_ids=[str(a) for a in app_ids] if isinstance(app_ids, list) else [],
            )
            self.connections[connection_id] = connection
            return SimResponse.json(201, self._render_connection(connection, request))

    def get_connection(
        self, request: SimRequest, caller: Caller, connection_id: str
    ) -> SimResponse:
        with self.lock:
            connection = self._connection(connection_id)
            self._owned(caller, CONNECTIONS_READ, connection)
            document = self._render_connection(connection, request)
        return SimResponse.json(200, document, applied_headers(request))

    def update_connection(
        self, request: SimRequest, caller: Caller, connection_id: str
    ) -> SimResponse:
        body = read_json_object(request)
        with self.lock:
            connection = self._connection(connection_id)
            self._owned(caller, CONNECTIONS_WRITE, connection)
            for key in body:
                if key not in ("name", "description", "configuration", "@odata.type"):
                    raise bad_request(f"The property '{key}' cannot be changed.")
            if isinstance(body.get("name"), str):
                connection.name = body["name"]
            if "description" in body:
                connection.description = body["description"]
            return SimResponse.empty(204)

    def delete_connection(
        self, request: SimRequest, caller: Caller, connection_id: str
    ) -> SimResponse:
        with self.lock:
            connection = self._connection(connection_id)
            self._owned(caller, CONNECTIONS_WRITE, connection)
            del self.connections[connection_id]
            self.buckets.pop(connection_id, None)
            return SimResponse.empty(204)

    # -- schema and operations -----------------------------------------------------------
    def patch_schema(self, request: SimRequest, caller: Caller, connection_id: str) -> SimResponse:
        body = read_json_object(request)
        with self.lock:
            connection = self._connection(connection_id)
            self._owned(caller, CONNECTIONS_WRITE, connection)
            problem = _schema_shape_problem(body, FAIRFAX_LABELS if self.us_government else LABELS)
            if problem:
                raise bad_request(problem)
            if self.enforce_evolvable_enums:
                check_schema_input(body, request)
            operation = Operation(
                id=f"1.sim.{uuid.uuid4().hex.upper()}",
                created=self.clock(),
                schema={
                    "baseType": body["baseType"],
                    "properties": copy.deepcopy(body["properties"]),
                },
                problem=_schema_semantic_problem(body, connection.content_category == "people"),
            )
            connection.operations[operation.id] = operation
        location = (
            f"{request.base_url}/v1.0/external/connections/{connection_id}"
            f"/operations/{operation.id}"
        )
        return SimResponse.empty(202, {"Location": location})

    def get_schema(self, request: SimRequest, caller: Caller, connection_id: str) -> SimResponse:
        with self.lock:
            connection = self._connection(connection_id)
            self._owned(caller, CONNECTIONS_READ, connection)
            if connection.schema is None:
                raise _not_found(f"The schema of connection '{connection_id}'")
            schema = connection.schema
            if self.enforce_evolvable_enums:
                schema = mask_schema(schema, request)
            document = {
                "@odata.context": (
                    f"{request.base_url}/v1.0/$metadata#external/connections"
                    f"('{connection_id}')/schema/$entity"
                ),
                **copy.deepcopy(schema),
            }
        return SimResponse.json(200, document, applied_headers(request))

    def get_operation(
        self, request: SimRequest, caller: Caller, connection_id: str, operation_id: str
    ) -> SimResponse:
        with self.lock:
            connection = self._connection(connection_id)
            self._owned(caller, CONNECTIONS_READ, connection)
            operation = connection.operations.get(operation_id)
            if operation is None:
                raise _not_found(f"The operation '{operation_id}'")
            error = None
            if operation.status == "failed":
                error = {"code": "InvalidSchema", "message": operation.problem}
            document = {
                "@odata.context": (
                    f"{request.base_url}/v1.0/$metadata#external/connections"
                    f"('{connection_id}')/operations/$entity"
                ),
                "id": operation.id,
                "status": operation.status,
                "error": error,
            }
        return SimResponse.json(200, document)

    # -- items ---------------------------------------------------------------------------
    def _check_item_id(self, item_id: str) -> None:
        if len(item_id) > 128 or not self.item_id_pattern.match(item_id):
            raise bad_request(
                f"The item id '{item_id}' is invalid: use at most 128 letters, digits, '_' or '-'."
            )

    def put_item(
        self, request: SimRequest, caller: Caller, connection_id: str, item_id: str
    ) -> SimResponse:
        if len(request.body) > MAX_ITEM_BYTES:
            raise GraphError(413, "requestTooLarge", "The item is larger than 4 MB.")
        with self.lock:
            connection = self._connection(connection_id)
            self._owned(caller, ITEMS_WRITE, connection)
            self._check_item_id(item_id)
            self._admit(connection_id, request, item_id)
            state = connection.state
            if state in ("draft", "obsolete"):
                # [INFERRED] status and code: items can only be written to a ready connection.
                raise bad_request(
                    f"The connection '{connection_id}' is in state '{state}'; items can only "
                    "be written when it is ready."
                )
            if state == "limitExceeded" and item_id not in connection.items:
                # [INFERRED] the answer for a new item above the connection's quota.
                raise GraphError(
                    507, "quotaLimitReached", "The connection has reached its item limit."
                )
            body = read_json_object(request)
            people = connection.content_category == "people"
            self._check_acl(body.get("acl"), people)
            invalid = self._check_properties(body.get("properties"), connection)
            content = body.get("content")
            if content is not None and (
                not isinstance(content, dict) or content.get("type") not in ("text", "html")
            ):
                raise bad_request("The item content needs a type of 'text' or 'html'.")
            self._throttle(connection_id, request, item_id)
            stored = {"id": item_id, "acl": body["acl"], "properties": body["properties"]}
            if content is not None:
                stored["content"] = content
            connection.items[item_id] = copy.deepcopy(stored)
            for prop, value, reason in invalid:
                self.invalid.append(
                    {
                        "connection_id": connection_id,
                        "item_id": item_id,
                        "property": prop,
                        "value": value,
                        "reason": reason,
                    }
                )
        return SimResponse.empty(200)

    def _check_acl(self, acl: Any, people: bool) -> None:
        if not isinstance(acl, list) or not acl:
            raise bad_request("The item acl is required and must not be empty.", "InvalidRequest")
        everyone = False
        for entry in acl:
            if not isinstance(entry, dict):
                raise bad_request("Every acl entry must be an object.", "InvalidRequest")
            if not _member(entry.get("type"), ACL_TYPES):
                raise bad_request(f"Unknown acl type {entry.get('type')!r}.", "InvalidRequest")
            if not _member(entry.get("accessType"), ACCESS_TYPES):
                raise bad_request(
                    f"Unknown acl accessType {entry.get('accessType')!r}.", "InvalidRequest"
                )
            value = entry.get("value")
            if not isinstance(value, str) or not value.strip():
                raise bad_request("Every acl entry needs a value.", "InvalidRequest")
            if entry["type"] == "everyone" and entry["accessType"] == "grant":
                everyone = True
        if people and not everyone:
            raise bad_request(
                "Items in a people connection must grant access to everyone.", "InvalidRequest"
            )

    def _check_properties(
        self, properties: Any, connection: Connection
    ) -> list[tuple[str, str, str]]:
        if not isinstance(properties, dict) or not properties:
            raise bad_request("The item properties are required.", "BadRequest")
        schema = connection.property_types()
        invalid: list[tuple[str, str, str]] = []
        for key, value in properties.items():
            if "@odata.type" in key:
                base = key.split("@", 1)[0]
                prop = schema.get(base)
                if prop is None or value not in _HINTS.get(prop["type"], (value,)):
                    raise bad_request(
                        f"Property {key} in payload has a value that does not match schema.",
                        "BadRequest",
                    )
                continue
            prop = schema.get(key)
            if prop is None:
                raise bad_request(f"Property {key} in payload does not match schema.", "BadRequest")
            if not _value_matches(prop["type"], value):
                raise bad_request(
                    f"Property {key} in payload has a value that does not match schema.",
                    "BadRequest",
                )
            labels = [label for label in prop.get("labels", []) if label.startswith("person")]
            if connection.content_category != "people" or not labels:
                continue
            for text in value if isinstance(value, list) else [value]:
                reason = _entity_problem(labels[0], text)
                if reason:
                    invalid.append((key, text, reason))
        return invalid

    def get_item(
        self, request: SimRequest, caller: Caller, connection_id: str, item_id: str
    ) -> SimResponse:
        with self.lock:
            connection = self._connection(connection_id)
            self._owned(caller, ITEMS_READ, connection)
            self._admit(connection_id, request, item_id)
            item = connection.items.get(item_id)
            if item is None:
                raise _not_found(f"The item '{item_id}'")
            document = {
                "@odata.context": (
                    f"{request.base_url}/v1.0/$metadata#external/connections"
                    f"('{connection_id}')/items/$entity"
                ),
                **copy.deepcopy(item),
            }
        return SimResponse.json(200, document)

    def delete_item(
        self, request: SimRequest, caller: Caller, connection_id: str, item_id: str
    ) -> SimResponse:
        with self.lock:
            connection = self._connection(connection_id)
            self._owned(caller, ITEMS_WRITE, connection)
            self._admit(connection_id, request, item_id)
            if item_id not in connection.items:
                raise _not_found(f"The item '{item_id}'")
            self._throttle(connection_id, request, item_id)
            del connection.items[item_id]
        return SimResponse.empty(204)

    def list_items(self, request: SimRequest, caller: Caller, connection_id: str) -> SimResponse:
        caller.require(ITEMS_READ)
        raise GraphError(405, "notSupported", "Listing the items of a connection is not supported.")
