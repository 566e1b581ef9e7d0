"""Simulated Entra ID: tenant discovery and the v2.0 token endpoint for client credentials.

Answers the way ../shared/reference/entra-msal.md (§1.2, §2) says Entra does: an error JSON
whose `error_description` starts with "AADSTSnnnn:", with error_codes, timestamp, trace_id,
correlation_id (echoing the client's `client-request-id`) and error_uri; 401 for
`invalid_client`, 400 for the rest.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from credly_connector.simulator.core import SimRequest, SimResponse, TokenStore
from credly_connector.simulator.directory import Directory
from credly_connector.simulator.knobs import Knobs
from credly_connector.simulator.workload import FederatedIssuers

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SKEW_SECONDS = 300
# The real Graph hosts of each Microsoft cloud; a scope naming another cloud's host is a
# resource that does not exist in this tenant (AADSTS500011).
CLOUD_GRAPH_HOSTS = {
    "global": "https://graph.microsoft.com",
    "usgov": "https://graph.microsoft.us",
    "usgovdod": "https://dod-graph.microsoft.us",
    "china": "https://microsoftgraph.chinacloudapi.cn",
}


class EntraError(Exception):
    def __init__(self, status: int, error: str, code: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.error = error
        self.code = code
        self.text = text


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _digest(thumbprint: Any) -> bytes | None:
    """A thumbprint's bytes; clients send base64url or padded standard base64 (msal does)."""
    if not isinstance(thumbprint, str) or not thumbprint:
        return None
    text = thumbprint.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return _b64url_decode(text)
    except (ValueError, binascii.Error):
        return None


def _end_passed(value: Any, now: float) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp() <= now


