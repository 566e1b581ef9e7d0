"""App-only Entra ID tokens for Microsoft Graph through msal, over credlyctl's own transport."""

from __future__ import annotations

import base64
import json
import re
import threading
from typing import Any

import httpx
import msal

from credly_connector.config.resolved import EntraSettings
from credly_connector.errors import ConfigError
from credly_connector.graph import aadsts
from credly_connector.graph.errors import EntraAuthError, EntraUnavailable
from credly_connector.net.failures import describe_transport_error
from credly_connector.net.msal_adapter import MsalHttpClient
from credly_connector.net.retry import Retrier, RetryStats
from credly_connector.net.stats import RequestStats
from credly_connector.secrets import register_secret_value, scrub

_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----[A-Za-z0-9+/=\s:,\-]*?-----END \1-----", re.DOTALL
)


class EntraTokenProvider:
    """One msal ConfidentialClientApplication per provider, built on first use."""

    def __init__(
        self,
        settings: EntraSettings,
        http: httpx.Client,
        *,
        retrier: Retrier | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.request_counts = RequestStats()
        self.retry_stats = retrier.stats if retrier is not None else RetryStats()
        self._retrier = retrier or Retrier(stats=self.retry_stats)
        self._lock = threading.RLock()
        self._app: Any = None
        self._last_token: str | None = None
        self.last_token_source: str | None = None  # "identity_provider" or "cache"

    # ---- public API -------------------------------------------------------------------

    def get_token(self) -> str:
        with self._lock:  # one token request at a time: threads share the cached token
            app = self._application()
            try:
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
            raise error_from_result(result)

    def force_refresh(self) -> None:
        """Forget cached tokens so the next get_token asks Entra ID again."""
        with self._lock:
            self._last_token = None
            if self._app is not None:
                self._app.remove_tokens_for_client()

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
        credential = self._credential()
        try:
            self._app = msal.ConfidentialClientApplication(
                self.settings.client_id,
                client_credential=credential,
                authority=self.settings.authority,
                instance_discovery=False,  # never ask login.microsoftonline.com about hosts
                azure_region=False,  # an inherited MSAL_FORCE_REGION must not reroute us
                http_client=MsalHttpClient(
                    self.http, retrier=self._retrier, stats=self.request_counts
                ),
                token_cache=msal.TokenCache(),
            )
        except ValueError as exc:
            raise error_from_constructor(exc) from None
        except Exception as exc:
            raise self._transport_error(exc) from None
        return self._app

    def _credential(self) -> str | dict[str, str]:
        settings = self.settings
        if settings.certificate_path is not None:
            try:
                text = settings.certificate_path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"the certificate file {settings.certificate_path} cannot be read "
                    f"({exc.__class__.__name__})",
                    "entra.certificate_path must name a PEM file holding the private key and "
                    "the certificate.",
                    error_id="entra.certificate_file",
                ) from None
            key, cert = split_pem(text)
            if key is None or cert is None:
                missing = "private key" if key is None else "certificate"
                raise ConfigError(
                    f"the PEM file {settings.certificate_path} has no {missing}",
                    "Put both the private key and the public certificate in that PEM file "
                    "(e.g. cat key.pem cert.pem > credlyctl.pem).",
                    error_id="entra.certificate_file",
                )
            register_secret_value(key)
            credential = {"private_key": key, "public_certificate": cert}
            if settings.certificate_password is not None:
                credential["passphrase"] = settings.certificate_password.reveal()
            return credential
        secret = settings.client_secret
        # An empty secret is passed on: Entra then answers AADSTS7000218, which explains it.
        return secret.reveal() if secret is not None else ""

    def _transport_error(self, exc: BaseException) -> Exception:
        if isinstance(exc, EntraAuthError | EntraUnavailable | ConfigError):
            return exc
        from credly_connector.errors import CredlyctlError

        if isinstance(exc, CredlyctlError):  # e.g. ForbiddenHostError from the host guard
            return exc
        host = httpx.URL(self.settings.login_base).host
        if isinstance(exc, httpx.TransportError):
            return EntraUnavailable(*describe_transport_error(exc, host, service="Entra ID"))
        if isinstance(exc, msal.exceptions.MsalServiceError) or "HTTP Error" in str(exc):
            return EntraUnavailable(
                "server",
                f"Entra ID at {host} failed: {scrub(str(exc))[:200]}",
                "Entra ID seems to be having problems; retry later.",
            )
        if isinstance(exc, ValueError | TypeError) or "Key" in exc.__class__.__name__:
            # msal / PyJWT reject credentials they cannot use: an unreadable or non-RSA key,
            # a wrong passphrase.
            return ConfigError(
                f"the configured Entra credential cannot be used ({exc.__class__.__name__})",
                "The certificate PEM must hold an RSA private key and its certificate; check "
                "entra.certificate_path and entra.certificate_password.",
                error_id="entra.credential",
            )
        return EntraUnavailable(
            "server", f"the token request failed: {exc.__class__.__name__}", "Retry later."
        )


def split_pem(text: str) -> tuple[str | None, str | None]:
    """The private key block and the certificate block(s) of a PEM bundle."""
    key: str | None = None
    certs: list[str] = []
    for match in _PEM_BLOCK.finditer(text):
        label = match.group(1)
        if "PRIVATE KEY" in label and key is None:
            key = match.group(0).strip() + "\n"
        elif label == "CERTIFICATE":
            certs.append(match.group(0).strip() + "\n")
    return key, ("".join(certs) if certs else None)


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
    """An msal error dict (Entra's JSON) as an admin-facing error."""
    codes = aadsts.codes_from_result(result)
    error = result.get("error") if isinstance(result.get("error"), str) else None
    description = result.get("error_description")
    summary = aadsts.first_line(description if isinstance(description, str) else None)
    summary = scrub(summary) if summary else None
    return _build(
        codes,
        error,
        summary,
        _text(result.get("correlation_id")),
        _text(result.get("trace_id")),
        _text(result.get("timestamp")),
    )


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
        return _build(codes, None, None, None, None, None)
    if "https" in text and ("address" in text or "authority" in text.lower()):
        return ConfigError(
            "the Entra ID authority URL is not valid (it must be https://<host>/<tenant>)",
            "Check entra.tenant_id and entra.authority_url.",
            error_id="entra.authority",
        )
    return EntraAuthError(
        f"Entra ID tenant discovery failed: {scrub(text)[:300]}",
        "Check entra.tenant_id and entra.cloud.",
        codes=[],
        error=None,
        summary=None,
    )


def _build(
    codes: list[int],
    error: str | None,
    summary: str | None,
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
        if summary:
            message += f": {summary}"
        fix = "Look the code up at https://login.microsoftonline.com/error?code=<code>."
    ids = {"correlation_id": correlation_id, "trace_id": trace_id, "timestamp": timestamp}
    support = ", ".join(f"{name}={value}" for name, value in ids.items() if value)
    full_hint = f"{fix} Support details: {support}." if support else fix
    cause = hint.cause if hint else None
    return EntraAuthError(
        message, full_hint, codes=codes, error=error, summary=summary, cause=cause, fix=fix, **ids
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
