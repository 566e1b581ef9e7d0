"""Everything a check may look at, built lazily and shared by checks running in parallel.

Clients are created on first use and cached; every remote lookup goes through `memo`, so two
checks that need the same answer (the organization, the token's roles, the connection...) cause
one request, and a lookup that failed fails the same way for every check without a retry storm.
Checks only read: nothing here writes to Credly, Graph or the sync state. The one file a
diagnosis may write is the tenant's public discovery document, kept next to the state for the
next run's sign-in (`sync.clients.InstanceClients.tokens`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from credly_connector.config.resolved import InstanceSettings
from credly_connector.errors import ConfigError, CredlyctlError

if TYPE_CHECKING:
    from credly_connector.credly.client import CredlyClient
    from credly_connector.credly.models import Badge, Organization
    from credly_connector.graph.auth import EntraTokenProvider
    from credly_connector.graph.client import GraphClient
    from credly_connector.graph.models import DirectoryUser
    from credly_connector.sync.clients import InstanceClients
    from credly_connector.sync.state import SyncState

T = TypeVar("T")

# Resolves a host name to IP addresses; replaced in tests (check-endpoint's DNS step).
Resolver = Callable[[str, int], list[str]]


class ShapeRecorder:
    """Keeps the shape (keys, value types, status) of every answer the services gave.

    For the support bundle: lets the simulator's inferred behaviours be compared with the real
    services without copying a single value. Paths are reduced to templates (ids, addresses and
    quoted literals become {id}); query strings are dropped because filters hold addresses.
    """

    _VARIABLE = re.compile(r"^(?:[0-9a-fA-F-]{16,}|\d+|[^/]*@[^/]*|[A-Za-z0-9_-]{40,})$")
    _LITERAL = re.compile(r"'[^']*'")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str, int], dict[str, Any]] = {}

    def template(self, path: str) -> str:
        path = self._LITERAL.sub("'{id}'", path)
        return "/".join("{id}" if self._VARIABLE.match(part) else part for part in path.split("/"))

    def record(self, service: str, method: str, path: str, status: int, text: str) -> None:
        from credly_connector.net.shapes import body_shape

        key = (service, method, self.template(path), status)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = {
                    "service": service,
                    "method": method,
                    "path": key[2],
                    "status": status,
                    "count": 1,
                    "body": body_shape(text),
                }
            else:
                entry["count"] += 1

    def hook(self, service: str) -> Callable[[httpx.Response], None]:
        def on_response(response: httpx.Response) -> None:
            response.read()
            self.record(
                service,
                str(response.request.method),
                str(response.request.url.path),
                int(response.status_code),
                response.text,
            )

        return on_response

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for _, e in sorted(self._entries.items())]


class _Failed:
    """A memoised exception: raised again for every later caller of the same lookup."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


@dataclass(frozen=True)
class BadgeScan:
    """How far the unfiltered badge scan of explain-user went (a fallback with a limit)."""

    scanned: int
    complete: bool

    def to_dict(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "complete": self.complete}


# Test doubles for the clients; None builds the real ones (through sync.clients).
CredlyFactory = Callable[[InstanceSettings], "CredlyClient"]
TokensFactory = Callable[[InstanceSettings], "EntraTokenProvider"]
GraphFactory = Callable[[InstanceSettings, "EntraTokenProvider"], "GraphClient"]
StateFactory = Callable[[InstanceSettings], "SyncState | None"]


