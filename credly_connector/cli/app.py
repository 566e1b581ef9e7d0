"""The root `credlyctl` command: global options and the list of commands."""

from __future__ import annotations

import gc
import os
import sys
from typing import Annotated

import typer

from credly_connector import __version__
from credly_connector.cli.lazy import LazyCommand, LazyGroup, typer_app
from credly_connector.exit_codes import ExitCode

HELP = """Sync Credly badges into Microsoft 365 profiles, and explain why a badge does not show up.

Settings come from the configuration file; environment variables (CREDLYCTL_*) override the
file, and command-line flags override both.

Exit codes: 0 all good; 1 problems found; 2 usage or configuration error; 3 a remote service
or the network failed (retry later); 4 internal error.
"""

_COMMANDS = "credly_connector.cli.commands"

# The commands in --help order. A command's module is imported only when the command runs (or
# its help is shown), so `credlyctl --help` and the offline commands start fast. `summary` is
# the first sentence of the command's help; tests/cli/test_startup.py checks they agree.
COMMANDS = (
    LazyCommand(
        "demo",
        f"{_COMMANDS}.demo_cmd",
        "Run credlyctl end to end on a simulated tenant (SIMULATED DATA, nothing leaves this "
        "machine): setup, a full sync, status, then diagnose one case per row of Microsoft's "
        "troubleshooting table and a healthy user.",
    ),
    LazyCommand(
        "validate-config",
        f"{_COMMANDS}.validate",
        "Check the configuration file without any network call.",
    ),
    LazyCommand(
        "validate-org-id",
        f"{_COMMANDS}.validate",
        "Check a Credly Organization ID offline and print its canonical form.",
    ),
    LazyCommand(
        "setup",
        f"{_COMMANDS}.setup_cmd",
        "Create the Graph connection, register its schema and the profile source (idempotent).",
    ),
    LazyCommand(
        "teardown",
        f"{_COMMANDS}.setup_cmd",
        "Remove the source from the priority list, delete the profile source and the connection.",
    ),
    LazyCommand("sync", f"{_COMMANDS}.sync_cmd", "Sync Credly badges into Microsoft 365 profiles."),
    LazyCommand(
        "status",
        f"{_COMMANDS}.status_cmd",
        "Connection state, last full and incremental crawls, next crawl due, recent errors.",
    ),
    LazyCommand(
        "test-credentials",
        f"{_COMMANDS}.test_credentials_cmd",
        "Sign in to Credly and Entra ID, and check the Graph permissions the sync needs.",
    ),
    LazyCommand(
        "check-endpoint",
        f"{_COMMANDS}.check_endpoint_cmd",
        "Check a Credly URL offline, then probe the host step by step.",
    ),
    LazyCommand(
        "explain-user",
        f"{_COMMANDS}.explain_cmd",
        "Explain why one person's Credly badges do or do not show on their Microsoft 365 profile.",
    ),
    LazyCommand(
        "diagnose",
        f"{_COMMANDS}.explain_cmd",
        "Run the connection checks, then (with EMAIL) the user checks, and give a verdict.",
    ),
    LazyCommand(
        "coverage",
        f"{_COMMANDS}.coverage_cmd",
        "Show the organization-wide funnel: badges issued, accepted, public, not expired, "
        "matched to a user, user active and licensed, synced; with counts per cause, the "
        "recipient emails that match no user (with the closest user) and the users whose item "
        "is stale.",
    ),
    LazyCommand(
        "support-bundle",
        f"{_COMMANDS}.support_bundle_cmd",
        "Write a zip for a support request: versions, redacted configuration, status, the last "
        "crawl log, the connection diagnosis, and the shapes of the services' answers.",
    ),
    LazyCommand(
        "config",
        f"{_COMMANDS}.config_cmd",
        "Show the effective configuration, or write a starter configuration file.",
    ),
    LazyCommand(
        "simulator",
        f"{_COMMANDS}.simulator_cmd",
        "Run the simulated Credly, Entra ID and Microsoft Graph on 127.0.0.1 (rehearsals, CI).",
    ),
)


class RootGroup(LazyGroup):
    lazy_commands = COMMANDS


app = typer_app(
    name="credlyctl",
    help=HELP,
    cls=RootGroup,
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"credlyctl {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="CREDLYCTL_DEBUG",
            show_envvar=True,
            help="Show tracebacks (local variables are never shown).",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            envvar="CREDLYCTL_QUIET",
            show_envvar=True,
            help="No progress, notes or next steps on stderr, only warnings and errors (for "
            "scripts and schedulers). stdout and --json are unchanged.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Sync Credly badges into Microsoft 365 profiles, and explain what is missing."""
    # Imported here, not at the top: `credlyctl --help` never gets this far and stays light.
    from credly_connector.cli.terminal import configure
    from credly_connector.logpolicy import configure_library_logging

    if debug:
        os.environ["CREDLYCTL_DEBUG"] = "1"
    configure(debug=debug, quiet=quiet)
    # Before any library runs: msal and friends never print to the terminal on their own.
    configure_library_logging(debug=debug)


def _usage_error_class() -> type[Exception]:
    # Typer may vendor Click or use it directly; BadParameter derives from UsageError in both.
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "UsageError":
            return cls
    return typer.BadParameter  # pragma: no cover - a Typer without Click's UsageError


_UsageError = _usage_error_class()


def main() -> None:
    """Run credlyctl with the output contract applied to usage errors too."""
    try:
        _main()
    finally:
        # The command has closed what it opened. Exiting, Python would still search every
        # object of every module loaded for reference cycles, several times over: about 50 ms
        # of a `sync` (interpreter start is ~300 ms), for memory the process gives back anyway.
        # Frozen objects are left out of those searches (gc.freeze); the rest of the shutdown
        # (atexit, flushing, closing) is unchanged.
        gc.freeze()


def _main() -> None:
    try:
        code = app(prog_name="credlyctl", standalone_mode=False)
    except _UsageError as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # `credlyctl` alone: show the help
            err.show()  # type: ignore[attr-defined]
            sys.exit(int(ExitCode.USAGE))
        sys.exit(int(_report_usage_error(err, sys.argv[1:])))
    except typer.Abort:
        from credly_connector.cli.terminal import terminal

        terminal().err.print("Aborted.")
        sys.exit(int(ExitCode.USAGE))
    sys.exit(code if isinstance(code, int) else 0)


def _json_requested(args: list[str]) -> bool:
    """Whether --json is among the options (not after a `--` that ends them)."""
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options


def _report_usage_error(err: Exception, args: list[str]) -> ExitCode:
    """A command line Click refused: Error/Hint on stderr, or with --json one JSON document."""
    from credly_connector.cli.output import report_error
    from credly_connector.errors import UsageError

    ctx = getattr(err, "ctx", None)
    command_path = getattr(ctx, "command_path", None) or "credlyctl"
    command = command_path.removeprefix("credlyctl").strip() or "credlyctl"
    message = getattr(err, "format_message", lambda: str(err))()
    usage = UsageError(
        str(message).rstrip("."),
        f"Run '{command_path} --help' to see the arguments and options.",
        error_id="usage",
    )
    return report_error(command, _json_requested(args), usage)
