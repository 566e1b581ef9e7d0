"""Everything a check may look at, built lazily and shared by checks running in parallel.

Clients are created on first use and cached; every remote lookup goes through `memo`, so two
checks that need the same answer (the organization, the token's roles, the connection...) cause
one request, and a lookup that failed fails the same way for every check without a retry storm.
Checks only read: nothing here writes to Credly, Graph or the sync state.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from credly_connector.config.resolved import InstanceSettings
from credly_connector.errors import ConfigError, CredlyctlError

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

    def hook(self, service: str) -> Callable[[Any], None]:
        def on_response(response: Any) -> None:
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


@dataclass
class DiagnosticContext:
    settings: InstanceSettings | None
    config_error: CredlyctlError | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    config_path: Path | None = None
    instance: str | None = None
    resolver: Resolver | None = None
    # Factories replace the real clients in unit tests; None builds the real ones.
    credly_factory: Callable[[InstanceSettings], Any] | None = None
    tokens_factory: Callable[[InstanceSettings], Any] | None = None
    graph_factory: Callable[[InstanceSettings, Any], Any] | None = None
    state_factory: Callable[[InstanceSettings], Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. the email explain-user looks at
    shapes: ShapeRecorder | None = None  # set by support-bundle to keep answer shapes

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._values: dict[str, Any] = {}

    @classmethod
    def load(
        cls,
        config_path: Path | None,
        instance: str | None,
        overrides: dict[str, Any] | None = None,
        **options: Any,
    ) -> DiagnosticContext:
        """A context for one instance; a configuration error is kept for the checks to report."""
        from credly_connector.config.load import load_instance

        try:
            settings = load_instance(config_path, instance, overrides)
        except CredlyctlError as exc:
            return cls(None, exc, config_path=config_path, instance=instance, **options)
        return cls(settings, None, config_path=config_path, instance=settings.name, **options)

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

    def credly(self) -> Any:
        """The Credly client (credly_connector.credly.client.CredlyClient)."""
        settings = self.require_settings()
        return self.memo(
            "client:credly",
            lambda: self._recording(_build(self.credly_factory, _credly, settings), "credly"),
        )

    def tokens(self) -> Any:
        """The Entra token provider (credly_connector.graph.auth.EntraTokenProvider)."""
        settings = self.require_settings()
        return self.memo(
            "client:tokens",
            lambda: self._recording(_build(self.tokens_factory, _tokens, settings), "entra"),
        )

    def graph(self) -> Any:
        """The Graph client (credly_connector.graph.client.GraphClient)."""
        settings = self.require_settings()

        def build() -> Any:
            factory = self.graph_factory or _graph
            return self._recording(factory(settings, self.tokens()), "graph")

        return self.memo("client:graph", build)

    def _recording(self, client: Any, service: str) -> Any:
        """Attach the shape recorder to a client's httpx session, when one is set."""
        http = getattr(client, "http", None)
        if self.shapes is not None and http is not None and hasattr(http, "event_hooks"):
            http.event_hooks["response"].append(self.shapes.hook(service))
        return client

    def state(self) -> Any | None:
        """The sync state store, read-only; None when no sync has ever run here."""
        settings = self.require_settings()
        return self.memo("client:state", lambda: _build(self.state_factory, _state, settings))

    # -- shared lookups (one request each, whichever check asks first) -----------------------

    def organization(self) -> Any:
        return self.memo("credly:org", lambda: self.credly().get_organization())

    def token_claims(self) -> dict[str, Any]:
        return self.memo("entra:claims", lambda: dict(self.tokens().token_claims()))

    def token_roles(self) -> frozenset[str]:
        return self.memo("entra:roles", lambda: frozenset(self.tokens().granted_roles()))

    def connections(self) -> list[Any]:
        return self.memo("graph:connections", lambda: list(self.graph().list_connections()))

    def connection(self) -> Any | None:
        """credlyctl's own connection, or None when it does not exist."""
        connection_id = self.require_settings().graph.connection_id
        return self.memo("graph:connection", lambda: self.graph().get_connection(connection_id))

    def schema(self) -> Any | None:
        connection_id = self.require_settings().graph.connection_id
        return self.memo("graph:schema", lambda: self.graph().get_schema(connection_id))

    def profile_sources(self) -> list[Any]:
        return self.memo("graph:profile_sources", lambda: list(self.graph().list_profile_sources()))

    def profile_settings(self) -> Any:
        return self.memo(
            "graph:profile_settings", lambda: self.graph().get_profile_property_settings()
        )

    def application(self) -> Any | None:
        client_id = self.require_settings().entra.client_id
        return self.memo("graph:application", lambda: self.graph().get_application(client_id))

    def users_by_addresses(self, addresses: tuple[str, ...]) -> Any:
        key = "graph:users:" + ",".join(sorted(a.lower() for a in addresses))
        return self.memo(key, lambda: self.graph().find_users_by_addresses(list(addresses)))

    def badges_by_email(self, email: str) -> list[Any]:
        # Not lower-cased: whether Credly's filter ignores case is not documented.
        return self.memo(
            f"credly:badges:{email}",
            lambda: list(self.credly().iter_badges(recipient_email=email)),
        )


def _build(
    factory: Callable[[InstanceSettings], Any] | None,
    default: Callable[[InstanceSettings], Any],
    settings: InstanceSettings,
) -> Any:
    return (factory or default)(settings)


# The real clients, imported late so a check module can be loaded (and unit-tested with fakes)
# without the whole stack, and so an import problem in one client is one check's error.
def _credly(settings: InstanceSettings) -> Any:
    from credly_connector.credly.client import CredlyClient
    from credly_connector.net import build_http_client

    return CredlyClient(
        settings.credly,
        build_http_client(settings, "credly"),
        page_concurrency=settings.sync.credly_page_concurrency,
    )


def _tokens(settings: InstanceSettings) -> Any:
    from credly_connector.graph.auth import EntraTokenProvider
    from credly_connector.net import build_http_client

    return EntraTokenProvider(settings.entra, build_http_client(settings, "microsoft"))


def _graph(settings: InstanceSettings, tokens: Any) -> Any:
    from credly_connector.graph.client import GraphClient
    from credly_connector.net import build_http_client

    return GraphClient(settings, build_http_client(settings, "microsoft"), tokens)


def _state(settings: InstanceSettings) -> Any | None:
    from credly_connector.sync.state import open_readonly, state_path

    return open_readonly(state_path(settings.sync.state_dir, settings.name))
