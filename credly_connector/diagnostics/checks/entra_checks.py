"""Entra ID checks: an app-only token can be had, and when its credential expires."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from credly_connector.config.resolved import InstanceSettings
from credly_connector.diagnostics.checks._common import EXPIRY_FINDINGS, findings, settings_or_skip
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import CheckResult, error, fail, ok, warn
from credly_connector.diagnostics.registry import register
from credly_connector.errors import CredlyctlError

EXPIRY_WARNING_DAYS = 30
PERM_APPLICATIONS = "Application.Read.All"
_CERT_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


@register(
    "entra.token",
    "Entra ID app-only token",
    scope="connection",
    cause="Entra ID refuses the token request: unknown tenant, app not in this tenant, wrong "
    "secret (often the secret ID pasted instead of its value), expired secret, no credential, "
    "certificate not registered or its password wrong, disabled app, another Microsoft cloud; "
    "a federated token that no federated credential matches (issuer, subject, audience), "
    "expired or unreadable; a managed identity that is not assigned to the host, or no "
    "managed identity endpoint (not on Azure).",
    fix="Follow the fix printed for the AADSTS code; give support the correlation id, trace id "
    "and timestamp shown.",
)
def entra_token(ctx: DiagnosticContext) -> CheckResult:
    from credly_connector.graph.errors import EntraAuthError

    settings = settings_or_skip(ctx)
    if not isinstance(settings, InstanceSettings):
        return settings
    entra = settings.entra
    evidence: dict[str, Any] = {
        "tenant_id": entra.tenant_id,
        "client_id": entra.client_id,
        "cloud": str(entra.cloud),
        "authority": entra.authority,
        "credential": entra.credential_kind,
    }
    if entra.client_secret is not None:
        evidence["secret"] = entra.client_secret.describe()
    evidence.update(_workload_identity_evidence(entra))
    try:
        ctx.sign_in()
    except EntraAuthError as exc:
        evidence.update(
            codes=[f"AADSTS{c}" for c in exc.codes],
            error=exc.error,
            **exc.support_details(),
        )
        cause = f"AADSTS{exc.codes[0]}" if exc.codes else "entra_token_refused"
        return fail(exc.message, exc.hint or exc.fix or "", evidence=evidence, cause=cause)
    except CredlyctlError as exc:
        kind = getattr(exc, "kind", None)
        evidence["error"] = exc.error_id or type(exc).__name__
        if kind is not None and kind != "tls" and exc.exit_code == 3:
            return error(exc.message, exc.hint, evidence=evidence, remote_failure=True)
        return fail(exc.message, exc.hint, evidence=evidence, cause="entra_token_refused")
    claims = _claims(ctx)
    if claims:
        evidence["token_tenant"] = claims.get("tid")
        evidence["token_app_id"] = claims.get("appid") or claims.get("azp")
        evidence["audience"] = claims.get("aud")
        tid = claims.get("tid")
        if (
            isinstance(tid, str)
            and tid.lower() != entra.tenant_id.lower()
            and _is_guid(entra.tenant_id)
        ):
            return warn(
                f"The token was issued by tenant {tid}, not the configured {entra.tenant_id}.",
                "Check entra.tenant_id.",
                evidence=evidence,
                cause="entra_tenant_mismatch",
            )
    return ok(
        f"Entra ID issued an app-only token for app {entra.client_id} in tenant {entra.tenant_id}.",
        evidence=evidence,
    )


def _workload_identity_evidence(entra: Any) -> dict[str, Any]:
    """What a federated token or a managed identity looks like from here (no secret in it).

    A federated token's issuer, subject and audience are what Entra compares with the app's
    federated credentials, so showing them next to AADSTS700211/700212/700213 is the fix.
    """
    from credly_connector.graph.auth import decode_claims

    evidence: dict[str, Any] = {}
    if entra.federated_token_file is not None:
        evidence["federated_token_file"] = str(entra.federated_token_file)
        try:
            text = entra.federated_token_file.read_text(encoding="utf-8-sig").strip()
        except (OSError, UnicodeDecodeError):
            return evidence
        claims = decode_claims(text) or {}
        audience = claims.get("aud")
        evidence["assertion_issuer"] = claims.get("iss")
        evidence["assertion_subject"] = claims.get("sub")
        evidence["assertion_audience"] = (
            ", ".join(str(a) for a in audience) if isinstance(audience, list) else audience
        )
        expires = claims.get("exp")
        if isinstance(expires, int | float):
            evidence["assertion_expires"] = datetime.fromtimestamp(expires, UTC).isoformat()
    if entra.managed_identity:
        from credly_connector.config.workload_identity import managed_identity_endpoint

        evidence["managed_identity"] = entra.managed_identity_client_id or "system-assigned"
        try:
            endpoint = managed_identity_endpoint()
        except CredlyctlError:
            return evidence
        evidence["identity_endpoint"] = f"{endpoint.source} at {endpoint.origin}"
    return evidence


def _is_guid(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", value))


def _claims(ctx: DiagnosticContext) -> dict[str, Any] | None:
    try:
        return ctx.token_claims()
    except CredlyctlError:
        return None


def _parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _certificate_end(path: Path) -> date | None:
    from cryptography import x509

    data = path.read_bytes()
    blocks = _CERT_BLOCK.findall(data)
    if not blocks:
        return None
    ends = [x509.load_pem_x509_certificate(b).not_valid_after_utc.date() for b in blocks]
    return min(ends)


def _verdict(
    what: str, expires: date, today: date, fix: str, evidence: dict[str, Any]
) -> CheckResult:
    left = (expires - today).days
    evidence = {**evidence, "expires": expires.isoformat(), "days_left": left}
    if left < 0:
        return fail(
            f"{what} expired on {expires.isoformat()}.",
            fix,
            evidence=evidence,
            cause="entra_secret_expired",
        )
    if left <= EXPIRY_WARNING_DAYS:
        return warn(
            f"{what} expires on {expires.isoformat()} ({left} days left).",
            fix,
            evidence=evidence,
            cause="entra_secret_expiring",
        )
    return ok(f"{what} is valid until {expires.isoformat()} ({left} days left).", evidence=evidence)


_SECRET_FIX = (
    "In the Entra admin center > App registrations > the app > Certificates & secrets, create a "
    "new client secret, put its value (not its ID) in entra.client_secret, and record its end "
    "date in entra.client_secret_expires."
)


@register(
    "entra.secret_expiry",
    "Entra ID credential expiry",
    scope="connection",
    cause="The app's client secret or certificate has expired or expires soon.",
    fix="Create a new client secret or certificate for the app registration before the old "
    "one expires, and update the configuration.",
)
def entra_secret_expiry(ctx: DiagnosticContext) -> CheckResult:
    recorded = [f for f in findings(ctx, EXPIRY_FINDINGS) if ".entra." in f.path]
    if recorded and ctx.settings is None:
        expired = recorded[0].severity == "error"
        return (fail if expired else warn)(
            recorded[0].message,
            recorded[0].hint,
            evidence={"path": recorded[0].path},
            cause="entra_secret_expired" if expired else "entra_secret_expiring",
        )
    settings = settings_or_skip(ctx)
    if not isinstance(settings, InstanceSettings):
        return settings
    entra = settings.entra
    today = ctx.now.date()
    if entra.credential_kind in ("federated_token", "managed_identity"):
        return ok(
            "No stored Entra credential can expire: credlyctl signs in with a "
            + (
                "federated token read at each sign-in."
                if entra.credential_kind == "federated_token"
                else "managed identity."
            ),
            evidence={"source": entra.credential_kind},
        )
    if entra.certificate_path is not None:
        try:
            end = _certificate_end(entra.certificate_path)
        except (OSError, ValueError) as exc:
            return warn(
                f"The certificate file could not be read to find its end date "
                f"({type(exc).__name__}).",
                "Check entra.certificate_path.",
            )
        if end is not None:
            return _verdict(
                "The Entra app certificate",
                end,
                today,
                "Upload a new certificate to the app registration and point "
                "entra.certificate_path at it.",
                {"source": "certificate file"},
            )
    from_app = _secret_end_from_app(ctx, settings, today)
    if from_app is not None:
        return from_app
    if entra.client_secret_expires is not None:
        return _verdict(
            "The Entra client secret",
            entra.client_secret_expires,
            today,
            _SECRET_FIX,
            {"source": "entra.client_secret_expires"},
        )
    return ok(
        "credlyctl cannot know when the Entra client secret expires: it could not read the app "
        f"registration (that needs a working token and {PERM_APPLICATIONS}) and "
        "entra.client_secret_expires is not set.",
        evidence={"source": None},
    )


def _secret_end_from_app(
    ctx: DiagnosticContext, settings: InstanceSettings, today: date
) -> CheckResult | None:
    """The end date from the app registration, when the app may read it."""
    from credly_connector.graph.errors import GraphError

    try:
        roles = ctx.token_roles()
    except CredlyctlError:
        return None
    if roles is None or PERM_APPLICATIONS not in roles:
        return None
    try:
        app = ctx.application()
    except GraphError:
        return None
    if not isinstance(app, dict):
        return None
    credentials = [c for c in app.get("passwordCredentials") or [] if isinstance(c, dict)]
    secret = settings.entra.client_secret
    prefix = secret.reveal()[:3] if secret is not None and not secret.is_empty else None
    matching = [c for c in credentials if prefix and c.get("hint") == prefix]
    candidates = matching or credentials
    ends = sorted(e for e in (_parse_date(c.get("endDateTime")) for c in candidates) if e)
    evidence: dict[str, Any] = {
        "source": "app registration",
        "secrets_on_app": len(credentials),
        "end_dates": [e.isoformat() for e in ends],
    }
    if not ends:
        return None
    if matching or len(ends) == 1:
        return _verdict("The Entra client secret", ends[-1], today, _SECRET_FIX, evidence)
    valid = [e for e in ends if e >= today]
    soonest = valid[0] if valid else ends[-1]
    result = _verdict("A client secret of the Entra app", soonest, today, _SECRET_FIX, evidence)
    if result.status != "ok":
        return warn(
            result.explanation
            + " credlyctl cannot tell whether it is the configured one (the app has "
            f"{len(credentials)} secrets).",
            _SECRET_FIX,
            evidence=result.evidence,
            cause="entra_secret_expiring",
        )
    return ok(
        f"Each client secret of the Entra app that still works is valid until "
        f"{soonest.isoformat()} or later ({(soonest - today).days} days or more).",
        evidence=evidence,
    )
