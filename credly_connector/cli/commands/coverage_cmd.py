"""coverage: how many of the organization's badges reach profiles, and where the others stop."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from credly_connector.cli.options import ConfigOption, InstanceOption, JsonOption
from credly_connector.cli.output import Outcome, run_command
from credly_connector.exit_codes import ExitCode

if TYPE_CHECKING:
    from credly_connector.diagnostics.coverage import CoverageReport


class Format(StrEnum):
    TABLE = "table"
    MARKDOWN = "markdown"
    CSV = "csv"
    HTML = "html"


def render_table(console: Console, report: CoverageReport) -> None:
    from credly_connector.diagnostics.coverage import STAGES

    issued = report.funnel["issued"] or 1
    funnel = Table(title=f"Badge coverage of organization {report.org_id}")
    funnel.add_column("stage")
    funnel.add_column("badges", justify="right")
    funnel.add_column("of issued", justify="right")
    for stage in STAGES:
        count = report.funnel[stage]
        funnel.add_row(stage.replace("_", " "), str(count), f"{100 * count / issued:.0f}%")
    console.print(funnel)
    if report.causes:
        causes = Table(title="Why badges stop (first cause per badge)")
        causes.add_column("cause")
        causes.add_column("badges", justify="right")
        for cause, count in report.causes.items():
            causes.add_row(cause, str(count))
        console.print(causes)
    if report.unmatched:
        unmatched = Table(title="Recipient emails that match no user")
        for column in ("email", "badges", "closest user"):
            unmatched.add_column(column)
        for entry in report.unmatched:
            closest = f"{entry.suggestion} ({entry.reason})" if entry.suggestion else "-"
            unmatched.add_row(entry.email, str(entry.badges), closest)
        console.print(unmatched)
    if report.stale:
        stale = Table(title="Users whose item is stale")
        for column in ("user", "why", "last write"):
            stale.add_column(column)
        for item in report.stale:
            when = f"{item.last_write:%Y-%m-%d %H:%M} UTC" if item.last_write else "-"
            stale.add_row(item.user_principal_name, item.reason, when)
        console.print(stale)
    mailbox = report.mailbox_check
    if mailbox["status"] == "could_not_tell":
        console.print(f"Mailboxes: could not tell ({mailbox['reason']}).", markup=False)
    if not report.state_found:
        console.print("No sync state yet: nothing counts as synced until `credlyctl sync` ran.")


def coverage_command(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    output_format: Annotated[
        Format,
        typer.Option(
            "--format",
            help="table (default), markdown (for a CI job summary), csv (one row per badge) "
            "or html (one self-contained page: the funnel to scale, each loss with its fix, "
            "unmatched addresses with their likely user; redirect it to a file).",
        ),
    ] = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Show the organization-wide funnel: badges issued, accepted, public, not expired,
    matched to a user, user active and licensed, synced; with counts per cause, the recipient
    emails that match no user (with the closest user) and the users whose item is stale.

    The funnel also checks that each user has a mailbox ("could not tell" when assignedPlans
    cannot be read). The rules are explain-user's: one answer per person (`people` in --json).

    A report: exit 0 when it could be made (2 configuration error, 3 a service failed).
    """
    if json_output and output_format is not Format.TABLE:
        from credly_connector.errors import UsageError

        def refuse() -> Outcome:
            raise UsageError(
                "--json and --format cannot be combined.", "Use one of them.", error_id="usage"
            )

        run_command("coverage", True, refuse)

    def body() -> Outcome:
        from credly_connector.config.load import load_instance
        from credly_connector.diagnostics.coverage import gather

        report = gather(load_instance(config, instance), datetime.now(UTC))

        def render(console: Console) -> None:
            if output_format is Format.MARKDOWN:
                console.file.write(report.markdown())
            elif output_format is Format.CSV:
                console.file.write(report.csv())
            elif output_format is Format.HTML:
                from credly_connector.diagnostics.coverage_html import render_html

                console.file.write(render_html(report))
            else:
                render_table(console, report)

        return Outcome(ExitCode.OK, report.to_dict(), render)

    run_command("coverage", json_output, body)


def register(app: typer.Typer) -> None:
    app.command("coverage")(coverage_command)
