"""Usage errors from the installed program follow the contract: Error + Hint, exit 2."""

from __future__ import annotations

import subprocess

import pytest

from tests.cli.test_validate_e2e import _program


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_program(), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("args", "error", "hint_command"),
    [
        (["sync", "--no-such-option"], "Error: No such option: --no-such-option", "sync"),
        (["no-such-command"], "Error: No such command 'no-such-command'", ""),
        (["validate-org-id"], "Error: Missing argument 'GUID'", "validate-org-id"),
    ],
)
def test_usage_error_prints_error_and_hint_and_exits_2(
    args: list[str], error: str, hint_command: str
) -> None:
    result = _run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == error
    expected = f"credlyctl {hint_command}".strip()
    assert lines[1] == f"Hint: Run '{expected} --help' to see the arguments and options."
    assert "Traceback" not in result.stderr


def test_help_and_no_arguments() -> None:
    assert _run("--help").returncode == 0
    bare = _run()
    assert bare.returncode == 2
    assert "Usage: credlyctl" in bare.stdout + bare.stderr
