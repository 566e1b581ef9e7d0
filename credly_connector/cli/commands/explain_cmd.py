"""explain-user and diagnose: why a badge does not show, with the fix, check by check."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from credly_connector.cli.check_results import MARKS, render_result
from credly_connector.cli.options import (
    ConfigOption,
    InstanceOption,
    JsonOption,
    StrictOption,
    require_email,
)
from credly_connector.cli.output import Outcome, run_command
from credly_connector.diagnostics.model import CheckResult, CheckStatus
from credly_connector.exit_codes import ExitCode, combine

if TYPE_CHECKING:
    from credly_connector.diagnostics.context import DiagnosticContext
    from credly_connector.diagnostics.explain import Diagnosis

# The diagnostics core is imported when a command runs, not when credlyctl starts: every
# command module is loaded at start-up, and `diagnose` is timed interpreter start included.

VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Show every check with its evidence (by default the checks that passed, the notes and "
        "the checks not run are collapsed into one line each).",
    ),
]


# Shown one by one; the others are collapsed (passed on one line, notes and not-checked on
# another) unless -v.
_IN_FULL = frozenset({CheckStatus.FAIL, CheckStatus.ERROR, CheckStatus.WARN})


def _ids(results: list[CheckResult]) -> str:
    return ", ".join(dict.fromkeys(r.check_id for r in results))


def _group(results: list[CheckResult], status: CheckStatus, word: str) -> str | None:
    group = [r for r in results if r.status is status]
    return f"{len(group)} {word}: {_ids(group)}" if group else None


def render_checks(console: Console, results: list[CheckResult], *, verbose: bool) -> None:
    """Doctor style: problems in full, the rest collapsed into two lines; -v shows every check."""
    if verbose:
        for result in results:
            render_result(console, result, verbose=True)
        return
    for result in results:
        if result.status in _IN_FULL:
            # A failure's fix is in the verdict below; a warning's is only here.
            shown = result if result.status is not CheckStatus.FAIL else replace(result, fix="")
            render_result(console, shown, verbose=False)
    hint = "  (-v shows each)"
    passed = _group(results, CheckStatus.OK, "passed")
    if passed:
        console.print(f"{MARKS[CheckStatus.OK]} {passed}{hint}")
        hint = ""
    others = [
        g
        for g in (
            _group(results, CheckStatus.NOTE, "note(s)"),
            _group(results, CheckStatus.SKIPPED, "not checked"),
        )
        if g
    ]
    if others:
        console.print(f"{MARKS[CheckStatus.NOTE]} {'; '.join(others)}{hint}")


def render_diagnosis(console: Console, diagnosis: Diagnosis, *, verbose: bool) -> None:
    render_checks(console, diagnosis.results, verbose=verbose)
    console.print("")
    who = diagnosis.email or "the connection"
    if diagnosis.exit_code is ExitCode.OK:
        if diagnosis.email:
            console.print(f"Verdict: {who}'s badges should be visible; no cause found.")
        else:
            console.print("Verdict: the connection is healthy; no cause found.")
    elif not diagnosis.causes:
        console.print(
            f"Verdict: the checks for {who} could not conclude (a service did not answer); "
            "run the command again later."
        )
    else:
        console.print(
            f"Verdict for {who}: {len(diagnosis.causes)} cause(s), in the order of Microsoft's "
            "troubleshooting table:"
        )
        for number, cause in enumerate(diagnosis.causes, 1):
            where = "" if cause.in_table else " (not in Microsoft's table)"
            console.print(f"  {number}. {cause.title}{where}  [{cause.id}]")
            if verbose:
                for explanation in cause.explanations if cause.in_table else cause.explanations[1:]:
                    console.print(f"     {explanation}")
            for fix in cause.fixes:
                console.print(f"     Fix: {fix}")
        if diagnosis.exit_code is ExitCode.REMOTE:
            console.print("Some checks could not conclude because a service did not answer.")
    if diagnosis.next_command:
        console.print(f"Next: {diagnosis.next_command}")


def _exit_code(ctx: DiagnosticContext, diagnosis: Diagnosis) -> ExitCode:
    if ctx.config_error is not None:
        return combine(ExitCode.USAGE, diagnosis.exit_code)
    return diagnosis.exit_code


def _outcome(ctx: DiagnosticContext, diagnosis: Diagnosis, verbose: bool) -> Outcome:
    code = _exit_code(ctx, diagnosis)
    data = diagnosis.to_dict()
    data["instance"] = ctx.settings.name if ctx.settings else ctx.instance
    if ctx.config_error is not None:
        data["verdict"] = "not-run"
        data["error"] = ctx.config_error.to_dict()
    elif code is ExitCode.REMOTE:
        data["error"] = {
            "id": "remote-failure",
            "message": "A service did not answer, so some checks could not conclude.",
            "hint": "Run the command again later; the results show which checks were affected.",
        }
    return Outcome(
        code, data, lambda console: render_diagnosis(console, diagnosis, verbose=verbose)
    )


def explain_user_command(
    email: Annotated[str, typer.Argument(help="The person's email address (or the badge's).")],
    config: ConfigOption = None,
    instance: InstanceOption = None,
    strict: StrictOption = False,
    verbose: VerboseOption = False,
    json_output: JsonOption = False,
) -> None:
    """Explain why one person's Credly badges do or do not show on their Microsoft 365 profile.

    Walks Microsoft's troubleshooting table with live data: identity (UPN or primary SMTP),
    account (enabled, licensed, mailbox), the badges Credly holds for every address of the
    person in every configured instance (`--instance` narrows to one), badges at addresses that
    are probably the person's (a personal or misspelled address), whether a crawl has written
    them, and expected-behaviour notes. Prints what failed or warned, the verdict with its fix
    and the next command. Exit 0 when the badges should be visible, 1 when a cause was found, 2
    for a configuration error, 3 when a service did not answer.
    """

    def body() -> Outcome:
        from credly_connector.diagnostics.context import DiagnosticContext
        from credly_connector.diagnostics.explain import explain_user

        require_email(email, "credlyctl explain-user jane.doe@contoso.com")
        with DiagnosticContext.load(config, instance) as ctx:
            if ctx.config_error is not None:
                raise ctx.config_error
            ctx.all_instances = instance is None  # --instance narrows the search to one
            return _outcome(ctx, explain_user(ctx, email, strict=strict), verbose)

    run_command("explain-user", json_output, body)


def _list_checks(json_output: bool) -> None:
    from credly_connector.diagnostics import registry
    from credly_connector.diagnostics.explain import row_title

    checks = registry.all_checks()

    def render(console: Console) -> None:
        for check in checks:
            rows = "; ".join(row_title(r) for r in check.table_rows) or "-"
            needs = f" (needs {', '.join(check.requires)})" if check.requires else ""
            console.print(f"{check.id:<32} {check.scope:<10} {check.title}{needs}")
            console.print(f"{'':<43} rows: {rows}")

    data = {
        "checks": [
            {
                "id": c.id,
                "title": c.title,
                "scope": c.scope,
                "requires": list(c.requires),
                "table_rows": list(c.table_rows),
                "cause": c.cause,
                "fix": c.fix,
            }
            for c in checks
        ]
    }
    run_command("diagnose", json_output, lambda: Outcome(ExitCode.OK, data, render))


def diagnose_command(
    email: Annotated[
        str | None,
        typer.Argument(help="A person's email: also run the user checks for them."),
    ] = None,
    list_checks: Annotated[
        bool, typer.Option("--list-checks", help="List every check and exit.")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only this check (and its prerequisites); repeatable."),
    ] = None,
    config: ConfigOption = None,
    instance: InstanceOption = None,
    strict: StrictOption = False,
    verbose: VerboseOption = False,
    json_output: JsonOption = False,
) -> None:
    """Run the connection checks, then (with EMAIL) the user checks, and give a verdict.

    Connection checks: configuration, Organization ID, endpoint, credentials, permissions,
    connection state, schema, profile source registration and priority, last crawl; with EMAIL
    the user checks of explain-user too (every configured instance unless `--instance`). Prints
    what failed or warned in full and the other checks on one line each (`-v` shows every
    check), then the causes in the order of Microsoft's troubleshooting table, each with its
    fix, and the next command to run. Exit 0 when nothing is wrong, 1 when a cause was found, 2
    for a configuration error, 3 when a service did not answer.
    """
    if list_checks:
        _list_checks(json_output)
        return

    def body() -> Outcome:
        from credly_connector.diagnostics.context import DiagnosticContext
        from credly_connector.diagnostics.explain import diagnose

        if email is not None:
            require_email(email, "credlyctl diagnose jane.doe@contoso.com")
        with DiagnosticContext.load(config, instance) as ctx:
            ctx.all_instances = instance is None  # --instance narrows the search to one
            return _outcome(ctx, diagnose(ctx, email, only=only, strict=strict), verbose)

    run_command("diagnose", json_output, body)


def register(app: typer.Typer) -> None:
    app.command("explain-user")(explain_user_command)
    app.command("diagnose")(diagnose_command)
