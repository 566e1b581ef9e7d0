"""App-only Entra ID tokens for Microsoft Graph through msal, over credlyctl's own transport.

Four ways to sign in (entra.auth): a client secret, a certificate, a federated token read from
a file at each sign-in (workload identity federation), or the managed identity of the Azure
host. The first three use msal's ConfidentialClientApplication, the last its
ManagedIdentityClient; all go through `MsalHttpClient`, pinned to the one origin the
credential belongs to.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from typing import Any

import httpx
import msal

from credly_connector.config.resolved import EntraSettings, NetworkSettings
from credly_connector.config.workload_identity import (
    ManagedIdentityEndpoint,
    managed_identity_endpoint,
)
from credly_connector.errors import ConfigError
from credly_connector.graph import aadsts
from credly_connector.graph.entra_credentials import (
    certificate_credential,
    federated_credential,
    managed_identity,
    split_pem,
)
from credly_connector.graph.errors import EntraAuthError, EntraUnavailable
from credly_connector.logpolicy import ensure_library_logging
from credly_connector.net.failures import describe_transport_error
from credly_connector.net.msal_adapter import DiscoveryCache, MsalHttpClient, UnreadableAnswer
from credly_connector.net.retry import Retrier, RetryPolicy, RetryStats
from credly_connector.net.stats import RequestStats
from credly_connector.net.transport import build_managed_identity_client, origin_of
from credly_connector.secrets import register_secret_value, scrub

__all__ = [
    "DiscoveryCache",
    "EntraTokenProvider",
    "decode_claims",
    "error_from_result",
    "split_pem",
]

# Identifier-like values from Entra's answer that may be shown and stored; anything else in
# an answer is free text and stays out of messages (hardening finding M1).
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_.:+ -]{1,64}$")


class EntraTokenProvider:
    """One msal application per provider, built on first use.

    With a `discovery_cache` (see net.msal_adapter), the tenant's OpenID configuration read by
    an earlier run is used instead of being fetched again: the first token request of a process
    is then its first request to Entra ID."""

    def __init__(
        self,
        settings: EntraSettings,
        http: httpx.Client,
        *,
        retrier: Retrier | None = None,
        network: NetworkSettings | None = None,
        managed_identity_http: httpx.Client | None = None,
        discovery_cache: DiscoveryCache | None = None,
    ) -> None:
        ensure_library_logging()  # msal must never print to the terminal on its own
        self.settings = settings
        self.http = http
        self.network = network
        self.request_counts = RequestStats()
        self.retry_stats = retrier.stats if retrier is not None else RetryStats()
        self._retrier = retrier or Retrier(stats=self.retry_stats)
        self._lock = threading.RLock()
        self._app: Any = None
        self._mi_http = managed_identity_http
        self._owns_mi_http = managed_identity_http is None
        self._mi_endpoint: ManagedIdentityEndpoint | None = None
        self._last_token: str | None = None
        self.last_token_source: str | None = None  # "identity_provider" or "cache"
        self._discovery_cache = discovery_cache

    # ---- public API -------------------------------------------------------------------

    @property
    def uses_managed_identity(self) -> bool:
        return self.settings.managed_identity

    def get_token(self) -> str:
        with self._lock:  # one token request at a time: threads share the cached token
            app = self._application()
            try:
                if self.uses_managed_identity:
                    result = app.acquire_token_for_client(resource=self.settings.graph_base)
                else:
                    result = app.acquire_token_for_client(scopes=[self.settings.graph_scope])
            except Exception as exc:
                raise self._transport_error(exc) from None
            if not isinstance(result, dict):
                raise EntraUnavailable("malformed", "msal returned no result for the token")
            token = result.get("access_token")
            if isinstance(token, str) and token:
                register_secret_value(token)
                self._last_token = token
                source = result.get("token_source")
                self.last_token_source = source if isinstance(source, str) else None
                return token
            if self.uses_managed_identity:
                raise managed_identity_error(result, self._mi_endpoint)
            raise error_from_result(result)

    def force_refresh(self) -> None:
        """Forget cached tokens so the next get_token asks Entra ID again."""
        with self._lock:
            self._last_token = None
            if self._app is not None and not self.uses_managed_identity:
                self._app.remove_tokens_for_client()
            elif self._app is not None:
                self._app = None  # ManagedIdentityClient has no removal: start a new cache

    def close(self) -> None:
        """Close the managed identity endpoint's session if this provider opened it."""
        with self._lock:
            http, self._mi_http = self._mi_http, None
            self._app = None
        if http is not None and self._owns_mi_http:
            http.close()

    def token_claims(self) -> dict[str, Any] | None:
        """The token's claims, decoded WITHOUT verification: for hints, never for decisions."""
        token = self._last_token or self.get_token()
        return decode_claims(token)

    def granted_roles(self) -> list[str] | None:
        claims = self.token_claims()
        if claims is None:
            return None
        roles = claims.get("roles")
        if roles is None:
            return []  # a token without `roles` means no application permission is consented
        if not isinstance(roles, list):
            return None
        return sorted(str(role) for role in roles)

    def stats(self) -> dict[str, Any]:
        return {"requests": self.request_counts.as_dict(), **self.retry_stats.as_dict()}

    # ---- msal -------------------------------------------------------------------------

    def _application(self) -> Any:
        if self._app is not None:
            return self._app
        if self.uses_managed_identity:
            self._app = self._managed_identity_client()
            return self._app
        credential = self._credential()
        try:
            self._app = msal.ConfidentialClientApplication(
                self.settings.client_id,
                client_credential=credential,
                authority=self.settings.authority,
                instance_discovery=False,  # never ask login.microsoftonline.com about hosts
                azure_region=False,  # an inherited MSAL_FORCE_REGION must not reroute us
                http_client=MsalHttpClient(
                    self.http,
                    retrier=self._retrier,
                    stats=self.request_counts,
                    # The credential goes to the authority's origin and nowhere else, whatever
                    # the discovery document says (finding L1).
                    origin=origin_of(self.settings.login_base),
                    discovery_cache=self._discovery_cache,
                ),
                token_cache=msal.TokenCache(),
            )
        except ValueError as exc:
            raise error_from_constructor(exc) from None
        except Exception as exc:
            raise self._transport_error(exc) from None
        return self._app

    def _managed_identity_client(self) -> Any:
        endpoint = managed_identity_endpoint()
        self._mi_endpoint = endpoint
        http = self._mi_http
        if http is None:
            http = build_managed_identity_client(self.network, endpoint.origin)
            self._mi_http = http
        return msal.ManagedIdentityClient(
            managed_identity(self.settings),
            http_client=MsalHttpClient(
                http,
                # Off Azure nothing answers at the instance metadata address: give up soon.
                retrier=Retrier(RetryPolicy(max_attempts=3), stats=self.retry_stats),
                stats=self.request_counts,
                origin=endpoint.origin,
                service="managed_identity",
            ),
            token_cache=msal.TokenCache(),
        )

    def _credential(self) -> Any:
        settings = self.settings
        if settings.federated_token_file is not None:
            return federated_credential(settings)
        if settings.certificate_path is not None:
            return certificate_credential(settings)
        secret = settings.client_secret
        # An empty secret is passed on: Entra then answers AADSTS7000218, which explains it.
        return secret.reveal() if secret is not None else ""

    def _where(self) -> str:
        if self.uses_managed_identity and self._mi_endpoint is not None:
            return self._mi_endpoint.origin
        return httpx.URL(self.settings.login_base).host

    def _transport_error(self, exc: BaseException) -> Exception:
        from credly_connector.errors import CredlyctlError

        if isinstance(exc, CredlyctlError):  # e.g. ForbiddenHostError, an unreadable file
            return exc
        service = "the managed identity endpoint" if self.uses_managed_identity else "Entra ID"
        host = self._where()
        if isinstance(exc, UnreadableAnswer):
            return unreadable_answer_error(exc, service, host)
        if isinstance(exc, httpx.TransportError):
            failure = describe_transport_error(exc, host, service=service)
            if self.uses_managed_identity and failure.kind == "network":
                return no_managed_identity_endpoint(host)
            return EntraUnavailable(*failure)
        if isinstance(exc, msal.exceptions.MsalServiceError) or "HTTP Error" in str(exc):
            return EntraUnavailable(
                "server",
                f"{service} at {host} failed with a server error",
                f"{service[0].upper()}{service[1:]} seems to be having problems; retry later.",
            )
        if isinstance(exc, httpx.HTTPStatusError):
            return EntraUnavailable(
                "server",
                f"{service} at {host} answered HTTP {exc.response.status_code}",
                "Retry later.",
            )
        if isinstance(exc, ValueError | TypeError) or "Key" in exc.__class__.__name__:
            # msal / PyJWT reject credentials they cannot use.
            return ConfigError(
                f"the configured Entra credential cannot be used ({exc.__class__.__name__})",
                "Check the entra section: the credential it names is not one msal can use.",
                error_id="entra.credential",
            )
        return EntraUnavailable(
            "server", f"the token request failed: {exc.__class__.__name__}", "Retry later."
        )