@dataclass
class DiagnosticContext:
    """What the checks of one run share: settings, options, clients and memoised answers.

    Use it as a context manager (or call `close()`): the HTTP sessions opened for the checks are
    closed together at the end.
    """

    settings: InstanceSettings | None
    config_error: CredlyctlError | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    config_path: Path | None = None
    instance: str | None = None
    resolver: Resolver | None = None
    # The address the user checks look at (explain-user, `diagnose EMAIL`).
    email: str | None = None
    # False when the admin named one instance (`--instance`): the user checks then leave the
    # other configured instances alone; by default they look in every one.
    all_instances: bool = True
    # test-credentials --probe-other-environment: also try the other Credly environment.
    probe_other_environment: bool = False
    # Tests only: the transport of that probe (the real one would leave the machine).
    other_environment_transport: httpx.BaseTransport | None = None
    credly_factory: CredlyFactory | None = None
    tokens_factory: TokensFactory | None = None
    graph_factory: GraphFactory | None = None
    state_factory: StateFactory | None = None
    shapes: ShapeRecorder | None = None  # set by support-bundle to keep answer shapes
    # Written by the user checks' unfiltered badge scan, when it ran.
    badge_scan: BadgeScan | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._values: dict[str, Any] = {}
        self._clients: InstanceClients | None = None
        self._other_clients: list[InstanceClients] = []

    @classmethod
    def load(
        cls,
        config_path: Path | None,
        instance: str | None,
        overrides: dict[str, Any] | None = None,
    ) -> DiagnosticContext:
        """A context for one instance; a configuration error is kept for the checks to report."""
        from credly_connector.config.load import load_instance

        try:
            settings = load_instance(config_path, instance, overrides)
        except CredlyctlError as exc:
            return cls(None, exc, config_path=config_path, instance=instance)
        return cls(settings, None, config_path=config_path, instance=settings.name)

    def close(self) -> None:
        with self._lock:
            opened = [self._clients, *self._other_clients]
            self._clients, self._other_clients = None, []
        for clients in opened:
            if clients is not None:
                clients.close()

    def __enter__(self) -> DiagnosticContext:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- memoisation -------------------------------------------------------------------------

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """`compute()` once per key for the life of this context, even across threads."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._values:
                try:
                    self._values[key] = compute()
                except Exception as exc:
                    self._values[key] = _Failed(exc)
            value = self._values[key]
        if isinstance(value, _Failed):
            raise value.exc
        return value  # type: ignore[no-any-return]

    # -- settings ----------------------------------------------------------------------------

    def require_settings(self) -> InstanceSettings:
        if self.settings is None:
            if self.config_error is not None:
                raise self.config_error
            raise ConfigError(
                "No connector instance is configured.", "Run `credlyctl config init`."
            )
        return self.settings

    # -- clients -----------------------------------------------------------------------------

    def _real(self) -> InstanceClients:
        """The real clients, built in one place (sync.clients) and closed by `close()`."""
        settings = self.require_settings()
        with self._lock:
            if self._clients is None:
                from credly_connector.sync.clients import InstanceClients

                self._clients = InstanceClients(settings, on_session=self._record_shapes)
            return self._clients

    def _record_shapes(self, service: str, http: httpx.Client) -> None:
        if self.shapes is not None:
            http.event_hooks["response"].append(self.shapes.hook(service))

    def credly(self) -> CredlyClient:
        settings = self.require_settings()
        if self.credly_factory is not None:
            factory = self.credly_factory
            return self.memo("client:credly", lambda: factory(settings))
        return self._real().credly

    def credly_for(self, settings: InstanceSettings) -> CredlyClient:
        """A Credly client for other settings (another instance or organization), closed with
        this context."""
        if self.credly_factory is not None:
            return self.credly_factory(settings)
        from credly_connector.sync.clients import InstanceClients

        clients = InstanceClients(settings, on_session=self._record_shapes)
        with self._lock:
            self._other_clients.append(clients)
        return clients.credly

    def tokens(self) -> EntraTokenProvider:
        settings = self.require_settings()
        if self.tokens_factory is not None:
            factory = self.tokens_factory
            return self.memo("client:tokens", lambda: factory(settings))
        return self._real().tokens

    def graph(self) -> GraphClient:
        settings = self.require_settings()
        if self.graph_factory is not None:
            factory = self.graph_factory
            return self.memo("client:graph", lambda: factory(settings, self.tokens()))
        return self._real().graph

    def state(self) -> SyncState | None:
        """The sync state store, read-only; None when no sync has ever run here."""
        settings = self.require_settings()
        return self.memo("client:state", lambda: (self.state_factory or _state)(settings))

    # -- shared lookups (one request each, whichever check asks first) -----------------------

    def organization(self) -> Organization:
        return self.memo("credly:org", lambda: self.credly().get_organization())

    def sign_in(self) -> bool:
        """Get an Entra ID token (once: a refusal is not asked for again by every check)."""
        return self.memo("entra:token", lambda: bool(self.tokens().get_token()))

    def token_claims(self) -> dict[str, Any] | None:
        """The token's claims (undecoded when the token is not a JWT: None)."""
        return self.memo("entra:claims", lambda: self.tokens().token_claims())

    def token_roles(self) -> frozenset[str] | None:
        """The application permissions in the token; None when they cannot be read from it."""

        def read() -> frozenset[str] | None:
            roles = self.tokens().granted_roles()
            return frozenset(roles) if roles is not None else None

        return self.memo("entra:roles", read)

    def badge_probe(self) -> Badge | None:
        """One page of the organization's badges (its first badge): reading the organization
        works without the issued_badges scope, this does not."""
        return self.memo(
            "credly:badge-probe", lambda: next(iter(self.credly().iter_badges()), None)
        )

    def connection_item(self, item_id: str) -> dict[str, Any] | None:
        """One item of credlyctl's connection, asked for without waiting to learn whether the
        connection exists (whoever reads the answer checks that first)."""
        connection_id = self.require_settings().graph.connection_id
        return self.memo(
            f"graph:connection-item:{item_id}",
            lambda: self.graph().get_item(connection_id, item_id),
        )

    def connections(self) -> list[dict[str, Any]]:
        return self.memo("graph:connections", lambda: list(self.graph().list_connections()))

    def connection(self) -> dict[str, Any] | None:
        """credlyctl's own connection, or None when it does not exist."""
        connection_id = self.require_settings().graph.connection_id
        return self.memo("graph:connection", lambda: self.graph().get_connection(connection_id))

    def schema(self) -> dict[str, Any] | None:
        connection_id = self.require_settings().graph.connection_id
        return self.memo("graph:schema", lambda: self.graph().get_schema(connection_id))

    def profile_sources(self) -> list[dict[str, Any]]:
        return self.memo("graph:profile_sources", lambda: list(self.graph().list_profile_sources()))

    def profile_settings(self) -> list[dict[str, Any]]:
        return self.memo(
            "graph:profile_settings", lambda: self.graph().get_profile_property_settings()
        )

    def application(self) -> dict[str, Any] | None:
        client_id = self.require_settings().entra.client_id
        return self.memo("graph:application", lambda: self.graph().get_application(client_id))

    def users_by_addresses(self, addresses: tuple[str, ...]) -> list[DirectoryUser]:
        key = "graph:users:" + ",".join(sorted(a.lower() for a in addresses))
        return self.memo(key, lambda: self.graph().find_users_by_addresses(list(addresses)))

    def badges_by_email(self, email: str) -> list[Badge]:
        # Not lower-cased: whether Credly's filter ignores case is not documented.
        return self.memo(
            f"credly:badges:{email}",
            lambda: list(self.credly().iter_badges(recipient_email=email)),
        )


# Imported late so a check module can be loaded (and unit-tested with fakes) without the whole
# stack, and so an import problem in one client is one check's error.
def _state(settings: InstanceSettings) -> SyncState | None:
    from credly_connector.sync.state import open_readonly, state_path

    return open_readonly(state_path(settings.sync.state_dir, settings.name))
