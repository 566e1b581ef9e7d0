"""Helpers the connection checks share: the offline configuration report, settings guard."""

from __future__ import annotations

from pathlib import Path
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
    from credly_connector.config.validate import (
        InstanceSummary,
        ValidationReport,
        validate_config,
    )

    def build() -> Any:
        settings = ctx.settings
        path = ctx.config_path or (settings.config_path if settings else None)
        if path is None and settings is not None:
            # Settings built in memory (tests, embedding): they were valid to construct, and
            # there is no file whose findings could be reported.
            report = ValidationReport(Path("<in-memory settings>"), "settings")
            report.instances.append(InstanceSummary(settings.name, settings.credly.org_id, True))
            return report
        return validate_config(path, ctx.instance)

    return ctx.memo("config:report", build)


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