def unreadable_answer_error(exc: UnreadableAnswer, service: str, host: str) -> Exception:
    """A redirect or a non-JSON page where Entra ID answers JSON (findings H2, L4)."""
    what = {
        "token": "the token request",
        "discovery": "the tenant discovery request (openid-configuration)",
        "managed identity": "the managed identity token request",
    }[exc.endpoint]
    if exc.problem == "redirect":
        target = f" to {exc.location}" if exc.location else ""
        return EntraUnavailable(
            "malformed",
            f"{service} at {host} answered {what} with a redirect (HTTP {exc.status}){target}; "
            "credlyctl never follows a redirect with a credential",
            "A proxy or gateway between credlyctl and Entra ID, or a wrong entra.authority_url, "
            "sends it elsewhere: check network.proxy / HTTPS_PROXY and the authority URL.",
        )
    if exc.endpoint == "discovery":
        return EntraUnavailable(
            "malformed",
            f"{service} at {host} sent a tenant discovery document that is not complete JSON "
            f"(HTTP {exc.status}, {exc.content_type})",
            "This is usually a transient fault of the service or of a proxy; retry later.",
        )
    return EntraUnavailable(
        "malformed",
        f"{service} at {host} answered {what} with a page that is not JSON "
        f"(HTTP {exc.status}, {exc.content_type}): not an answer from Entra ID itself",
        "A proxy, firewall or captive portal probably answered instead; check network.proxy / "
        "HTTPS_PROXY and network.ca_bundle, or retry later.",
    )