class EntraService:
    name = "entra"

    def __init__(
        self,
        directory: Directory,
        tokens: TokenStore,
        scenario: dict[str, Any],
        graph_root: str,
        faults: Knobs,
        clock: Any = time.time,
        issuers: FederatedIssuers | None = None,
    ) -> None:
        self.issuers = issuers or FederatedIssuers(clock)
        self.directory = directory
        self.tokens = tokens
        self.graph_root = graph_root.rstrip("/")
        self.faults = faults
        self.clock = clock
        self.cloud = str(scenario.get("cloud", "global"))
        tenant = directory.tenant_id.lower()
        self._aliases = {tenant, *(str(d).lower() for d in scenario.get("domains", []))}
        self._other_cloud = {
            str(t).lower(): "Microsoft Azure Government"
            for t in scenario.get("other_cloud_tenants", [])
        }

    # -- routing ------------------------------------------------------------------------------

    def handle(self, request: SimRequest) -> SimResponse:
        parts = [p for p in request.path.split("/") if p]
        try:
            if parts == ["common", "discovery", "instance"] and request.method == "GET":
                return self._instance_discovery(request)
            if (
                len(parts) >= 2
                and request.method == "GET"
                and parts[1:]
                == [
                    "v2.0",
                    ".well-known",
                    "openid-configuration",
                ]
            ):
                return self._openid_configuration(request, parts[0])
            if (
                len(parts) >= 2
                and request.method == "GET"
                and parts[1:]
                == [
                    "discovery",
                    "v2.0",
                    "keys",
                ]
            ):
                self._tenant(parts[0])
                return SimResponse.json(200, {"keys": []})
            if parts[1:] == ["oauth2", "v2.0", "token"] and request.method == "POST":
                return self._token(request, parts[0])
        except EntraError as err:
            return self._error(request, err)
        return SimResponse.json(404, {"error": "not_found"})

    def _tenant(self, segment: str) -> str:
        key = segment.lower()
        if key in self._aliases:
            return self.directory.tenant_id
        if key in self._other_cloud:
            raise EntraError(
                400,
                "invalid_request",
                90038,
                f"NationalCloudTenantRedirection - The specified tenant '{segment}' belongs to "
                f"the National Cloud '{self._other_cloud[key]}'. Current cloud instance "
                "'Microsoft Azure Public' does not federate with it. Please use the login "
                "endpoint of that cloud.",
            )
        raise EntraError(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.",
        )

    # -- discovery ----------------------------------------------------------------------------

    def _instance_discovery(self, request: SimRequest) -> SimResponse:
        host = request.base_url.split("://", 1)[-1]
        endpoint = request.first("authorization_endpoint") or ""
        tenant = "common"
        if endpoint.startswith(request.base_url + "/"):
            tenant = endpoint[len(request.base_url) + 1 :].split("/", 1)[0] or "common"
        return SimResponse.json(
            200,
            {
                "tenant_discovery_endpoint": (
                    f"{request.base_url}/{tenant}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            },
        )

    def _openid_configuration(self, request: SimRequest, segment: str) -> SimResponse:
        tid = self._tenant(segment)
        base = f"{request.base_url}/{tid}"
        return SimResponse.json(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "tenant_region_scope": "NA",
                "cloud_instance_name": "microsoftonline.com",
                "msgraph_host": self.graph_root.split("://", 1)[-1],
            },
        )

    # -- token --------------------------------------------------------------------------------

    def _token(self, request: SimRequest, segment: str) -> SimResponse:
        stand_in = self._stand_in(request)
        if stand_in is not None:
            return stand_in
        tid = self._tenant(segment)
        form = request.form()
        _basic_client_auth(request, form)
        grant = form.get("grant_type", "")
        if not grant:
            raise _missing("grant_type")
        if grant != "client_credentials":
            raise EntraError(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type for this simulated tenant.",
            )
        client_id = form.get("client_id", "").strip()
        if not client_id:
            raise _missing("client_id")
        app = self.directory.app(client_id)
        if app is None:
            raise EntraError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tid}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You "
                "may have sent your authentication request to the wrong tenant.",
            )
        if app.get("enabled", True) is False:
            raise EntraError(
                400,
                "unauthorized_client",
                7000112,
                f"Application '{app['app_id']}'({app.get('display_name', '')}) is disabled.",
            )
        secret = form.get("client_secret", "")
        assertion = form.get("client_assertion", "")
        if assertion:
            self._check_assertion(request, app, form, tid)
        elif secret:
            self._check_secret(app, secret)
        else:
            raise EntraError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        self._check_scope(form.get("scope", ""), tid)
        lifetime = int(self.faults.get("entra_token_lifetime_seconds"))
        claims: dict[str, Any] = {
            "aud": self.graph_root,
            "iss": f"https://sts.windows.net/{tid}/",
            "tid": tid,
            "appid": app["app_id"],
            "app_displayname": app.get("display_name", ""),
            "idtyp": "app",
            "oid": app.get("service_principal_id")
            or str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{app['app_id']}")),
            "ver": "1.0",
        }
        claims["sub"] = claims["oid"]
        roles = [str(r) for r in app.get("roles", [])]
        if roles:  # Entra omits the claim when no application permission is consented
            claims["roles"] = roles
        token = self.tokens.issue(claims, lifetime)
        return SimResponse.json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            },
            {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    def _stand_in(self, request: SimRequest) -> SimResponse | None:
        """Fault `entra_token_answer`: what a proxy, gateway or portal in front answers."""
        answer = str(self.faults.get("entra_token_answer"))
        echoed = request.body.decode("utf-8", "replace")
        if answer == "echo_text":
            return SimResponse(
                400, f"bad request: {echoed}".encode(), {"Content-Type": "text/plain"}
            )
        if answer == "echo_aadsts":
            return SimResponse.json(
                400,
                {
                    "error": "weird_error",
                    "error_description": f"AADSTS99999: Something went wrong: {echoed}",
                    "error_codes": [99999],
                },
            )
        if answer == "html_200":
            page = "<html><body>Sign in to the guest network to continue.</body></html>"
            return SimResponse(200, page.encode(), {"Content-Type": "text/html"})
        if answer == "redirect_307":
            return SimResponse.empty(307, {"Location": "https://127.0.0.2:9/oauth2/v2.0/token"})
        return None

    def _check_secret(self, app: dict[str, Any], presented: str) -> None:
        now = self.clock()
        for entry in app.get("secrets", []):
            if secrets.compare_digest(str(entry.get("value", "")).encode(), presented.encode()):
                if _end_passed(entry.get("end_date"), now):
                    raise EntraError(
                        401,
                        "invalid_client",
                        7000222,
                        f"The provided client secret keys for app '{app['app_id']}' are "
                        "expired. Create new keys for your app, or consider using "
                        "certificate credentials for added security.",
                    )
                return
        # Also the answer when the secret's ID was pasted instead of its value.
        raise EntraError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is "
            f"the client secret value, not the client secret ID, for a secret added to app "
            f"'{app['app_id']}'.",
        )

    def _check_scope(self, scope: str, tid: str) -> None:
        scopes = scope.split()
        if not scopes:
            raise _missing("scope")
        for item in scopes:
            if not item.endswith("/.default"):
                raise EntraError(
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {item} is not valid. Client credential "
                    "flows must have a scope value with /.default suffixed to the resource "
                    "identifier (application ID URI).",
                )
            resource = item[: -len("/.default")].rstrip("/")
            known = {self.graph_root, GRAPH_APP_ID, CLOUD_GRAPH_HOSTS.get(self.cloud, "")}
            if resource.lower() not in {k.lower() for k in known if k}:
                raise EntraError(
                    400,
                    "invalid_resource",
                    500011,
                    f"The resource principal named {resource} was not found in the tenant "
                    f"named {tid}. This can happen if the application has not been installed "
                    "by the administrator of the tenant or consented to by any user in the "
                    "tenant. You might have sent your authentication request to the wrong "
                    "tenant.",
                )

    def _check_assertion(
        self, request: SimRequest, app: dict[str, Any], form: dict[str, str], tid: str
    ) -> None:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise EntraError(
                400,
                "invalid_request",
                50027,
                "Invalid JWT token: client_assertion_type is missing or not supported.",
            )
        try:
            head_b64, body_b64, sig_b64 = form["client_assertion"].split(".")
            header = json.loads(_b64url_decode(head_b64))
            claims = json.loads(_b64url_decode(body_b64))
            signature = _b64url_decode(sig_b64)
        except (ValueError, binascii.Error) as exc:
            raise EntraError(
                400, "invalid_request", 50027, "Invalid JWT token. The token is malformed."
            ) from exc
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise EntraError(400, "invalid_request", 50027, "Invalid JWT token.")
        if str(claims.get("iss", "")).lower() != str(app["app_id"]).lower():
            # Not self-issued by the app (a certificate assertion): a token from an external
            # identity provider, exchanged through the app's federated identity credentials.
            self._check_federated(app, form["client_assertion"], claims)
            return
        thumb_sha1 = _digest(header.get("x5t"))
        thumb_sha256 = _digest(header.get("x5t#S256"))
        certificate = None
        for entry in app.get("certificates", []):
            if entry.get("registered", True) is False:
                continue
            if (thumb_sha256 and _digest(entry.get("x5t#S256")) == thumb_sha256) or (
                thumb_sha1 and _digest(entry.get("x5t")) == thumb_sha1
            ):
                certificate = entry
                break
        presented = str(header.get("x5t#S256") or header.get("x5t") or "none")
        if certificate is None:
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not "
                f"registered on application. [Reason - The key was not found., Thumbprint of "
                f"key used by client: '{presented}']",
            )
        cert = x509.load_pem_x509_certificate(str(certificate["public_pem"]).encode())
        key = cert.public_key()
        signed = f"{head_b64}.{body_b64}".encode()
        alg = header.get("alg")
        try:
            if not isinstance(key, rsa.RSAPublicKey):
                raise InvalidSignature
            if alg == "RS256":
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            elif alg == "PS256":
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                key.verify(signature, signed, pss, hashes.SHA256())
            else:
                raise InvalidSignature
        except InvalidSignature as exc:
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation. [Reason - The provided "
                f"signature value did not match the expected signature value., Thumbprint "
                f"of key used by client: '{presented}']",
            ) from exc
        now = self.clock()
        if _end_passed(certificate.get("end_date"), now):
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "The certificate used to sign the client assertion has expired.",
            )
        client_id = str(app["app_id"]).lower()
        if str(claims.get("iss", "")).lower() != client_id or (
            str(claims.get("sub", "")).lower() != client_id
        ):
            raise EntraError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        audiences = claims.get("aud")
        audience_list = audiences if isinstance(audiences, list) else [audiences]
        valid_audiences = {
            f"{request.base_url}/{alias}/oauth2/v2.0/token".lower()
            for alias in (*self._aliases, tid)
        }
        if not any(str(a).lower() in valid_audiences for a in audience_list):
            raise EntraError(
                401,
                "invalid_client",
                700023,
                "Client assertion audience claim does not match Realm issuer.",
            )
        _check_time_window(claims, now)

    def _check_federated(self, app: dict[str, Any], token: str, claims: dict[str, Any]) -> None:
        """Workload identity federation: the token must match one federated credential.

        Codes per docs/simulator.md: 70021 (the app has none), 700211 issuer, 700213 subject,
        700212 audience, 50027 signature, 700024 time. [inferred] the order of the checks.
        """
        issuer = str(claims.get("iss", ""))
        subject = str(claims.get("sub", ""))
        audiences = claims.get("aud")
        presented = audiences if isinstance(audiences, list) else [audiences]
        described = (
            f"Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion "
            f"Audience: '{', '.join(str(a) for a in presented)}'."
        )
        credentials = [c for c in app.get("federated_credentials", []) if isinstance(c, dict)]
        if not credentials:
            raise EntraError(
                400,
                "invalid_request",
                70021,
                f"No matching federated identity record found for presented assertion. {described}",
            )
        by_issuer = [c for c in credentials if str(c.get("issuer", "")) == issuer]
        if not by_issuer:
            raise EntraError(
                400,
                "invalid_client",
                700211,
                f"No matching federated identity record found for presented assertion issuer "
                f"'{issuer}'. Please check your federated identity credential Subject, Audience "
                "and Issuer against the presented assertion.",
            )
        by_subject = [c for c in by_issuer if str(c.get("subject", "")) == subject]
        if not by_subject:
            raise EntraError(
                400,
                "invalid_client",
                700213,
                f"No matching federated identity record found for presented assertion subject "
                f"'{subject}'. Please check your federated identity credential Subject, Audience "
                "and Issuer against the presented assertion.",
            )
        if not any(
            str(a) in [str(x) for x in c.get("audiences", [])]
            for c in by_subject
            for a in presented
        ):
            raise EntraError(
                400,
                "invalid_client",
                700212,
                f"No matching federated identity record found for presented assertion audience "
                f"'{', '.join(str(a) for a in presented)}'. Please check your federated identity "
                "credential Subject, Audience and Issuer against the presented assertion.",
            )
        if not self.issuers.verifies(issuer, token):
            raise EntraError(
                400,
                "invalid_request",
                50027,
                "Invalid JWT token. The token signature could not be validated with the "
                "issuer's published keys.",
            )
        _check_time_window(claims, self.clock())

    # -- errors -------------------------------------------------------------------------------

    def _error(self, request: SimRequest, err: EntraError) -> SimResponse:
        correlation = request.header("client-request-id") or str(uuid.uuid4())
        trace = str(uuid.uuid4())
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{err.code}: {err.text} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {stamp}"
        )
        return SimResponse.json(
            err.status,
            {
                "error": err.error,
                "error_description": description,
                "error_codes": [err.code],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"{request.base_url}/error?code={err.code}",
            },
            {"client-request-id": correlation},
        )


def _check_time_window(claims: dict[str, Any], now: float) -> None:
    """Certificate assertions and federated tokens alike: 700024 outside nbf..exp (±5 min)."""
    exp = claims.get("exp")
    nbf = claims.get("nbf", claims.get("iat", now))
    if (
        not isinstance(exp, int | float)
        or not isinstance(nbf, int | float)
        or not (nbf - ASSERTION_SKEW_SECONDS <= now <= exp + ASSERTION_SKEW_SECONDS)
    ):
        raise EntraError(
            401,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        )


def _basic_client_auth(request: SimRequest, form: dict[str, str]) -> None:
    """client_secret_basic, which the discovery document advertises: id and secret in Basic."""
    scheme, _, encoded = (request.header("authorization") or "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return
    user, _, password = decoded.partition(":")
    form.setdefault("client_id", unquote_plus(user))
    if password and not form.get("client_secret"):
        form["client_secret"] = unquote_plus(password)


def _missing(parameter: str) -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{parameter}'.",
    )
