"""Helpers the connection checks share: the offline configuration report, settings guard."""

from __future__ import annotations

from typing import Any

from credly_connector.config.resolved import InstanceSettings
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import CheckResult, skipped

# validate-config finding ids that dedicated checks report, so config.valid does not repeat
# them (a cause is named once, by the check that explains it best).
ORG_ID_FINDINGS = frozenset({"CFG005"})
MULTIPLE_ORG_FINDINGS = frozenset({"CFG006", "CFG007"})
SCHEMA_FINDINGS = frozenset({"CFG008"})
ENDPOINT_FINDINGS = frozenset({"CFG012", "CFG013", "CFG014", "CFG015", "CFG025"})
EXPIRY_FINDINGS = frozenset({"CFG029"})
DEDICATED_FINDINGS = (
    ORG_ID_FINDINGS | MULTIPLE_ORG_FINDINGS | SCHEMA_FINDINGS | ENDPOINT_FINDINGS | EXPIRY_FINDINGS
)


def config_report(ctx: DiagnosticContext) -> Any:
    """validate-config's offline report for this context's file and instance (memoised)."""
    from credly_connector.config.validate import validate_config

    return ctx.memo("config:report", lambda: validate_config(ctx.config_path, ctx.instance))


def findings(ctx: DiagnosticContext, ids: frozenset[str]) -> list[Any]:
    return [f for f in config_report(ctx).findings if f.id in ids]


def settings_or_skip(ctx: DiagnosticContext) -> InstanceSettings | CheckResult:
    """The instance settings, or a `skipped` result when the configuration did not load."""
    if ctx.settings is not None:
        return ctx.settings
    reason = ctx.config_error.message if ctx.config_error else "no instance is configured"
    return skipped(
        f"Not checked because the configuration could not be loaded: {reason}",
        evidence={"requires": "config.valid"},
    )
