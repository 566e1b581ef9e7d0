"""`credlyctl check-endpoint [URL]`: is this the right Credly URL, and does the host answer?"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from credly_connector.cli.options import ConfigOption, InstanceOption, JsonOption
from credly_connector.cli.output import Outcome, run_command
from credly_connector.cli.terminal import terminal
from credly_connector.errors import CredlyctlError
from credly_connector.exit_codes import ExitCode

_STEP_MARKS = {"ok": "[ok]  ", "warn": "[warn]", "fail": "[FAIL]", "skipped": "[skip]"}
_FINDING_MARKS = {"error": "[FAIL]", "warning": "[warn]", "info": "[info]"}


def check_endpoint_command(
    url: Annotated[
        str | None,
        typer.Argument(
            help="The Credly URL to check. Default: the instance's configured Credly URL."
        ),
    ] = None,
    config: ConfigOption = None,
    instance: InstanceOption = None,
    probe: Annotated[
        bool,
        typer.Option("--probe/--no-probe", help="Also probe the host live (DNS, TCP, TLS, HTTP)."),
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """Check a Credly URL offline, then probe the host step by step.

    Static analysis: https, production (https://www.credly.com) or sandbox, the API host or a
    legacy Acclaim host pasted instead of the web host, typos of credly.com, extra paths,
    ports or query strings, each with the exact correction. Live probe of the corrected URL:
    DNS, TCP, TLS (certificate problems, TLS-inspecting proxies), HTTP, and whether the token
    endpoint answers like Credly's OAuth server. No credential is ever sent: the token endpoint
    is asked with a made-up client id and no secret. Uses the instance's CA bundle and proxy
    when a configuration is found.
    """
    from credly_connector.config.load import load_instance
    from credly_connector.diagnostics.endpoint import check_endpoint

    def body() -> Outcome:
        try:
            settings = load_instance(config, instance)
        except CredlyctlError as exc:
            if url is None:
                raise
            settings = None
            terminal().warning(
                f"no configuration used ({exc.message}); probing without its CA "
                "bundle or proxy settings."
            )
        report = check_endpoint(settings, url, probe=probe)

        def render(console: Console) -> None:
            analysis = report.analysis
            console.print(f"URL: {analysis.given}")
            for finding in analysis.findings:
                console.print(f"{_FINDING_MARKS[finding.severity]} {finding.message}")
                if finding.correction:
                    console.print(f"       Use: {finding.correction}")
            if report.probed_url:
                console.print(
                    f"Probing {report.probed_url}"
                    + (f" and {report.api_url}" if report.api_url else "")
                )
            for step in report.steps:
                console.print(
                    f"{_STEP_MARKS[step.status]} {step.step:<5} {step.target}: {step.detail}"
                )
                if step.fix and step.status != "ok":
                    console.print(f"       Fix: {step.fix}")

        data = report.to_dict()
        if report.exit_code == ExitCode.REMOTE:
            data["error"] = {
                "id": "remote",
                "message": "The host could not be reached, or answered with a server error.",
                "hint": "Retry later; the steps marked transient say where it stopped.",
            }
        return Outcome(report.exit_code, data, render)

    run_command("check-endpoint", json_output, body)


def register(app: typer.Typer) -> None:
    app.command("check-endpoint")(check_endpoint_command)
