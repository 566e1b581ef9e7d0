"""Simulated workload identities: a federated token issuer and a managed identity endpoint.

Federated tokens (workload identity federation): the simulator plays the external identity
provider too (a CI system or a Kubernetes cluster). `FederatedIssuers` signs tokens for any
issuer URL with a per-run RSA key; the Entra token endpoint checks a presented token against
the app's federated identity credentials (issuer, subject, audience) and that key.

Managed identity: `ManagedIdentityService` answers like the two endpoints msal reaches on
Azure, on its own port on 127.0.0.1: the App Service style (`GET /msi/token`, api-version
2019-08-01, secret `X-IDENTITY-HEADER`, answer with `expires_on`), which msal uses when
IDENTITY_ENDPOINT and IDENTITY_HEADER are set, and the VM instance metadata style
(`GET /metadata/identity/oauth2/token`, api-version 2018-02-01, header `Metadata: true`,
answer with `expires_in`), which msal uses otherwise, at AZURE_POD_IDENTITY_AUTHORITY_HOST.
Sources and inferences: docs/simulator.md ("Workload identities").
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from credly_connector.simulator.core import SimRequest, SimResponse, TokenStore
from credly_connector.simulator.directory import Directory

FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class FederatedIssuers:
    """One RSA key per issuer URL, made on first use: signs and verifies RS256 tokens."""

    def __init__(self, clock: Any = time.time) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self.clock = clock

    def _key(self, issuer: str) -> rsa.RSAPrivateKey:
        with self._lock:
            key = self._keys.get(issuer)
            if key is None:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                self._keys[issuer] = key
            return key

    def token(
        self,
        *,
        issuer: str,
        subject: str,
        audience: str = FEDERATED_AUDIENCE,
        lifetime_seconds: float = 600,
        issued_seconds_ago: float = 0,
        signed_by: str | None = None,
    ) -> str:
        """A JWT as the issuer would mint it; `signed_by` another issuer's key forges one."""
        now = int(self.clock() - issued_seconds_ago)
        header = {"alg": "RS256", "typ": "JWT", "kid": f"sim-{abs(hash(issuer)) % 10**8}"}
        claims = {
            "iss": issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": int(now + lifetime_seconds),
            "jti": str(uuid.uuid4()),
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = self._key(signed_by or issuer).sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"

    def verifies(self, issuer: str, token: str) -> bool:
        with self._lock:
            key = self._keys.get(issuer)
        if key is None:
            return False  # an issuer whose keys the simulated tenant cannot fetch
        head, body, signature = token.split(".")
        try:
            key.public_key().verify(
                _b64url_decode(signature),
                f"{head}.{body}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            return False
        return True


class ManagedIdentityService:
    """The identity endpoint of an Azure host with managed identities (see module doc)."""

    name = "managed-identity"

    def __init__(
        self,
        directory: Directory,
        tokens: TokenStore,
        identities: list[dict[str, Any]],
        graph_root: str,
        lifetime: Any,
    ) -> None:
        self.directory = directory
        self.tokens = tokens
        self.identities = [dict(i) for i in identities]
        self.graph_root = graph_root.rstrip("/")
        self.lifetime = lifetime  # () -> seconds, the Entra token lifetime fault
        self.identity_header = "sim-identity-header-" + secrets.token_hex(12)

    def handle(self, request: SimRequest) -> SimResponse:
        if request.method != "GET":
            return SimResponse.json(405, {"error": "method_not_allowed"}, {"Allow": "GET"})
        path = request.path.rstrip("/")
        if path == "/msi/token":
            return self._app_service(request)
        if path == "/metadata/identity/oauth2/token":
            return self._imds(request)
        return SimResponse.json(404, {"error": "not_found"})

    # -- the two endpoint styles ---------------------------------------------------------------

    def _app_service(self, request: SimRequest) -> SimResponse:
        # [inferred] the answers' exact wording; the shape is App Service's REST reference.
        if request.header("x-identity-header") != self.identity_header:
            return SimResponse.json(
                401,
                {"statusCode": 401, "message": "Unauthorized: missing or wrong X-IDENTITY-HEADER."},
            )
        identity = self._identity(request, "mi_res_id")
        if identity is None:
            return SimResponse.json(
                400,
                {
                    "statusCode": 400,
                    "message": "No managed identity found for the specified client_id, "
                    "object_id or mi_res_id.",
                },
            )
        resource = request.first("resource") or ""
        if not self._known_resource(resource):
            return SimResponse.json(
                400,
                {"statusCode": 400, "message": f"AADSTS500011: resource {resource} not found."},
            )
        token, lifetime = self._issue(identity)
        return SimResponse.json(
            200,
            {
                "access_token": token,
                "expires_on": str(int(time.time() + lifetime)),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity["client_id"],
            },
        )

    def _imds(self, request: SimRequest) -> SimResponse:
        # learn.microsoft.com, how-to-use-vm-token: Metadata header required; 400 "Identity
        # not found" for an identity not assigned to the VM; AAD errors passed through.
        if (request.header("metadata") or "").lower() != "true":
            return SimResponse.json(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "Required metadata header not specified",
                },
            )
        identity = self._identity(request, "msi_res_id")
        if identity is None:
            return SimResponse.json(
                400, {"error": "invalid_request", "error_description": "Identity not found"}
            )
        resource = request.first("resource") or ""
        if not self._known_resource(resource):
            return SimResponse.json(
                400,
                {
                    "error": "invalid_resource",
                    "error_description": f"AADSTS500011: The resource principal named {resource} "
                    "was not found in the tenant.",
                },
            )
        token, lifetime = self._issue(identity)
        now = int(time.time())
        return SimResponse.json(
            200,
            {
                "access_token": token,
                "expires_in": str(int(lifetime)),
                "expires_on": str(now + int(lifetime)),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity["client_id"],
            },
        )

    # -- shared ---------------------------------------------------------------------------------

    def _identity(self, request: SimRequest, resource_key: str) -> dict[str, Any] | None:
        client_id = request.first("client_id")
        object_id = request.first("object_id") or request.first("principal_id")
        resource_id = request.first(resource_key)
        for identity in self.identities:
            if client_id and str(identity.get("client_id", "")).lower() == client_id.lower():
                return identity
            if object_id and str(identity.get("object_id", "")).lower() == object_id.lower():
                return identity
            if resource_id and str(identity.get("resource_id", "")).lower() == resource_id.lower():
                return identity
        if client_id or object_id or resource_id:
            return None
        return next((i for i in self.identities if i.get("system_assigned")), None)

    def _known_resource(self, resource: str) -> bool:
        resource = resource.rstrip("/").removesuffix("/.default").lower()
        return resource in {self.graph_root.lower(), "00000003-0000-0000-c000-000000000000"}

    def _issue(self, identity: dict[str, Any]) -> tuple[str, float]:
        lifetime = float(self.lifetime())
        object_id = str(
            identity.get("object_id") or uuid.uuid5(uuid.NAMESPACE_URL, str(identity["client_id"]))
        )
        claims: dict[str, Any] = {
            "aud": self.graph_root,
            "iss": f"https://sts.windows.net/{self.directory.tenant_id}/",
            "tid": self.directory.tenant_id,
            "appid": identity["client_id"],
            "app_displayname": identity.get("display_name", ""),
            "idtyp": "app",
            "oid": object_id,
            "sub": object_id,
            "xms_mirid": identity.get("resource_id", ""),
            "ver": "1.0",
        }
        roles = [str(r) for r in identity.get("roles", [])]
        if roles:
            claims["roles"] = roles
        return self.tokens.issue(claims, lifetime), lifetime
