"""Pieces every part of the simulated Graph shares: its error shape, auth and permission rules.

Written from ../shared/reference/microsoft-graph.md (sections 7.1, 7.2) and entra-msal.md;
nothing here is shared with the client in credly_connector/graph/.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from credly_connector.simulator.core import SimRequest, SimResponse, TokenStore

# Graph's own application id: the `aud` of an app-only token requested with `<graph>/.default`.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
_GRAPH_ROOTS = (
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
)


class GraphError(Exception):
    """An answer in Graph's error shape; raised anywhere below the router, rendered once."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(request: SimRequest, error: GraphError) -> SimResponse:
    request_id = str(uuid.uuid4())
    client_request_id = request.header("client-request-id") or request_id
    body = {
        "error": {
            "code": error.code,
            "message": error.message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    headers = {
        "request-id": request_id,
        "client-request-id": client_request_id,
        **error.headers,
    }
    return SimResponse.json(error.status, body, headers)


def bad_request(message: str, code: str = "invalidRequest") -> GraphError:
    return GraphError(400, code, message)


def read_json_object(request: SimRequest) -> dict[str, Any]:
    """The request body as a JSON object, or Graph's 400 for anything else."""
    try:
        document = json.loads(request.body.decode("utf-8")) if request.body else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request("Unable to read JSON request payload.", "BadRequest") from exc
    if not isinstance(document, dict):
        raise bad_request("A JSON object is required in the request payload.", "BadRequest")
    return document


@dataclass(frozen=True)
class Permission:
    """Which `roles` let a call through, and which error code Graph's workload uses when not."""

    any_of: frozenset[str]
    directory: bool  # Entra-backed calls answer Authorization_RequestDenied

    def denied(self) -> GraphError:
        if self.directory:
            return GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        # [INFERRED] the exact code of non-directory workloads varies (accessDenied, Forbidden).
        return GraphError(
            403,
            "accessDenied",
            "The caller does not have permission to perform the action.",
        )


def permission(*roles: str, directory: bool = False) -> Permission:
    return Permission(frozenset(roles), directory)


USERS_READ = permission(
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    directory=True,
)
APPLICATIONS_READ = permission(
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    directory=True,
)
CONNECTIONS_WRITE = permission(
    "ExternalConnection.ReadWrite.OwnedBy", "ExternalConnection.ReadWrite.All"
)
CONNECTIONS_READ = permission(
    "ExternalConnection.ReadWrite.OwnedBy",
    "ExternalConnection.ReadWrite.All",
    "ExternalConnection.Read.All",
)
ITEMS_WRITE = permission("ExternalItem.ReadWrite.OwnedBy", "ExternalItem.ReadWrite.All")
ITEMS_READ = permission(
    "ExternalItem.ReadWrite.OwnedBy", "ExternalItem.ReadWrite.All", "ExternalItem.Read.All"
)
PEOPLE_WRITE = permission("PeopleSettings.ReadWrite.All")
PEOPLE_READ = permission("PeopleSettings.ReadWrite.All", "PeopleSettings.Read.All")

OWNED_BY_ONLY_ROLES = frozenset(
    {"ExternalConnection.ReadWrite.OwnedBy", "ExternalItem.ReadWrite.OwnedBy"}
)


def _unauthenticated(message: str) -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        message,
        {
            "WWW-Authenticate": (
                'Bearer realm="", authorization_uri='
                '"https://login.microsoftonline.com/common/oauth2/authorize", '
                f'client_id="{GRAPH_APP_ID}"'
            )
        },
    )


@dataclass
class Caller:
    """Who is calling, from a verified token."""

    app_id: str
    roles: frozenset[str]
    tenant_id: str | None
    claims: dict[str, Any] = field(default_factory=dict)

    def require(self, needed: Permission) -> None:
        if not (self.roles & needed.any_of):
            raise needed.denied()

    def only_owned_by(self, needed: Permission) -> bool:
        """True when the caller holds only the OwnedBy variant of `needed`."""
        granted = self.roles & needed.any_of
        return bool(granted) and granted <= OWNED_BY_ONLY_ROLES


def _audience_ok(audience: Any, base_url: str) -> bool:
    if audience is None:
        return True
    values = audience if isinstance(audience, list) else [audience]
    for value in values:
        text = str(value).rstrip("/")
        if text == GRAPH_APP_ID or text in _GRAPH_ROOTS:
            return True
        if base_url and text == base_url.rstrip("/"):
            return True
        # [INFERRED] the simulated Entra may name the simulated Graph by any URL with "graph".
        if "graph" in text.lower():
            return True
    return False


def authenticate(request: SimRequest, tokens: TokenStore, tenant_id: str | None) -> Caller:
    token = request.bearer()
    if token is None:
        raise _unauthenticated("Access token is empty.")
    check = tokens.verify(token)
    if check.reason == "expired":
        raise _unauthenticated("Lifetime validation failed, the token is expired.")
    if check.reason != "ok" or check.claims is None:
        raise _unauthenticated("Access token validation failure.")
    claims = check.claims
    if not _audience_ok(claims.get("aud"), request.base_url):
        raise _unauthenticated("Access token validation failure. Invalid audience.")
    token_tenant = claims.get("tid")
    if tenant_id and token_tenant and str(token_tenant).lower() != str(tenant_id).lower():
        raise _unauthenticated("Access token validation failure. Invalid tenant.")
    roles = claims.get("roles")
    # Entra leaves `roles` out when no application permission is consented; treat [] alike.
    if "scp" not in claims and not (isinstance(roles, list) and roles):
        raise _unauthenticated("Either scp or roles claim need to be present in the token.")
    app_id = str(claims.get("appid") or claims.get("azp") or "")
    return Caller(
        app_id=app_id,
        roles=frozenset(str(role) for role in roles) if isinstance(roles, list) else frozenset(),
        tenant_id=str(token_tenant) if token_tenant else None,
        claims=claims,
    )
