"""How every command talks: data on stdout, chatter on stderr, one JSON document with --json.

The JSON envelope (docs/schemas/envelope.schema.json) is the same for every command::

    {"schema_version": 1, "command": "validate-config", "status": "ok|problems|error",
     "exit_code": 0, ...command-specific keys..., "error": {...} only when status is error}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import typer
from rich.console import Console

from credly_connector.cli.terminal import terminal
from credly_connector.errors import CredlyctlError, InternalError
from credly_connector.exit_codes import ExitCode

SCHEMA_VERSION = 1


def _status_for(code: ExitCode) -> str:
    if code == ExitCode.OK:
        return "ok"
    if code == ExitCode.PROBLEMS:
        return "problems"
    return "error"


@dataclass
class Outcome:
    """What a command produced: its exit code, its JSON data, and how to show it to a person."""

    exit_code: ExitCode
    data: dict[str, Any] = field(default_factory=dict)
    render: Callable[[Console], None] | None = None


def stdout_console() -> Console:
    return terminal().out


def stderr_console() -> Console:
    """stderr for what must always show: errors and their hints."""
    return terminal().err


def notice_console() -> Console:
    """stderr for progress, notes and next steps: silent under -q/--quiet."""
    return terminal().notices


def write_json(document: dict[str, Any]) -> None:
    terminal().json(document)


def envelope(command: str, code: ExitCode, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "status": _status_for(code),
        "exit_code": int(code),
        **data,
    }


def print_error(err: CredlyctlError) -> None:
    terminal().error(err)


def report_error(command: str, json_mode: bool, err: CredlyctlError) -> ExitCode:
    """Say that the command could not run: one JSON document, or Error/Hint on stderr."""
    term = terminal()
    term.traceback()
    code = err.exit_code
    if json_mode:
        term.json(envelope(command, code, {"error": err.to_dict()}))
    else:
        term.error(err)
    return code


def run_command(command: str, json_mode: bool, body: Callable[[], Outcome]) -> NoReturn:
    """Run a command body under the output and exit-code contract, then exit."""
    try:
        outcome = body()
    except CredlyctlError as err:
        raise typer.Exit(int(report_error(command, json_mode, err))) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug: say so plainly, traceback only on request
        bug = InternalError(
            f"credlyctl hit an internal error ({type(exc).__name__}).",
            "Run again with --debug to see the traceback, and report it as a bug.",
            error_id="internal",
        )
        raise typer.Exit(int(report_error(command, json_mode, bug))) from None
    if json_mode:
        terminal().json(envelope(command, outcome.exit_code, outcome.data))
    elif outcome.render is not None:
        outcome.render(terminal().out)
    raise typer.Exit(int(outcome.exit_code))
