"""diagnose against the demo tenant: the exact causes of each recorded connection problem,
and of each recorded user problem once the connection checks run first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from credly_connector.simulator.runner import start_simulator
from tests.diagnostics.explain_support import (
    Tenant,
    expectations,
    human_causes,
    synced_tenant,
    user_expectations,
)

pytestmark = pytest.mark.integration

# Warnings every run on the demo simulator carries: the custom-host opt-in the simulator needs
# and Microsoft's own Credly connector in the scenario. They count as causes only when a
# recorded expectation names them.
ENVIRONMENT_WARNINGS = {"config_warnings", "other_credly_source"}
CONNECTIONS = [c for c in expectations()["connections"] if c["id"] != "entra_secret_expiring"]
WARN_LINE = re.compile(r"^\[!\] .*\[[\w.]+: (\w+)\]$")


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    yield from synced_tenant(tmp_path_factory.mktemp("diagnose"))


def _reported(document: dict[str, Any], expected: set[str]) -> set[str]:
    causes = {c["id"] for c in document["causes"]}
    warned = {r["cause"] for r in document["results"] if r["status"] == "warn" and r["cause"]}
    return causes | (warned - ENVIRONMENT_WARNINGS) | (warned & expected)


def _config_for(tenant: Tenant, case: dict[str, Any], folder: Path) -> Path:
    change = dict(case.get("change", {}).get("config", {}))
    base_url = change.pop("base_url", None)
    # The recorded "before any sync" case gets a state folder no crawl has written to; the
    # others share the synced tenant's state, so only the recorded change differs.
    fresh = "before any sync" in case.get("when", "")
    state = folder / "fresh-state" if fresh else tenant.config.parent / "state"
    text = tenant.sim.config_toml(state_dir=state, **change)
    if base_url:
        text = re.sub(r"^base_url = .*$", f'base_url = "{base_url}"', text, count=1, flags=re.M)
    path = folder / f"{case['id']}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _diagnose(tenant: Tenant, config: Path, *args: str) -> Any:
    return tenant.runner.invoke(
        __import__("credly_connector.cli.app", fromlist=["app"]).app,
        ["diagnose", *args],
        env={**tenant.env, "CREDLYCTL_CONFIG": str(config)},
    )


@pytest.mark.parametrize("case", CONNECTIONS, ids=[c["id"] for c in CONNECTIONS])
def test_connection_problem_json(tenant: Tenant, case: dict[str, Any], tmp_path: Path) -> None:
    from tests.cli.schema_check import validate_output

    result = _diagnose(tenant, _config_for(tenant, case, tmp_path), "--json")
    document = validate_output(result.stdout)
    expected = set(case["causes"])
    assert _reported(document, expected) == expected, document["results"]
    if "error" in document:  # the configuration itself is unusable: exit 2 per the contract
        assert result.exit_code == 2
    else:  # a warning alone (e.g. a secret expiring soon) does not fail without --strict
        assert result.exit_code == (1 if document["causes"] else 0)


@pytest.mark.parametrize("case", CONNECTIONS, ids=[c["id"] for c in CONNECTIONS])
def test_connection_problem_human(tenant: Tenant, case: dict[str, Any], tmp_path: Path) -> None:
    result = _diagnose(tenant, _config_for(tenant, case, tmp_path))
    expected = set(case["causes"])
    warned = {m.group(1) for line in result.stdout.splitlines() if (m := WARN_LINE.match(line))}
    reported = human_causes(result.stdout) | (warned - ENVIRONMENT_WARNINGS) | (warned & expected)
    assert reported == expected, result.stdout
    assert result.exit_code in ((1, 2) if human_causes(result.stdout) else (0,))
    assert "Traceback" not in result.stdout + result.stderr


def test_secret_expiring_soon_is_a_warning(tmp_path: Path) -> None:
    """Set up with the app whose secret expires soon, so it owns the connection it checks."""
    case = next(c for c in expectations()["connections"] if c["id"] == "entra_secret_expiring")
    with start_simulator("demo") as sim:
        config = tmp_path / "expiring.toml"
        config.write_text(
            sim.config_toml(state_dir=tmp_path / "state", **case["change"]["config"]),
            encoding="utf-8",
        )
        tenant = Tenant(sim, config, __import__("typer.testing").testing.CliRunner())
        for step in ("setup", "sync"):
            assert tenant.invoke(step).exit_code == 0
        code, document = tenant.json("diagnose")
        assert _reported(document, set(case["causes"])) == set(case["causes"])
        assert code == 0
        strict = tenant.invoke("diagnose", "--strict")
        assert strict.exit_code == 1


USERS = user_expectations()


@pytest.mark.parametrize("expected", USERS, ids=[u["email"] for u in USERS])
def test_user_problem_after_the_connection_checks(tenant: Tenant, expected: dict[str, Any]) -> None:
    code, document = tenant.json("diagnose", expected["email"])
    assert _reported(document, set(expected["causes"])) == set(expected["causes"])
    assert code == (1 if expected["causes"] else 0)
    checks = [r["check_id"] for r in document["results"]]
    first_user = next(i for i, c in enumerate(checks) if c.startswith("user."))
    assert all(not c.startswith("user.") for c in checks[:first_user])
    assert all(c.startswith("user.") for c in checks[first_user:])


def test_without_email_runs_the_connection_checks_only(tenant: Tenant) -> None:
    code, document = tenant.json("diagnose")
    assert code == 0
    assert document["email"] is None
    assert not any(r["check_id"].startswith("user.") for r in document["results"])


def test_list_checks_names_every_check_with_its_rows(tenant: Tenant) -> None:
    code, document = tenant.json("diagnose", "--list-checks")
    ids = {c["id"] for c in document["checks"]}
    assert code == 0
    assert {"user.identity", "user.account", "user.badges", "user.synced"} <= ids
    rows = {r for c in document["checks"] for r in c["table_rows"]}
    from credly_connector.diagnostics.model import TABLE_ROWS

    assert set(TABLE_ROWS) <= rows


def test_only_runs_the_named_checks_and_their_prerequisites(tenant: Tenant) -> None:
    code, document = tenant.json("diagnose", "lee.gu@contoso.com", "--only", "user.account")
    assert [r["check_id"] for r in document["results"]] == ["user.identity", "user.account"]
    assert [c["id"] for c in document["causes"]] == ["user_disabled"]
    assert code == 1


def test_only_with_a_user_check_needs_an_email(tenant: Tenant) -> None:
    result = tenant.invoke("diagnose", "--only", "user.identity")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")


def test_unknown_check_id_is_a_usage_error(tenant: Tenant) -> None:
    result = tenant.invoke("diagnose", "--only", "user.identiy")
    assert result.exit_code == 2
    assert "user.identity" in result.stderr


@pytest.mark.parametrize("command", ["explain-user", "diagnose"])
def test_a_value_that_is_not_an_email_is_a_usage_error(tenant: Tenant, command: str) -> None:
    result = tenant.invoke(command, "alex.wilber")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: 'alex.wilber' is not an email address.")
