"""`credlyctl test-credentials`: sign in to Credly and Entra ID and say exactly what fails."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from credly_connector.cli.options import ConfigOption, InstanceOption, JsonOption, StrictOption
from credly_connector.cli.output import Outcome, run_command
from credly_connector.diagnostics.model import CheckResult, CheckStatus
from credly_connector.exit_codes import ExitCode

# The envelope's `error` when a service did not answer (exit 3); the checks say which.
REMOTE_ERROR = {
    "id": "remote",
    "message": "A service or the network did not answer, so some checks could not conclude.",
    "hint": "Retry later; the checks marked remote_failure say which service failed.",
}

MARKS = {
    CheckStatus.OK: "[ok]  ",
    CheckStatus.WARN: "[warn]",
    CheckStatus.FAIL: "[FAIL]",
    CheckStatus.ERROR: "[????]",
    CheckStatus.SKIPPED: "[skip]",
    CheckStatus.NOTE: "[note]",
}
# Evidence worth showing a person (support ids, dates, what is missing); the rest is in --json.
SHOWN_EVIDENCE = (
    "codes",
    "correlation_id",
    "trace_id",
    "timestamp",
    "permission",
    "expires",
    "days_left",
    "visible_organizations",
    "other_environment",
    "assertion_issuer",
    "assertion_subject",
    "assertion_audience",
    "assertion_expires",
    "managed_identity",
    "identity_endpoint",
)


def render_results(console: Console, results: list[CheckResult] | tuple[CheckResult, ...]) -> None:
    for result in results:
        console.print(f"{MARKS[result.status]} {result.title}  ({result.check_id})")
        console.print(f"       {result.explanation}")
        if result.fix and result.status not in (CheckStatus.OK, CheckStatus.NOTE):
            console.print(f"       Fix: {result.fix}")
        if result.status in (CheckStatus.OK, CheckStatus.SKIPPED):
            continue
        for key in SHOWN_EVIDENCE:
            value: Any = result.evidence.get(key)
            if value not in (None, [], {}):
                console.print(f"       {key}: {value}")


def test_credentials_command(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    probe_other_environment: Annotated[
        bool,
        typer.Option(
            "--probe-other-environment",
            help="When Credly refuses the credentials, also try them against the other Credly "
            "environment (sandbox vs production). This sends them to that environment's Credly "
            "host, so it is never done without this flag.",
        ),
    ] = False,
    strict: StrictOption = False,
    json_output: JsonOption = False,
) -> None:
    """Sign in to Credly and Entra ID, and check the Graph permissions the sync needs.

    Credly: gets a token (or uses the authorization token) and reads the organization and one
    page of its badges. Entra ID: gets an app-only token (client secret, certificate,
    federated token or managed identity), shows the AADSTS cause and fix with the
    correlation id, trace id and timestamp (and, for a federated token, the token's issuer,
    subject, audience and expiry), and confirms each Graph permission. Warns
    before credentials expire where that can be known. Exit 0 all good, 1 a credential
    problem, 2 configuration error, 3 a service did not answer.
    """
    from credly_connector.diagnostics.context import DiagnosticContext
    from credly_connector.diagnostics.credentials import run_credential_checks

    def body() -> Outcome:
        with DiagnosticContext.load(config, instance) as ctx:
            if ctx.settings is None and ctx.config_error is not None:
                raise ctx.config_error
            report = run_credential_checks(
                ctx, probe_other_environment=probe_other_environment, strict=strict
            )

        def render(console: Console) -> None:
            render_results(console, report.results)
            console.print("")
            summary = ", ".join(
                f"{k}: {report.service_status(k)}" for k in ("credly", "entra", "graph")
            )
            console.print(f"Instance {report.instance}: {summary}")

        data = report.to_dict()
        if report.exit_code == ExitCode.REMOTE:
            data["error"] = REMOTE_ERROR
        return Outcome(report.exit_code, data, render)

    run_command("test-credentials", json_output, body)


def register(app: typer.Typer) -> None:
    app.command("test-credentials")(test_credentials_command)
