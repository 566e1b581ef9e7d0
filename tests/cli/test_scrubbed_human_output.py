"""The scrubber on the human-readable streams, through the real command-line output path.

A secret value that reaches a human message (an echoed URL, a path, a server's error text) is
replaced by the redaction marker on stdout and on stderr alike, not only in `--json`.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from credly_connector import secrets
from credly_connector.cli.app import app
from credly_connector.secrets import REDACTED, Secret

VALUE = "hUm4n-Stream-Secret-7c1d0e"


@pytest.fixture(autouse=True)
def _private_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only this module's secret is known, and it does not stay known for other tests.
    monkeypatch.setattr(secrets, "_KNOWN_VALUES", set())
    Secret(VALUE, "env:TEST_HUMAN_STREAM_SECRET")


def test_a_secret_echoed_on_stdout_is_scrubbed() -> None:
    # check-endpoint prints the URL it was given in its human report.
    result = CliRunner().invoke(
        app, ["check-endpoint", f"https://www.credly.com/{VALUE}", "--no-probe"]
    )
    assert result.exit_code == 1
    assert VALUE not in result.stdout
    assert f"https://www.credly.com/{REDACTED}" in result.stdout


def test_a_secret_in_an_error_on_stderr_is_scrubbed() -> None:
    missing = f"/nowhere/{VALUE}/config.toml"
    result = CliRunner().invoke(app, ["check-endpoint", "--config", missing])
    assert result.exit_code == 2
    assert VALUE not in result.stderr and VALUE not in result.stdout
    assert result.stderr.startswith("Error: ") and REDACTED in result.stderr