def no_managed_identity_endpoint(origin: str) -> EntraUnavailable:
    return EntraUnavailable(
        "network",
        f"no managed identity endpoint answered at {origin}",
        "Managed identity works only on an Azure host with an identity assigned (VM, App "
        "Service, Functions, Container Apps, Arc). Off Azure, use a client secret, a "
        "certificate or a federated token (entra.auth).",
    )


def decode_claims(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def error_from_result(result: dict[str, Any]) -> EntraAuthError:
    """An msal error dict (Entra's JSON) as an admin-facing error.

    Only the codes and identifier-like fields are kept: Entra's description is free text that
    can echo the request (finding M1), so it never reaches a message, a log or the state.
    """
    codes = aadsts.codes_from_result(result)
    return _build(
        codes,
        _safe(result.get("error")),
        _safe(result.get("correlation_id")),
        _safe(result.get("trace_id")),
        _safe(result.get("timestamp")),
    )


def managed_identity_error(
    result: dict[str, Any], endpoint: ManagedIdentityEndpoint | None
) -> EntraAuthError:
    """The managed identity endpoint refused: identity not found, wrong resource..."""
    codes = aadsts.codes_from_result(result)
    if codes:
        return error_from_result(result)
    error = _safe(result.get("error"))
    description = result.get("error_description")
    text = description.lower() if isinstance(description, str) else ""
    hint = aadsts.managed_identity_hint(error, text)
    where = endpoint.origin if endpoint is not None else "the managed identity endpoint"
    refused = EntraAuthError(
        f"The managed identity endpoint at {where} refused the token request "
        f"({error or 'no error code'}): {hint.cause}",
        hint.fix,
        codes=[],
        error=error,
        summary=None,
        cause=hint.cause,
        fix=hint.fix,
    )
    refused.error_id = hint.error_id
    return refused


def error_from_constructor(exc: ValueError) -> Exception:
    """msal's constructor ValueError: tenant discovery failed (Entra JSON in the context)."""
    parts = [str(exc)]
    if exc.__context__ is not None:
        parts.append(str(exc.__context__))
    if exc.__cause__ is not None:
        parts.append(str(exc.__cause__))
    text = " ".join(parts)
    document = aadsts.error_document_in_text(text)
    if document is not None and (document.get("error") or document.get("error_codes")):
        return error_from_result(document)
    codes = aadsts.codes_in_text(text)
    if codes:
        return _build(codes, None, None, None, None)
    if "https" in text and ("address" in text or "authority" in text.lower()):
        return ConfigError(
            "the Entra ID authority URL is not valid (it must be https://<host>/<tenant>)",
            "Check entra.tenant_id and entra.authority_url.",
            error_id="entra.authority",
        )
    status = re.search(r"HTTP status: (\d{3})", text)
    return EntraAuthError(
        "Entra ID tenant discovery failed"
        + (f" (HTTP {status.group(1)})" if status else "")
        + ", without an AADSTS code",
        "Check entra.tenant_id and entra.cloud.",
        codes=[],
        error=None,
        summary=None,
    )


def _build(
    codes: list[int],
    error: str | None,
    correlation_id: str | None,
    trace_id: str | None,
    timestamp: str | None,
) -> EntraAuthError:
    hint = aadsts.lookup(codes)
    label = ", ".join([*(f"AADSTS{c}" for c in codes[:3]), *([error] if error else [])])
    if hint is not None:
        message = f"Entra ID refused the token request ({label}): {hint.cause}"
        fix = hint.fix
    else:
        message = f"Entra ID refused the token request ({label or 'no error code'})"
        lookup = f"?code={codes[0]}" if codes else ""
        fix = f"Look the code up at https://login.microsoftonline.com/error{lookup}."
    ids = {"correlation_id": correlation_id, "trace_id": trace_id, "timestamp": timestamp}
    support = ", ".join(f"{name}={value}" for name, value in ids.items() if value)
    full_hint = f"{fix} Support details: {support}." if support else fix
    cause = hint.cause if hint else None
    return EntraAuthError(
        message, full_hint, codes=codes, error=error, summary=None, cause=cause, fix=fix, **ids
    )


def _safe(value: Any) -> str | None:
    """An identifier-like string from a token answer, scrubbed; None for anything else."""
    if not isinstance(value, str) or not _SAFE_WORD.match(value.strip()):
        return None
    cleaned = scrub(value.strip())
    return cleaned if "***" not in cleaned else None
