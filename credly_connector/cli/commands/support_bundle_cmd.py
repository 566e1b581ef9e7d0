"""`credlyctl support-bundle`: one archive to attach to a support request, nothing secret in it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from credly_connector.cli.options import ConfigOption, InstanceOption, JsonOption
from credly_connector.cli.output import Outcome, run_command
from credly_connector.config.resolved import InstanceSettings
from credly_connector.exit_codes import ExitCode


def _status(settings: InstanceSettings) -> dict[str, Any]:
    from credly_connector.sync.status import instance_status

    return instance_status(settings)


def support_bundle_command(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the archive (a .zip file or a folder). Default: "
            "credlyctl-support-<instance>-<time>.zip in the current folder.",
        ),
    ] = None,
    crawl_log: Annotated[
        Path | None,
        typer.Option(
            "--crawl-log",
            help="The crawl log to include (what `sync --log-file` wrote). Default: the newest "
            "*.jsonl or *.log file in the instance's state folder, if any.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Write a zip for a support request: versions, redacted configuration, status, the last
    crawl log, the connection diagnosis, and the shapes of the services' answers.

    Shapes are keys, value types and status codes only, never values. Secrets and e-mail
    addresses are removed from every file. Also works when the configuration has errors: the
    bundle then says which (exit 2 only when there is no configuration file at all). Exit 0
    when the archive is written.
    """
    from credly_connector.diagnostics.bundle import write_bundle
    from credly_connector.diagnostics.context import DiagnosticContext

    def body() -> Outcome:
        with DiagnosticContext.load(config, instance) as ctx:
            if ctx.config_error is not None and ctx.config_error.error_id == "CFG000":
                # No file at all: nothing worth bundling yet. A file with errors is still bundled.
                raise ctx.config_error
            report = write_bundle(ctx, output, status_provider=_status, crawl_log=crawl_log)

        def render(console: Console) -> None:
            console.print(f"Wrote {report.path}")
            for name in report.files:
                console.print(f"  {name}")
            for line in report.notes:
                console.print(f"Note: {line}")
            if report.diagnosis_exit_code:
                console.print(
                    "The connection diagnosis found problems: `credlyctl diagnose` shows them."
                )

        return Outcome(ExitCode.OK, report.to_dict(), render)

    run_command("support-bundle", json_output, body)


def register(app: typer.Typer) -> None:
    app.command("support-bundle")(support_bundle_command)
