"""validate-config: every problem of the configuration file at once, without any network call."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from credly_connector.config.files import ParseFailure, locate, read_toml
from credly_connector.config.findings import Finding, Severity, error, warning
from credly_connector.config.load import belongs_to, make_context, select_instance
from credly_connector.config.raw import RawFile, apply_env, env_layer, parse_file
from credly_connector.config.resolve import resolve_instance
from credly_connector.exit_codes import ExitCode
from credly_connector.orgid import check_org_id


@dataclass
class InstanceSummary:
    name: str
    org_id: str | None  # canonical, when it is a valid GUID
    usable: bool  # no error: other commands will accept this instance


@dataclass
class ValidationReport:
    path: Path
    chosen_by: str
    findings: list[Finding] = field(default_factory=list)
    instances: list[InstanceSummary] = field(default_factory=list)
    unreadable: bool = False  # the file could not be found or parsed: exit 2

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def exit_code(self, strict: bool) -> ExitCode:
        if self.unreadable:
            return ExitCode.USAGE
        if self.count(Severity.ERROR) or (strict and self.count(Severity.WARNING)):
            return ExitCode.PROBLEMS
        return ExitCode.OK


def validate_config(
    config_path: Path | None,
    instance: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    today: date | None = None,
) -> ValidationReport:
    env = os.environ if environ is None else environ
    path, chosen_by = locate(config_path)
    report = ValidationReport(path, chosen_by)
    parsed = read_toml(path, chosen_by)
    if isinstance(parsed, ParseFailure):
        report.unreadable = True
        where = f"line {parsed.line}, column {parsed.column}" if parsed.line else ""
        fid = "CFG001" if parsed.kind == "syntax" else "CFG000"
        report.findings.append(error(fid, where, parsed.message, parsed.hint))
        return report
    raw = parse_file(parsed)
    selected, problem = select_instance(raw, instance)
    layer, env_findings = env_layer(env)
    report.findings.extend(env_findings)
    if problem is not None:
        ambiguous = problem.id == "CFG022" and instance is None and raw.default_instance is None
        if not ambiguous:
            report.findings.append(problem)
        elif layer:
            report.findings.append(
                warning(
                    "CFG022",
                    problem.path,
                    f"CREDLYCTL_* variables are set but apply to no instance. {problem.message}",
                    problem.hint,
                )
            )
    if selected is not None:
        apply_env(raw.instances[selected], layer)
    if instance is None:
        names = list(raw.instances)
    else:
        names = [instance] if instance in raw.instances else []
    report.findings.extend(
        f for f in raw.findings if not names or any(belongs_to(f, n) for n in names)
    )
    context = make_context(path, env, today)
    for name in names:
        _, found = resolve_instance(raw.instances[name], context)
        report.findings.extend(found)
        report.instances.append(
            InstanceSummary(
                name,
                _org_id(raw, name),
                not any(f.is_error and belongs_to(f, name) for f in report.findings),
            )
        )
    report.findings.extend(_duplicates(raw, names))
    return report


def _org_id(raw: RawFile, name: str) -> str | None:
    value = raw.instances[name].sections.get("credly", {}).get("org_id")
    return check_org_id(value).canonical if isinstance(value, str) else None


def _duplicates(raw: RawFile, names: list[str]) -> list[Finding]:
    first_seen: dict[str, str] = {}
    findings = []
    for name in raw.instances:
        org = _org_id(raw, name)
        if org is None:
            continue
        if org in first_seen and (name in names or first_seen[org] in names):
            findings.append(
                error(
                    "CFG006",
                    f"instances.{name}.credly.org_id",
                    f"Instances {first_seen[org]!r} and {name!r} use the same Organization ID "
                    f"{org}; both would write the same badges into two connections.",
                    "Keep one instance per Credly organization and delete the other.",
                )
            )
        first_seen.setdefault(org, name)
    return findings
