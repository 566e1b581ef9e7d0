"""Connection checks that need no network: the configuration as validate-config sees it."""

from __future__ import annotations

from credly_connector.diagnostics.checks._common import (
    DEDICATED_FINDINGS,
    MULTIPLE_ORG_FINDINGS,
    ORG_ID_FINDINGS,
    SCHEMA_FINDINGS,
    config_report,
    findings,
)
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import CheckResult, fail, ok, skipped, warn
from credly_connector.diagnostics.registry import register


def _unreadable(ctx: DiagnosticContext) -> CheckResult | None:
    if config_report(ctx).unreadable:
        return skipped("Not checked because the configuration file could not be read.")
    return None


@register(
    "config.valid",
    "Configuration is valid",
    scope="connection",
    cause="A required value is missing, a secret reference does not resolve, or a value is "
    "malformed; custom endpoint hosts are allowed (always a warning).",
    fix="Run `credlyctl validate-config` and fix each finding it lists.",
)
def config_valid(ctx: DiagnosticContext) -> CheckResult:
    report = config_report(ctx)
    relevant = [f for f in report.findings if f.id not in DEDICATED_FINDINGS]
    errors = [f for f in relevant if f.severity == "error"]
    warnings = [f for f in relevant if f.severity == "warning"]
    evidence = {
        "path": str(report.path),
        "findings": [f"{f.id} {f.severity} {f.path}".strip() for f in relevant],
    }
    if errors:
        first = errors[0]
        more = f" ({len(errors) - 1} more)" if len(errors) > 1 else ""
        where = f"{first.path}: " if first.path else ""
        return fail(
            f"The configuration has {len(errors)} problem(s){more}: {where}{first.message}",
            f"{first.hint} Run `credlyctl validate-config` for the full list.".strip(),
            evidence=evidence,
            cause="config_invalid",
        )
    if warnings:
        return warn(
            f"The configuration is usable, with {len(warnings)} warning(s): "
            + " ".join(w.message for w in warnings[:3]),
            " ".join(w.hint for w in warnings[:3] if w.hint),
            evidence=evidence,
            cause="config_warnings",
        )
    return ok("The configuration loads without problems.", evidence=evidence)


@register(
    "credly.org_id_format",
    "Credly Organization ID format",
    scope="connection",
    table_rows=("invalid-org-id",),
    cause="The Organization ID is not a canonical GUID (quotes, braces, a URL or the vanity "
    "name pasted instead).",
    fix="Copy the Organization ID from the Credly Developers portal; `credlyctl "
    "validate-org-id VALUE` says exactly what is wrong with a value.",
)
def org_id_format(ctx: DiagnosticContext) -> CheckResult:
    blocked = _unreadable(ctx)
    if blocked:
        return blocked
    bad = findings(ctx, ORG_ID_FINDINGS)
    missing = [
        f
        for f in config_report(ctx).findings
        if f.id == "CFG004" and f.path.endswith(".credly.org_id")
    ]
    for finding in bad + missing:
        return fail(
            finding.message,
            finding.hint,
            evidence={"path": finding.path},
            table_row="invalid-org-id",
            cause="org_id_invalid_format",
        )
    org_id = ctx.settings.credly.org_id if ctx.settings else None
    if org_id is None:
        summaries = [i for i in config_report(ctx).instances if i.org_id]
        org_id = summaries[0].org_id if len(summaries) == 1 else None
    return ok("The Organization ID is a valid GUID.", evidence={"org_id": org_id})


@register(
    "config.multiple_orgs",
    "One Credly organization per instance",
    scope="connection",
    table_rows=("multiple-orgs",),
    cause="Several Organization IDs in one instance, or the same organization in two instances.",
    fix="Create one connector instance per Credly organization, each with its own Organization "
    "ID (and its own Graph connection).",
)
def multiple_orgs(ctx: DiagnosticContext) -> CheckResult:
    blocked = _unreadable(ctx)
    if blocked:
        return blocked
    report = config_report(ctx)
    bad = findings(ctx, MULTIPLE_ORG_FINDINGS)
    if bad:
        return fail(
            bad[0].message,
            f"{bad[0].hint} Each instance serves exactly one Credly organization, like "
            "Microsoft's connector: for several organizations (e.g. subsidiaries), create one "
            "instance per Organization ID.",
            evidence={"paths": [f.path for f in bad]},
            table_row="multiple-orgs",
            cause="duplicate_org_id" if bad[0].id == "CFG006" else "multiple_org_ids",
        )
    instances = {i.name: i.org_id for i in report.instances}
    return ok(
        "Each instance names a single Credly organization.",
        evidence={"instances": instances},
    )


@register(
    "config.fixed_schema",
    "No schema customization in the configuration",
    scope="connection",
    table_rows=("fixed-schema",),
    cause="The configuration tries to add, remove or change schema properties.",
    fix="Remove the schema settings: the connector's schema (account, awards, certifications) "
    "is fixed and cannot be customized.",
)
def fixed_schema_config(ctx: DiagnosticContext) -> CheckResult:
    blocked = _unreadable(ctx)
    if blocked:
        return blocked
    bad = findings(ctx, SCHEMA_FINDINGS)
    if bad:
        return fail(
            bad[0].message,
            bad[0].hint
            or "Remove the schema keys: the schema cannot be customized in this release.",
            evidence={"paths": [f.path for f in bad]},
            table_row="fixed-schema",
            cause="schema_customization",
        )
    return ok("The configuration does not try to customize the fixed schema.")
