"""Running credlyctl in tests: in-process (CliRunner) or as the installed command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from credly_connector.cli.app import app


def invoke(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of an in-process run."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def command() -> list[str]:
    installed = Path(sys.executable).parent / "credlyctl"
    if installed.exists():
        return [str(installed)]
    return [sys.executable, "-c", "from credly_connector.cli.app import main; main()"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed `credlyctl` in a subprocess, as an admin or a CI job runs it."""
    return subprocess.run(
        [*command(), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )
