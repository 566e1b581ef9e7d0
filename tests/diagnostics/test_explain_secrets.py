"""No secret appears in explain-user / diagnose output: failures and --debug included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from credly_connector.cli.app import app
from tests.cli.schema_check import validate_output
from tests.diagnostics.explain_support import Tenant, scenario_secrets, synced_tenant

pytestmark = pytest.mark.integration

WRONG_SECRET = "cs_sim_wrong_value_0000000000"


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    yield from synced_tenant(tmp_path_factory.mktemp("secrets"))


def _assert_clean(text: str) -> None:
    secrets = [*scenario_secrets(), WRONG_SECRET]
    assert secrets
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"secret value(s) in the output: {len(leaked)}"


@pytest.mark.parametrize(
    "args",
    [
        ("explain-user", "alex.wilber@contoso.com"),
        ("explain-user", "bianca.pisani@outlook.com", "--verbose"),
        ("diagnose", "enrico.cattaneo@contoso.com", "--verbose"),
        ("diagnose", "lee.gu@contoso.com", "--json"),
    ],
)
def test_normal_runs_show_no_secret(tenant: Tenant, args: tuple[str, ...]) -> None:
    result = tenant.invoke("--debug", *args)
    _assert_clean(result.stdout + result.stderr)


def test_wrong_credly_secret_with_debug_shows_no_secret(tenant: Tenant, tmp_path: Path) -> None:
    config = tmp_path / "wrong.toml"
    config.write_text(
        tenant.sim.config_toml(credly_client_secret=WRONG_SECRET, state_dir=tmp_path / "s"),
        encoding="utf-8",
    )
    for args in (
        ["--debug", "diagnose", "alex.wilber@contoso.com", "--verbose"],
        ["--debug", "diagnose", "alex.wilber@contoso.com", "--json"],
        ["--debug", "explain-user", "alex.wilber@contoso.com", "--verbose"],
    ):
        result = tenant.runner.invoke(
            app, args, env={**tenant.env, "CREDLYCTL_CONFIG": str(config)}
        )
        assert result.exit_code in (1, 2, 3), result.stdout
        _assert_clean(result.stdout + result.stderr)


def test_server_faults_with_debug_show_no_secret(tenant: Tenant) -> None:
    # Every Credly API answer is malformed JSON, every Graph answer a 503: the checks report
    # it (exit 3: retry later) and nothing leaks.
    tenant.sim.set_faults(
        malformed_json=[{"path": ".*", "service": "credly-api", "times": 100}],
        error_503_rate=1.0,
        error_503_services=["graph"],
    )
    try:
        result = tenant.invoke("--debug", "diagnose", "alex.wilber@contoso.com", "--verbose")
        as_json = tenant.invoke("--debug", "diagnose", "alex.wilber@contoso.com", "--json")
    finally:
        tenant.sim.set_faults(malformed_json=[], error_503_rate=0.0, error_503_services=None)
    assert result.exit_code == 3, result.stdout
    _assert_clean(result.stdout + result.stderr)
    document = validate_output(as_json.stdout)
    assert as_json.exit_code == 3 and document["verdict"] == "incomplete"
    assert document["error"]["id"] == "remote-failure"
    _assert_clean(as_json.stdout + as_json.stderr)
