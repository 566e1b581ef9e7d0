"""The one object that decides how credlyctl talks to a person (after hatch's Terminal).

Verbosity, colour, debug and the two streams are decided once, when the root command starts
(`configure`), and every command writes through `terminal()`:

- `out`: data, on stdout; `err`: chatter, on stderr. Both pass the secret scrubber.
- `error()` is the only place `Error:` and `Hint:` are written (stderr, always, even quiet).
- `warning()` writes `Warning:` lines (stderr, once per run each, also when quiet: a warning
  asks for action); `info()` and `notices` are progress, notes and next steps (stderr, silent
  when quiet). Quiet (-q/--quiet, CREDLYCTL_QUIET) never changes stdout.
- `json()` writes the one JSON document of `--json` (stdout).

Consoles are made when asked for, so they follow `sys.stdout`/`sys.stderr` as they are then
(a test runner swaps them); the settings that shape them are fixed here.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from rich.console import Console

from credly_connector.errors import CredlyctlError
from credly_connector.secrets import scrub

_TRUE = {"1", "true", "yes", "on"}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


class _ScrubbingFile:
    """A text stream that removes known secret values from everything written through it."""

    def __init__(self, target: TextIO) -> None:
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


def _scrub_values(value: Any) -> Any:
    # Scrub strings one by one, never the serialized text: a secret that happens to equal
    # `true` or a key name must not be able to break the JSON document.
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(str(key)): _scrub_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_values(item) for item in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return scrub(str(value))


@dataclass(frozen=True)
class Terminal:
    quiet: bool = False  # no progress or notes on stderr; warnings and errors still show
    debug: bool = False  # tracebacks on errors (frames only, never local variables)
    color: bool = True  # off with NO_COLOR or TERM=dumb
    # Warnings already shown this run: the custom-host opt-in of every instance under --all
    # is said once.
    _warned: set[str] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def from_environment(cls) -> Terminal:
        return cls(
            quiet=_env_flag("CREDLYCTL_QUIET"),
            debug=_env_flag("CREDLYCTL_DEBUG"),
            color=not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb",
        )

    # -- streams -------------------------------------------------------------------------

    def _console(self, stream: TextIO, *, stderr: bool, quiet: bool = False) -> Console:
        # Markup, emoji and highlighting off: emails and URLs with brackets print as they are.
        console = Console(
            stderr=stderr,
            markup=False,
            emoji=False,
            highlight=False,
            no_color=not self.color,
            soft_wrap=True,
            quiet=quiet,
        )
        console.file = _ScrubbingFile(stream)  # type: ignore[assignment]
        return console

    @property
    def out(self) -> Console:
        """Data: tables, results, anything a pipe may want (stdout)."""
        return self._console(sys.stdout, stderr=False)

    @property
    def err(self) -> Console:
        """What must always show on stderr: errors and their hints."""
        return self._console(sys.stderr, stderr=True)

    @property
    def notices(self) -> Console:
        """Progress, notes and next steps on stderr: silent when quiet."""
        return self._console(sys.stderr, stderr=True, quiet=self.quiet)

    # -- what a command says -------------------------------------------------------------

    def error(
        self,
        err: CredlyctlError | Mapping[str, Any],
        *,
        instance: str | None = None,
    ) -> None:
        """`Error: ...` and `Hint: ...` on stderr; with `instance`, which instance it was."""
        if isinstance(err, CredlyctlError):
            message, hint = err.message, err.hint
        else:
            message, hint = str(err.get("message") or ""), str(err.get("hint") or "")
        console = self.err
        where = f"Instance {instance}: " if instance is not None else ""
        console.print(f"{where}Error: {message}")
        if hint:
            console.print(f"Hint: {hint}")

    def warning(self, message: str) -> None:
        """`Warning: message` on stderr, once per run however many instances repeat it."""
        if message in self._warned:
            return
        self._warned.add(message)
        self.err.print(f"Warning: {message}")

    def info(self, message: str) -> None:
        """Progress and next steps: stderr, nothing when quiet."""
        self.notices.print(message)

    def json(self, document: dict[str, Any]) -> None:
        text = json.dumps(_scrub_values(document), indent=2, ensure_ascii=False)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def traceback(self) -> None:
        """The current exception's traceback on stderr, when debugging; frames only."""
        if self.debug:
            sys.stderr.write(scrub("".join(traceback.format_exc())))


_current: Terminal | None = None


def terminal() -> Terminal:
    """The terminal of this run (from the environment until `configure` is called)."""
    global _current
    if _current is None:
        _current = Terminal.from_environment()
    return _current


def configure(**settings: Any) -> Terminal:
    """Fix this run's settings (the root command's --debug, and --quiet once it exists)."""
    global _current
    _current = replace(Terminal.from_environment(), _warned=set(), **settings)
    return _current
