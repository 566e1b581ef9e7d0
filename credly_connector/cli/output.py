"""How every command talks: data on stdout, chatter on stderr, one JSON document with --json.

The JSON envelope (docs/schemas/envelope.schema.json) is the same for every command::

    {"schema_version": 1, "command": "validate-config", "status": "ok|problems|error",
     "exit_code": 0, ...command-specific keys..., "error": {...} only when status is error}
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import typer
from rich.console import Console

from credly_connector.errors import CredlyctlError
from credly_connector.exit_codes import ExitCode
from credly_connector.secrets import scrub

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


def debug_enabled() -> bool:
    return os.environ.get("CREDLYCTL_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def make_console(*, stderr: bool, quiet: bool = False) -> Console:
    # Markup, emoji and highlighting off: emails and URLs with brackets must print as they are.
    no_color = bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"
    return Console(
        stderr=stderr,
        markup=False,
        emoji=False,
        highlight=False,
        no_color=no_color,
        soft_wrap=True,
        quiet=quiet,
    )


@dataclass
class _RunSettings:
    """What the root options decided for this run (`credlyctl -q ...`)."""

    quiet: bool = False
    warned: set[str] = field(default_factory=set)


_run = _RunSettings()


def start_run(*, quiet: bool) -> None:
    """Called once per invocation by the root command, before any command body runs."""
    global _run
    _run = _RunSettings(quiet=quiet)


class _ScrubbingFile:
    """A text stream that removes known secret values from everything written through it."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def write(self, text: str) -> int:
        self._target.write(scrub(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._target, "isatty", lambda: False)())

    def fileno(self) -> int:
        return int(self._target.fileno())

    @property
    def encoding(self) -> str:
        return str(getattr(self._target, "encoding", "utf-8"))


def stdout_console() -> Console:
    console = make_console(stderr=False)
    console.file = _ScrubbingFile(sys.stdout)  # type: ignore[assignment]
    return console


def stderr_console() -> Console:
    """stderr for what must always show: errors and their hints."""
    console = make_console(stderr=True)
    console.file = _ScrubbingFile(sys.stderr)  # type: ignore[assignment]
    return console


def notice_console() -> Console:
    """stderr for progress, notes and next steps: silent under -q/--quiet."""
    console = make_console(stderr=True, quiet=_run.quiet)
    console.file = _ScrubbingFile(sys.stderr)  # type: ignore[assignment]
    return console


def warn(message: str) -> None:
    """`Warning: message` on stderr, once per run however many sections repeat it. Shown
    under -q/--quiet too: a warning asks for action (a secret about to expire)."""
    if message in _run.warned:
        return
    _run.warned.add(message)
    stderr_console().print(f"Warning: {message}")


def _scrub_values(value: Any) -> Any:
    # Scrub strings one by one, never the serialized text: a secret that happens to equal
    # `true` or a key name must not be able to break the JSON document.
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(str(key)): _scrub_values(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_values(item) for item in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return scrub(str(value))


def write_json(document: dict[str, Any]) -> None:
    text = json.dumps(_scrub_values(document), indent=2, ensure_ascii=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def envelope(command: str, code: ExitCode, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "status": _status_for(code),
        "exit_code": int(code),
        **data,
    }


def print_error(err: CredlyctlError) -> None:
    console = stderr_console()
    console.print(f"Error: {err.message}")
    if err.hint:
        console.print(f"Hint: {err.hint}")


def run_command(command: str, json_mode: bool, body: Callable[[], Outcome]) -> NoReturn:
    """Run a command body under the output and exit-code contract, then exit."""
    try:
        outcome = body()
    except CredlyctlError as err:
        if debug_enabled():
            _print_traceback()
        code = err.exit_code
        if json_mode:
            write_json(envelope(command, code, {"error": err.to_dict()}))
        else:
            print_error(err)
        raise typer.Exit(int(code)) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug: say so plainly, traceback only on request
        code = ExitCode.INTERNAL
        if debug_enabled():
            _print_traceback()
        message = f"credlyctl hit an internal error ({type(exc).__name__})."
        hint = "Run again with --debug to see the traceback, and report it as a bug."
        if json_mode:
            write_json(
                envelope(
                    command, code, {"error": {"id": "internal", "message": message, "hint": hint}}
                )
            )
        else:
            print_error(CredlyctlError(message, hint))
        raise typer.Exit(int(code)) from None
    if json_mode:
        write_json(envelope(command, outcome.exit_code, outcome.data))
    elif outcome.render is not None:
        outcome.render(stdout_console())
    raise typer.Exit(int(outcome.exit_code))


def _print_traceback() -> None:
    # Plain traceback, frames only: local variables could hold secrets, so they are never shown.
    text = "".join(traceback.format_exc())
    sys.stderr.write(scrub(text))
