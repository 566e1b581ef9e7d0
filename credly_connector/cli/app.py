"""The root `credlyctl` command: global options and the list of commands."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from typing import Annotated

import typer

from credly_connector import __version__
from credly_connector.cli.output import print_error, stderr_console
from credly_connector.errors import CredlyctlError
from credly_connector.exit_codes import ExitCode

HELP = """Sync Credly badges into Microsoft 365 profiles, and explain why a badge does not show up.

Settings come from the configuration file; environment variables (CREDLYCTL_*) override the
file, and command-line flags override both.

Exit codes: 0 all good; 1 problems found; 2 usage or configuration error; 3 a remote service
or the network failed (retry later); 4 internal error.
"""

app = typer.Typer(
    name="credlyctl",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Every module in cli/commands registers its own commands; ORDER (an int) sorts --help.
COMMANDS_PACKAGE = "credly_connector.cli.commands"


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
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Sync Credly badges into Microsoft 365 profiles, and explain what is missing."""
    if debug:
        os.environ["CREDLYCTL_DEBUG"] = "1"


def _register_commands() -> None:
    package = importlib.import_module(COMMANDS_PACKAGE)
    modules = [
        importlib.import_module(f"{COMMANDS_PACKAGE}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    ]
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.register(app)


_register_commands()


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
        code = app(prog_name="credlyctl", standalone_mode=False)
    except _UsageError as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # `credlyctl` alone: show the help
            err.show()  # type: ignore[attr-defined]
            sys.exit(int(ExitCode.USAGE))
        _print_usage_error(err)
        sys.exit(int(ExitCode.USAGE))
    except typer.Abort:
        stderr_console().print("Aborted.")
        sys.exit(int(ExitCode.USAGE))
    sys.exit(code if isinstance(code, int) else 0)


def _print_usage_error(err: Exception) -> None:
    ctx = getattr(err, "ctx", None)
    command_path = getattr(ctx, "command_path", None) or "credlyctl"
    message = getattr(err, "format_message", lambda: str(err))()
    print_error(
        CredlyctlError(
            str(message).rstrip("."),
            f"Run '{command_path} --help' to see the arguments and options.",
        )
    )
