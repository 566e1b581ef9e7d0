"""validate-config and validate-org-id: offline checks an admin can run before anything else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from credly_connector.cli.options import ConfigOption, InstanceOption, JsonOption, StrictOption
from credly_connector.cli.output import Outcome, notice_console, run_command, stderr_console
from credly_connector.cli.terminal import terminal
from credly_connector.config.findings import Severity
from credly_connector.exit_codes import ExitCode
from credly_connector.orgid import OrgIdCheck, check_org_id

if TYPE_CHECKING:
    from credly_connector.config.validate import ValidationReport


def _report_data(report: ValidationReport, strict: bool) -> dict[str, object]:
    data: dict[str, object] = {
        "config_path": str(report.path),
        "config_chosen_by": report.chosen_by,
        "strict": strict,
        "summary": {
            "errors": report.count(Severity.ERROR),
            "warnings": report.count(Severity.WARNING),
            "infos": report.count(Severity.INFO),
        },
        "instances": [
            {"name": i.name, "org_id": i.org_id, "usable": i.usable} for i in report.instances
        ],
        "findings": [f.to_dict() for f in report.findings],
    }
    if report.unreadable:
        first = report.findings[0]
        data["error"] = {"id": first.id, "message": first.message, "hint": first.hint}
    return data


def _render_report(report: ValidationReport, console: Console) -> None:
    if report.unreadable:
        first = report.findings[0]
        terminal().error({"message": f"{first.id} {first.message}", "hint": first.hint})
        return
    for finding in report.findings:
        console.print(finding.line())
    errors, warnings = report.count(Severity.ERROR), report.count(Severity.WARNING)
    names = ", ".join(i.name for i in report.instances) or "no instance"
    verdict = "Problems found" if errors else "OK"
    console.print(
        f"{verdict}: {errors} error(s), {warnings} warning(s) in {report.path} ({names})."
    )


def validate_config_command(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    strict: StrictOption = False,
    json_output: JsonOption = False,
) -> None:
    """Check the configuration file without any network call.

    Prints one finding per line: id, severity, dotted key path, what is wrong and how to fix
    it. Exit 0 when clean, 1 when errors are found (or warnings with --strict), 2 when the
    file cannot be found or parsed.
    """

    def body() -> Outcome:
        # Imported here: validate-org-id needs none of the configuration machinery (pydantic).
        from credly_connector.config.validate import validate_config

        report = validate_config(config, instance)
        code = report.exit_code(strict)
        return Outcome(
            code, _report_data(report, strict), lambda console: _render_report(report, console)
        )

    run_command("validate-config", json_output, body)


def _render_org_id(check: OrgIdCheck, console: Console) -> None:
    if check.ok:
        console.print(check.canonical or "")
        if check.value != check.canonical:
            notice_console().print(check.message)
        return
    err = stderr_console()
    err.print(f"Invalid Organization ID ({check.reason}): {check.message}")
    if check.hint:
        err.print(f"Hint: {check.hint}")
    if check.suggestion:
        console.print(check.suggestion)


def validate_org_id_command(
    org_id: Annotated[
        str,
        typer.Argument(
            metavar="GUID",
            help="The Credly Organization ID to check (quote it if it holds spaces).",
            show_default=False,
        ),
    ],
    json_output: JsonOption = False,
) -> None:
    """Check a Credly Organization ID offline and print its canonical form.

    A valid ID is printed in canonical lower-case form (exit 0). Anything else gets a precise
    reason on stderr (exit 1), and, when a GUID can be recovered from the value, that GUID on
    stdout.
    """

    def body() -> Outcome:
        check = check_org_id(org_id)
        code = ExitCode.OK if check.ok else ExitCode.PROBLEMS
        return Outcome(code, check.to_dict(), lambda console: _render_org_id(check, console))

    run_command("validate-org-id", json_output, body)


def register(app: typer.Typer) -> None:
    app.command("validate-config")(validate_config_command)
    app.command("validate-org-id")(validate_org_id_command)
