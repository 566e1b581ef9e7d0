"""AADSTS codes an admin meets with app-only tokens, each with its cause and fix.

Microsoft warns that these codes are diagnostics, not a contract (entra-msal.md §2): unknown
codes fall back to Entra's own `error` and the first line of its description.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_CODE = re.compile(r"AADSTS(\d+)")


@dataclass(frozen=True)
class AadstsHint:
    code: int
    cause: str
    fix: str


_TABLE = [
    AadstsHint(
        90002,
        "the tenant was not found: a typo in entra.tenant_id, or the tenant lives in another "
        "Microsoft cloud",
        "Copy the Directory (tenant) ID from the Entra admin center (Overview page) into "
        "entra.tenant_id and check entra.cloud.",
    ),
    AadstsHint(
        900023,
        "the tenant value is malformed (neither a GUID nor a domain name)",
        "Set entra.tenant_id to the tenant GUID or its verified domain, without https:// or "
        "path segments.",
    ),
    AadstsHint(
        90038,
        "the tenant belongs to another national cloud",
        "Set entra.cloud to the cloud this tenant lives in (global, usgov or usgovdod).",
    ),
    AadstsHint(
        700016,
        "no application with this client id exists in this tenant (wrong client id, wrong "
        "tenant, or a multi-tenant app never consented here)",
        "Copy the Application (client) ID from the app registration's Overview page into "
        "entra.client_id, and check entra.tenant_id.",
    ),
    AadstsHint(
        7000215,
        "the client secret is not valid; most often the secret ID (a GUID) was pasted instead "
        "of the secret value, or an old secret is still configured after a rotation",
        "In the app registration under Certificates & secrets, create a new client secret and "
        "copy its Value (shown only once), not its Secret ID, into entra.client_secret.",
    ),
    AadstsHint(
        7000222,
        "the client secret has expired",
        "Create a new client secret in the app registration (Certificates & secrets), update "
        "entra.client_secret and record its expiry in entra.client_secret_expires.",
    ),
    AadstsHint(
        7000218,
        "no credential was sent: the client secret is empty (for example an unset environment "
        "variable) and no certificate is configured",
        "Set entra.client_secret to the secret value, or entra.certificate_path to a PEM with "
        "the private key and certificate.",
    ),
    AadstsHint(
        700027,
        "the certificate was not accepted: it is not uploaded to the app registration, or the "
        "private key does not belong to it",
        "Upload the certificate's public part under Certificates & secrets of the app "
        "registration, and check entra.certificate_path holds the matching private key.",
    ),
    AadstsHint(
        700024,
        "the client assertion is outside its valid time range: with a federated token, the "
        "token in entra.federated_token_file has expired; with a certificate, this machine's "
        "clock is probably wrong",
        "Federated token: have the job write a fresh token right before credlyctl runs "
        "(Kubernetes refreshes the file itself). Certificate: synchronise the system clock "
        "(NTP). Then retry.",
    ),
    # Workload identity federation (entra.auth = "federated_token"). Codes and meanings:
    # Azure/azure-workload-identity docs (troubleshooting.md: 70021), its issue #1200
    # (700213, subject), MicrosoftDocs/azure-devops-docs errors-workload-identity (70021,
    # 700024); 700211 (issuer) and 700212 (audience) from public issue reports.
    AadstsHint(
        70021,
        "no federated identity credential of the app matches the token (its issuer, subject "
        "and audience are compared)",
        "In the app registration > Certificates & secrets > Federated credentials, add one "
        "whose issuer, subject and audience (api://AzureADTokenExchange) are exactly the "
        "token's; `credlyctl test-credentials` shows the token's values.",
    ),
    AadstsHint(
        700211,
        "no federated identity credential of the app trusts the token's issuer",
        "Set the federated credential's Issuer to the token's `iss` exactly (e.g. "
        "https://token.actions.githubusercontent.com, no trailing slash unless the token has "
        "one); `credlyctl test-credentials` shows the token's issuer.",
    ),
    AadstsHint(
        700212,
        "the token's audience does not match the federated identity credential's audience",
        "Request the token for the audience api://AzureADTokenExchange (GitHub Actions: the "
        "default of azure/login; Kubernetes: the projected token's audience), or set the "
        "federated credential's audience to the token's `aud`.",
    ),
    AadstsHint(
        700213,
        "the token's subject does not match the federated identity credential's subject",
        "Set the federated credential's Subject to the token's `sub` exactly (GitHub: "
        "repo:<org>/<repo>:ref:refs/heads/<branch> or :environment:<name>; Kubernetes: "
        "system:serviceaccount:<namespace>:<name>); `credlyctl test-credentials` shows it.",
    ),
    AadstsHint(
        50027,
        "the client assertion is not a valid JWT (malformed, or its signature cannot be "
        "checked against the issuer's published keys)",
        "entra.federated_token_file must hold the identity provider's token exactly as "
        "issued (one JWT, nothing else); have the job write it again.",
    ),
    AadstsHint(
        7000112,
        "the application is disabled in this tenant",
        "In Entra admin center > Enterprise applications > the app > Properties, set "
        "'Enabled for users to sign-in?' to Yes.",
    ),
    AadstsHint(
        500011,
        "the Graph resource was not found in this tenant: the token was requested for another "
        "cloud's Microsoft Graph",
        "Check entra.cloud and graph settings: the Graph host must belong to the same cloud as "
        "the tenant.",
    ),
    AadstsHint(
        1002012,
        "the scope requested is not valid for app-only tokens (it must end in /.default)",
        "This is a credlyctl bug; please report it with `credlyctl support-bundle`.",
    ),
    AadstsHint(
        53003,
        "a Conditional Access policy blocked the token request for this app",
        "Ask an Entra administrator to review the Conditional Access policies that target "
        "workload identities (service principals).",
    ),
]

HINTS: dict[int, AadstsHint] = {hint.code: hint for hint in _TABLE}


def lookup(codes: list[int]) -> AadstsHint | None:
    for code in codes:
        if code in HINTS:
            return HINTS[code]
    return None


def codes_in_text(text: str) -> list[int]:
    seen: list[int] = []
    for match in _CODE.findall(text):
        code = int(match)
        if code not in seen:
            seen.append(code)
    return seen


def codes_from_result(result: dict[str, Any]) -> list[int]:
    raw = result.get("error_codes")
    if isinstance(raw, list):
        codes = [int(c) for c in raw if isinstance(c, int | str) and str(c).isdigit()]
        if codes:
            return codes
    description = result.get("error_description")
    return codes_in_text(description) if isinstance(description, str) else []


def error_document_in_text(text: str) -> dict[str, Any] | None:
    """The Entra error JSON embedded in an msal discovery ValueError message, if any."""
    start = text.find("{")
    while start != -1:
        depth = 0
        for index in range(start, len(text)):
            if text[index] == "{":
                depth += 1
            elif text[index] == "}":
                depth -= 1
                if depth == 0:
                    try:
                        document = json.loads(text[start : index + 1])
                    except ValueError:
                        break
                    if isinstance(document, dict):
                        return document
                    break
        start = text.find("{", start + 1)
    return None


def first_line(description: str | None) -> str | None:
    """The human sentence of an error_description, without the Trace/Correlation trailer."""
    if not description:
        return None
    line = description.strip().splitlines()[0].strip()
    return line or None


@dataclass(frozen=True)
class ManagedIdentityHint:
    cause: str
    fix: str
    error_id: str


def managed_identity_hint(error: str | None, description: str) -> ManagedIdentityHint:
    """Cause and fix for a managed identity endpoint's refusal (IMDS or App Service style).

    IMDS answers 400 `invalid_request` "Identity not found" for an identity not assigned to
    the host (learn.microsoft.com, how-to-use-vm-token, error handling); msal turns App
    Service's `{statusCode, message}` into `invalid_scope` with that text.
    """
    if "identity not found" in description or "no managed identity" in description:
        return ManagedIdentityHint(
            "the managed identity is not assigned to this Azure resource",
            "Assign it (Azure portal > the resource > Identity), or fix "
            "entra.managed_identity_client_id (remove it to use the system-assigned identity).",
            "entra.managed_identity_not_found",
        )
    if error in {"invalid_resource", "invalid_scope"} or "resource" in description:
        return ManagedIdentityHint(
            "the managed identity endpoint does not issue tokens for this Microsoft Graph resource",
            "Check entra.cloud and graph.base_url: the Graph host must be the one of the "
            "tenant's cloud.",
            "entra.managed_identity_resource",
        )
    return ManagedIdentityHint(
        "the managed identity endpoint refused to issue a token",
        "Check that the Azure resource has a managed identity and that it is enabled.",
        "entra.managed_identity",
    )
