"""test-credentials: sign in to Credly and Entra ID, read what the sync needs, report expiry.

A thin selection over the connection checks, so `diagnose` and `test-credentials` can never
disagree about a credential. The other Credly environment is only tried on request, because
that sends the credentials to the other environment's (documented) Credly host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import CheckResult, CheckStatus
from credly_connector.diagnostics.registry import run_checks, verdict
from credly_connector.exit_codes import ExitCode

CREDENTIAL_CHECKS: tuple[str, ...] = (
    "credly.credentials",
    "credly.secret_expiry",
    "entra.token",
    "entra.secret_expiry",
    "graph.permissions",
)
SERVICES = {
    "credly": ("credly.",),
    "entra": ("entra.",),
    "graph": ("graph.",),
}
_RANK = {
    CheckStatus.ERROR: 4,
    CheckStatus.FAIL: 3,
    CheckStatus.WARN: 2,
    CheckStatus.SKIPPED: 1,
    CheckStatus.NOTE: 0,
    CheckStatus.OK: 0,
}


@dataclass(frozen=True)
class CredentialsReport:
    instance: str | None
    results: tuple[CheckResult, ...]
    exit_code: ExitCode

    def service_status(self, service: str) -> str:
        prefixes = SERVICES[service]
        mine = [r for r in self.results if r.check_id.startswith(prefixes)]
        if not mine:
            return "skipped"
        worst = max(mine, key=lambda r: _RANK[r.status])
        return "ok" if worst.status == CheckStatus.NOTE else str(worst.status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "services": {name: self.service_status(name) for name in SERVICES},
            "checks": [r.to_dict() for r in self.results],
        }


def run_credential_checks(
    ctx: DiagnosticContext, *, probe_other_environment: bool = False, strict: bool = False
) -> CredentialsReport:
    ctx.probe_other_environment = probe_other_environment
    results = run_checks(ctx, CREDENTIAL_CHECKS)
    return CredentialsReport(ctx.instance, tuple(results), verdict(results, strict))
