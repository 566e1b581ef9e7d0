"""Credly connection checks: endpoint URL, credentials + organization, credential expiry."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from credly_connector.config.resolved import InstanceSettings
from credly_connector.diagnostics.checks._common import (
    ENDPOINT_FINDINGS,
    EXPIRY_FINDINGS,
    findings,
    settings_or_skip,
)
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.endpoint import analyze_credly_url
from credly_connector.diagnostics.model import CheckResult, error, fail, ok, warn
from credly_connector.diagnostics.registry import register
from credly_connector.endpoints import CREDLY_ENVIRONMENTS, CredlyEnvironment, host_of
from credly_connector.errors import CredlyctlError

AUTH_TOKEN_LIFETIME_DAYS = 180  # Credly authorization tokens expire 180 days after creation
EXPIRY_WARNING_DAYS = 30


@register(
    "credly.endpoint",
    "Credly endpoint URL",
    scope="connection",
    table_rows=("wrong-endpoint-url",),
    cause="The Credly URL is not https, names the API host, a legacy Acclaim host, a typo of "
    "credly.com, has extra paths/ports/queries, or mixes sandbox and production.",
    fix="Use https://www.credly.com for production or https://sandbox.credly.com for the "
    "sandbox; `credlyctl check-endpoint` gives the exact correction and probes the host.",
)
def credly_endpoint(ctx: DiagnosticContext) -> CheckResult:
    bad = findings(ctx, ENDPOINT_FINDINGS)
    if bad:
        return fail(
            bad[0].message,
            f"{bad[0].hint} `credlyctl check-endpoint` shows the exact correction.".strip(),
            evidence={"path": bad[0].path, "finding": bad[0].id},
            table_row="wrong-endpoint-url",
            cause="credly_wrong_endpoint",
        )
    settings = settings_or_skip(ctx)
    if not isinstance(settings, InstanceSettings):
        return settings
    credly = settings.credly
    analysis = analyze_credly_url(
        credly.web_base,
        expected_environment=credly.environment,
        custom_hosts=settings.network.custom_hosts,
        allow_custom_hosts=settings.network.allow_custom_hosts,
    )
    evidence: dict[str, Any] = {
        "web_base": credly.web_base,
        "api_base": credly.api_base,
        "environment": str(credly.environment),
    }
    if analysis.has_errors:
        first = next(f for f in analysis.findings if f.severity == "error")
        fix = f"Use {first.correction}." if first.correction else "Use https://www.credly.com."
        return fail(
            first.message,
            fix,
            evidence=evidence,
            table_row="wrong-endpoint-url",
            cause="credly_wrong_endpoint",
        )
    if analysis.custom_host:
        return ok(
            "The Credly URLs point at a custom host allowed by network.allow_custom_hosts "
            "(a simulator or test double; config.valid reports the opt-in).",
            evidence={**evidence, "custom_host": True},
        )
    expected_api = CREDLY_ENVIRONMENTS[credly.environment].api_base
    if credly.api_base.rstrip("/") != expected_api:
        return fail(
            f"The Credly API URL {credly.api_base} is not the {credly.environment} API "
            f"({expected_api}).",
            f"Remove credly.api_url (it is derived from the environment) or set it to "
            f"{expected_api}.",
            evidence=evidence,
            table_row="wrong-endpoint-url",
            cause="credly_wrong_endpoint",
        )
    return ok(f"Credly {credly.environment} URLs are the documented ones.", evidence=evidence)


def _other_environment(settings: InstanceSettings) -> InstanceSettings | None:
    """The same settings aimed at the other Credly environment (known hosts only)."""
    if settings.credly.environment == CredlyEnvironment.PRODUCTION:
        other = CredlyEnvironment.SANDBOX
    else:
        other = CredlyEnvironment.PRODUCTION
    endpoints = CREDLY_ENVIRONMENTS[other]
    if host_of(settings.credly.web_base) not in {
        host_of(e.web_base) for e in CREDLY_ENVIRONMENTS.values()
    }:
        return None  # a custom host: there is no "other environment" to try
    credly = replace(
        settings.credly, environment=other, web_base=endpoints.web_base, api_base=endpoints.api_base
    )
    return replace(settings, credly=credly)


def probe_other_environment(ctx: DiagnosticContext) -> dict[str, Any]:
    """Try the credentials against the other Credly environment (only with explicit consent).

    This sends the credentials to the other environment's documented Credly hosts, never
    anywhere else: the HTTP client's host guard allows exactly those hosts.
    """
    settings = ctx.require_settings()
    other = _other_environment(settings)
    if other is None:
        return {"tried": False, "reason": "the instance uses a custom Credly host"}
    from credly_connector.credly.client import CredlyClient
    from credly_connector.net import build_http_client

    http = build_http_client(
        other,
        "credly",
        allow_other_credly_environment=True,
        transport=ctx.other_environment_transport,
    )
    client = CredlyClient(other.credly, http)
    try:
        organization = client.get_organization()
    except CredlyctlError as exc:
        return {
            "tried": True,
            "environment": str(other.credly.environment),
            "works": False,
            "error": exc.error_id or type(exc).__name__,
        }
    finally:
        http.close()
    return {
        "tried": True,
        "environment": str(other.credly.environment),
        "works": True,
        "organization": organization.name,
    }


def _visible_orgs(ctx: DiagnosticContext) -> list[dict[str, Any]] | None:
    try:
        orgs = ctx.memo("credly:orgs", lambda: list(ctx.credly().list_organizations()))
    except CredlyctlError:
        return None
    return [{"id": o.id, "name": o.name} for o in orgs[:10]]


@register(
    "credly.credentials",
    "Credly credentials and organization",
    scope="connection",
    requires=("credly.org_id_format", "credly.endpoint"),
    table_rows=("bad-client-credentials", "invalid-org-id"),
    cause="The OAuth client id/secret is wrong or was replaced, the authorization token expired "
    "(180 days), the Organization ID does not exist or is not visible to these credentials, "
    "the credentials belong to the other Credly environment, or the network/TLS failed.",
    fix="Create a new client secret (or OAuth application) in Credly's Developers portal, or a "
    "new authorization token; copy the Organization ID again; check the environment.",
)
def credly_credentials(ctx: DiagnosticContext) -> CheckResult:
    from credly_connector.credly.errors import CredlyAuthError, CredlyUnavailable

    settings = settings_or_skip(ctx)
    if not isinstance(settings, InstanceSettings):
        return settings
    credly = settings.credly
    evidence: dict[str, Any] = {
        "environment": str(credly.environment),
        "org_id": credly.org_id,
        "auth": "oauth" if credly.uses_oauth else "authorization_token",
        "client_id": credly.client_id if credly.uses_oauth else None,
    }
    secret = credly.client_secret if credly.uses_oauth else credly.authorization_token
    if secret is not None:
        evidence["secret"] = secret.describe()
    try:
        organization = ctx.organization()
    except CredlyAuthError as exc:
        evidence["error"] = exc.kind
        evidence["status"] = exc.status
        if ctx.probe_other_environment:
            evidence["other_environment"] = probe_other_environment(ctx)
            other = evidence["other_environment"]
            if other.get("works"):
                return fail(
                    f"These credentials work in Credly {other['environment']}, not in "
                    f"{credly.environment}.",
                    f'Set credly.environment = "{other["environment"]}" for this instance, '
                    "or use credentials created in the intended environment.",
                    evidence=evidence,
                    table_row="wrong-endpoint-url",
                    cause="credly_other_environment",
                )
        if exc.kind == "not_found":
            visible = _visible_orgs(ctx)
            if visible is not None:
                evidence["visible_organizations"] = visible
            return fail(
                exc.message,
                exc.hint,
                evidence=evidence,
                table_row="invalid-org-id",
                cause="org_not_found",
            )
        if exc.kind == "forbidden":
            visible = _visible_orgs(ctx)
            if visible is not None:
                evidence["visible_organizations"] = visible
                ids = {str(o["id"]).lower() for o in visible}
                if credly.org_id.lower() not in ids:
                    names = ", ".join(f"{o['name']} ({o['id']})" for o in visible) or "none"
                    return fail(
                        f"These Credly credentials may not read organization {credly.org_id}; "
                        f"they see only: {names}.",
                        "Use the Organization ID these credentials belong to, or credentials "
                        "created in that organization (its Developers menu in Credly).",
                        evidence=evidence,
                        table_row="invalid-org-id",
                        cause="org_not_visible",
                    )
        cause = {
            "invalid_client": "credly_credentials_invalid",
            "token_rejected": "credly_credentials_invalid"
            if credly.uses_oauth
            else "credly_token_expired",
        }.get(exc.kind, "credly_credentials_forbidden")
        return fail(
            exc.message,
            exc.hint,
            evidence=evidence,
            table_row="bad-client-credentials",
            cause=cause,
        )
    except CredlyUnavailable as exc:
        evidence["error"] = exc.kind
        if exc.kind == "tls":
            return fail(exc.message, exc.hint, evidence=evidence, cause="credly_tls")
        return error(exc.message, exc.hint, evidence=evidence, remote_failure=True)
    except CredlyctlError as exc:
        return fail(
            exc.message,
            exc.hint,
            evidence=evidence,
            table_row="bad-client-credentials"
            if exc.error_id == "credly.missing_credentials"
            else None,
            cause="credly_credentials_missing"
            if exc.error_id == "credly.missing_credentials"
            else "credly_config",
        )
    evidence["organization"] = organization.name
    evidence["vanity_url"] = organization.vanity_url
    try:
        # Reading the organization works without the issued_badges scope; one page of badges
        # does not, and it is what the sync needs.
        ctx.badge_probe()
    except CredlyAuthError as exc:
        evidence["error"] = exc.kind
        evidence["status"] = exc.status
        return fail(
            f"The credentials read organization {organization.name or credly.org_id} but may "
            f"not list its issued badges ({exc.message}).",
            "Give the OAuth application the issued_badges scope in Credly (Developers > OAuth "
            "Applications), or use an authorization token with read access.",
            evidence=evidence,
            table_row="bad-client-credentials",
            cause="credly_scope_missing",
        )
    except CredlyUnavailable as exc:
        evidence["error"] = exc.kind
        return error(exc.message, exc.hint, evidence=evidence, remote_failure=exc.kind != "tls")
    return ok(
        f"Signed in to Credly {credly.environment} and read organization "
        f"{organization.name or credly.org_id}.",
        evidence=evidence,
    )


@register(
    "credly.secret_expiry",
    "Credly credential expiry",
    scope="connection",
    table_rows=("bad-client-credentials",),
    cause="The Credly authorization token expired or expires soon (180 days after creation).",
    fix="Create a new authorization token in Credly (Developers > Authorization Tokens) and "
    "record its creation date in credly.authorization_token_created.",
)
def credly_secret_expiry(ctx: DiagnosticContext) -> CheckResult:
    recorded = [f for f in findings(ctx, EXPIRY_FINDINGS) if ".credly." in f.path]
    if recorded and ctx.settings is None:
        finding = recorded[0]
        builder = fail if finding.severity == "error" else warn
        return builder(
            finding.message,
            finding.hint,
            evidence={"path": finding.path},
            table_row="bad-client-credentials",
            cause="credly_token_expired"
            if finding.severity == "error"
            else "credly_token_expiring",
        )
    settings = settings_or_skip(ctx)
    if not isinstance(settings, InstanceSettings):
        return settings
    credly = settings.credly
    if credly.uses_oauth:
        return ok(
            "Credly does not publish an expiry for OAuth client secrets, so credlyctl cannot "
            "know when this one stops working; credly.credentials shows whether it works now.",
            evidence={"auth": "oauth"},
        )
    created = credly.authorization_token_created
    if created is None:
        return warn(
            "credlyctl cannot know when the Credly authorization token expires: its creation "
            "date is not recorded (tokens expire 180 days after creation).",
            "Record the creation date shown in Credly in credly.authorization_token_created.",
            evidence={"auth": "authorization_token"},
        )
    today = ctx.now.date()
    expires = created + timedelta(days=AUTH_TOKEN_LIFETIME_DAYS)
    left = (expires - today).days
    evidence = {
        "created": created.isoformat(),
        "expires": expires.isoformat(),
        "age_days": (today - created).days,
        "days_left": left,
    }
    return _expiry_verdict("The Credly authorization token", expires, today, evidence)


def _expiry_verdict(what: str, expires: date, today: date, evidence: dict[str, Any]) -> CheckResult:
    left = (expires - today).days
    if left < 0:
        return fail(
            f"{what} expired on {expires.isoformat()}.",
            "Create a new authorization token in Credly (Developers > Authorization Tokens), "
            "update credly.authorization_token and credly.authorization_token_created.",
            evidence=evidence,
            table_row="bad-client-credentials",
            cause="credly_token_expired",
        )
    if left <= EXPIRY_WARNING_DAYS:
        return warn(
            f"{what} expires on {expires.isoformat()} ({left} days left).",
            "Create a new authorization token in Credly before then and update the configuration.",
            evidence=evidence,
            cause="credly_token_expiring",
        )
    return ok(f"{what} is valid until {expires.isoformat()} ({left} days left).", evidence=evidence)
