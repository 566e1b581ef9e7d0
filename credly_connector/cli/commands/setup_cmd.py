"""`credlyctl setup` and `credlyctl teardown`: the connection, schema and profile source."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from credly_connector.cli.instances import (
    AllOption,
    for_each_instance,
    instance_names,
    instances_data,
)
from credly_connector.cli.options import ConfigOption, InstanceOption, JsonOption
from credly_connector.cli.output import Outcome, run_command
from credly_connector.cli.terminal import terminal
from credly_connector.config.resolved import InstanceSettings
from credly_connector.errors import UsageError
from credly_connector.exit_codes import ExitCode
from credly_connector.sync.setup import SetupReport, run_setup, run_teardown


def _report_dict(report: SetupReport) -> dict[str, Any]:
    return {
        "instance": report.instance,
        "connection_id": report.connection_id,
        "changed": report.changed,
        "connection_state": report.connection_state,
        "steps": [s.to_dict() for s in report.steps],
        "prioritized_source_urls": report.prioritized_source_urls,
        "warnings": report.warnings,
        "exit_code": 0,
    }


def _render(console: Console, results: list[dict[str, Any]], title: str) -> None:
    for result in results:
        if "steps" not in result:
            terminal().error(result["error"], instance=result["instance"])
            continue
        table = Table("step", "status", "detail", title=f"{title} of {result['instance']}")
        for step in result["steps"]:
            table.add_row(step["step"], step["status"], step["detail"])
        console.print(table)
        for warning in result["warnings"]:
            terminal().warning(warning)
        if "changed" in result and not result["changed"]:
            console.print("Nothing changed: everything was already in place.")


def setup_command(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    all_instances: AllOption = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Seconds to wait for Graph to apply the schema.", min=1),
    ] = 1200.0,
    json_output: JsonOption = False,
) -> None:
    """Create the Graph connection, register its schema and the profile source (idempotent).

    Puts the source ahead of the Entra ID source and any source credlyctl did not create in
    the prioritized list, keeping every entry. A second run changes nothing. An existing
    connection with another schema is reported and left alone (exit 2).
    """

    def body() -> Outcome:
        names = instance_names(config, instance, all_instances)

        def work(settings: InstanceSettings) -> dict[str, Any]:
            report = run_setup(
                settings,
                progress=terminal().info,
                schema_timeout=timeout,
            )
            return _report_dict(report)

        results, code = for_each_instance(config, names, work, lambda r: ExitCode.OK)
        return Outcome(code, instances_data(results, code), lambda c: _render(c, results, "Setup"))

    run_command("setup", json_output, body)


def teardown_command(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Remove the source from the priority list, delete the profile source and the connection.

    Every badge credlyctl put on profiles disappears (Microsoft 365 can take a day). Asks for
    confirmation unless --yes.
    """

    def body() -> Outcome:
        names = instance_names(config, instance, False)

        def work(settings: InstanceSettings) -> dict[str, Any]:
            connection_id = settings.graph.connection_id
            if not yes:
                if json_output or not sys.stdin.isatty():
                    raise UsageError(
                        "teardown deletes the connection and needs confirmation.",
                        "Run it again with --yes to confirm without a prompt.",
                        error_id="teardown_confirm",
                    )
                if not typer.confirm(
                    f"Delete connection '{connection_id}' of instance '{settings.name}' and "
                    "remove every badge it put on profiles?",
                    err=True,
                ):
                    raise UsageError(
                        "Teardown cancelled; nothing was changed.",
                        "",
                        error_id="teardown_cancelled",
                    )
            report = run_teardown(settings)
            return _report_dict(report)

        results, code = for_each_instance(config, names, work, lambda r: ExitCode.OK)
        return Outcome(
            code, instances_data(results, code), lambda c: _render(c, results, "Teardown")
        )

    run_command("teardown", json_output, body)


def register(app: typer.Typer) -> None:
    app.command("setup")(setup_command)
    app.command("teardown")(teardown_command)
