"""`--all`: one exit code for all instances by the documented precedence 4, 2, 3, 1, 0.

A configuration error in one instance (2) must outrank a network failure in another (3):
`max()` would say 3, "retry later", and the broken configuration would never be fixed.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from credly_connector.cli import instances
from credly_connector.cli.app import app
from credly_connector.cli.commands import setup_cmd, status_cmd, sync_cmd
from credly_connector.errors import ConfigError, InternalError
from credly_connector.exit_codes import ExitCode, combine
from credly_connector.graph.errors import GraphUnavailable
from tests.cli.schema_check import validate_output


def _settings(name: str | None) -> Any:
    if name == "broken":
        raise ConfigError("instance 'broken' has no org_id", "Set credly.org_id.")
    return SimpleNamespace(name=name, warnings=[])


def _fails(settings: Any, *args: Any, **kwargs: Any) -> Any:
    if settings.name == "down":
        raise GraphUnavailable("network", "could not reach Microsoft Graph", "Retry later.")
    if settings.name == "bug":
        raise InternalError("a rule credlyctl broke", "Report it.")
    raise AssertionError(f"unexpected instance {settings.name}")


class _Clients:
    def for_sync(self) -> None:
        return None

    def close(self) -> None:
        pass


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    chosen = ["down", "broken"]  # the remote failure first: order must not matter either
    monkeypatch.setattr(instances, "list_instances", lambda config: list(chosen))
    monkeypatch.setattr(instances, "load_instance", lambda config, name: _settings(name))
    monkeypatch.setattr(setup_cmd, "run_setup", _fails)
    monkeypatch.setattr(status_cmd, "instance_status", _fails)
    monkeypatch.setattr(sync_cmd, "run_sync", _fails)
    monkeypatch.setattr("credly_connector.sync.clients.build_clients", lambda s: _Clients())
    return chosen


@pytest.mark.parametrize("command", ["setup", "status", "sync"])
def test_a_configuration_error_outranks_a_network_failure(names: list[str], command: str) -> None:
    result = CliRunner().invoke(app, [command, "--all", "--json"])
    assert result.exit_code == ExitCode.USAGE, result.stdout + result.stderr
    document = validate_output(result.stdout)
    assert document["exit_code"] == 2
    assert [r["instance"] for r in document["instances"]] == ["down", "broken"]


@pytest.mark.parametrize("command", ["setup", "status", "sync"])
def test_a_bug_outranks_everything(names: list[str], command: str) -> None:
    names.append("bug")
    result = CliRunner().invoke(app, [command, "--all", "--json"])
    assert result.exit_code == ExitCode.INTERNAL
    assert json.loads(result.stdout)["exit_code"] == 4


def test_per_instance_errors_go_to_stderr(names: list[str]) -> None:
    result = CliRunner().invoke(app, ["sync", "--all"])
    assert result.exit_code == ExitCode.USAGE
    assert "Error" not in result.stdout
    assert "Instance down: Error: could not reach Microsoft Graph" in result.stderr
    assert "Instance broken: Error: instance 'broken' has no org_id" in result.stderr
    assert "Hint: Set credly.org_id." in result.stderr


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ((3, 2), 2),
        ((1, 3), 3),
        ((0, 1), 1),
        ((3, 4, 2), 4),
        ((0, 0), 0),
    ],
)
def test_combine_follows_the_documented_order(codes: tuple[int, ...], expected: int) -> None:
    assert combine(*(ExitCode(c) for c in codes)) is ExitCode(expected)
