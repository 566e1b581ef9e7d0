"""Usage errors from the installed program follow the contract: Error + Hint, exit 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.schema_check import validate_output
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


@pytest.mark.parametrize(
    ("args", "command", "words"),
    [
        (["sync", "--bogus", "--json"], "sync", "No such option: --bogus"),
        (["explain-user", "--json"], "explain-user", "Missing argument"),
        (["sync", "--user", "notanemail", "--json"], "sync", "not an email address"),
    ],
)
def test_json_usage_errors_are_one_json_document(
    args: list[str], command: str, words: str, tmp_path: Path
) -> None:
    """Hardening L5: with --json, stdout holds exactly one JSON document, usage errors too."""
    result = _run(*args, "--config", str(tmp_path / "none.toml"))
    assert result.returncode == 2, result.stderr
    document = json.loads(result.stdout)
    assert document["command"] == command and document["exit_code"] == 2
    assert document["status"] == "error" and words in document["error"]["message"]
    assert document["error"]["hint"]
    validate_output(result.stdout)
    assert "Traceback" not in result.stderr


def test_sync_user_that_is_not_an_email_is_a_usage_error(tmp_path: Path) -> None:
    result = _run("sync", "--user", "notanemail", "--config", str(tmp_path / "none.toml"))
    assert result.returncode == 2
    assert result.stderr.startswith("Error: 'notanemail' is not an email address.")
    assert "\nHint: " in result.stderr


@pytest.mark.parametrize("value", ["", "."])
def test_sync_log_file_that_is_a_folder_is_a_usage_error(value: str, tmp_path: Path) -> None:
    """Hardening L2: `--log-file ''` opened the current folder and exited 4."""
    result = _run("sync", "--log-file", value, "--config", str(tmp_path / "none.toml"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Error: --log-file needs a file name")
    assert "Traceback" not in result.stderr
