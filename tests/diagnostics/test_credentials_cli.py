"""`credlyctl test-credentials` against the simulator, in human and --json modes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from credly_connector.diagnostics import registry
from credly_connector.diagnostics.checks.credly_checks import _other_environment
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.credentials import run_credential_checks
from credly_connector.diagnostics.model import CheckStatus
from credly_connector.endpoints import CredlyEnvironment
from credly_connector.simulator.runner import Simulator, start_simulator
from tests.cli.schema_check import validate_output
from tests.diagnostics.cli_helpers import invoke, run
from tests.diagnostics.helpers_settings import CREDLY_SECRET, ENTRA_SECRET, make_settings
from tests.diagnostics.sim_secrets import leaked, scenario_secrets_and_emails

pytestmark = pytest.mark.integration

SECRET_ID = "1da060c2-3e2f-5f9a-8ee3-69ad65d780b7"  # the main app's secret ID, not its value


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with start_simulator("demo") as simulator:
        yield simulator


def config(sim: Simulator, folder: Path, **changes: object) -> str:
    return str(sim.write_config(folder / "credlyctl.toml", state_dir=folder / "state", **changes))


def test_good_credentials_exit_0_with_valid_json(sim: Simulator, tmp_path: Path) -> None:
    code, out, _ = invoke("test-credentials", "--config", config(sim, tmp_path), "--json")
    document = validate_output(out)
    assert code == 0 and document["exit_code"] == 0
    assert document["services"] == {"credly": "ok", "entra": "ok", "graph": "ok"}
    ids = [c["check_id"] for c in document["checks"]]
    assert {"credly.credentials", "entra.token", "graph.permissions"} <= set(ids)


def test_pasted_secret_id_shows_cause_fix_and_support_ids(sim: Simulator, tmp_path: Path) -> None:
    path = config(sim, tmp_path, entra_secret=SECRET_ID)
    code, out, _ = invoke("test-credentials", "--config", path)
    assert code == 1
    assert "AADSTS7000215" in out and "Secret ID" in out
    for label in ("correlation_id:", "trace_id:", "timestamp:"):
        assert label in out
    code, out, _ = invoke("test-credentials", "--config", path, "--json")
    document = validate_output(out)
    token = next(c for c in document["checks"] if c["check_id"] == "entra.token")
    assert token["status"] == "fail" and token["evidence"]["correlation_id"]
    assert document["services"]["graph"] == "skipped"


def test_wrong_credly_secret_is_told_apart(sim: Simulator, tmp_path: Path) -> None:
    path = config(sim, tmp_path, credly_client_secret="cs_sim_wrong_value_0000000000")
    code, out, _ = invoke("test-credentials", "--config", path, "--json")
    document = validate_output(out)
    credly = next(c for c in document["checks"] if c["check_id"] == "credly.credentials")
    assert code == 1 and credly["evidence"]["error"] == "invalid_client"
    assert credly["table_row"] == "bad-client-credentials"
    assert "new" in credly["fix"].lower()  # a secret cannot be read back: create a new one


def test_missing_configuration_is_exit_2_with_error_and_hint(tmp_path: Path) -> None:
    code, _out, err = invoke("test-credentials", "--config", str(tmp_path / "absent.toml"))
    assert code == 2
    assert "Error:" in err and "Hint:" in err and "Traceback" not in err


def test_service_down_is_exit_3(tmp_path: Path) -> None:
    with start_simulator("demo") as sim:
        path = config(sim, tmp_path)
        sim.set_faults(error_503_rate=1.0, retry_after_seconds=0)  # every service answers 503
        code, out, _ = invoke("test-credentials", "--config", path, "--json")
    document = validate_output(out)
    assert code == 3
    remote = [c for c in document["checks"] if c["remote_failure"]]
    assert {c["check_id"] for c in remote} >= {"credly.credentials", "entra.token"}


def test_no_secret_in_any_output_even_failing_with_debug(sim: Simulator, tmp_path: Path) -> None:
    secrets, _ = scenario_secrets_and_emails()
    cases = [
        {},
        {"entra_secret": SECRET_ID},
        {"credly_client_secret": "cs_sim_wrong_value_0000000000"},
        {"credly_auth": "token"},
    ]
    for number, changes in enumerate(cases):
        folder = tmp_path / str(number)
        path = config(sim, folder, **changes)
        extra = ["--json"] if number % 2 else []  # both output modes, half the processes
        result = run("--debug", "test-credentials", "--config", path, *extra)
        assert result.returncode in (0, 1), result.stderr
        assert not leaked(result.stdout + result.stderr, secrets), changes


def test_other_environment_is_tried_only_with_the_flag(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    other = _other_environment(settings)
    assert other is not None and other.credly.environment == CredlyEnvironment.SANDBOX
    assert other.credly.web_base == "https://sandbox.credly.com"
    seen: list[str] = []

    def sandbox(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url.host))
        if request.url.path == "/oauth/token":
            return httpx.Response(
                200, json={"access_token": "sandbox-token-1234", "expires_in": 60}
            )
        return httpx.Response(
            200, json={"data": {"id": settings.credly.org_id, "name": "Sandbox Org"}}
        )

    def production(settings_: object) -> object:
        class Refusing:
            def get_organization(self) -> object:
                from credly_connector.credly.errors import CredlyAuthError

                raise CredlyAuthError("invalid_client", "Credly rejected the client.", "Fix it.")

        return Refusing()

    def ctx(flag: bool) -> DiagnosticContext:
        context = DiagnosticContext(settings, credly_factory=production)  # type: ignore[arg-type]
        context.other_environment_transport = httpx.MockTransport(sandbox)
        context.probe_other_environment = flag
        return context

    without = registry.run_checks(ctx(False), ["credly.credentials"])[-1]
    assert seen == [] and without.table_row == "bad-client-credentials"
    with_flag = registry.run_checks(ctx(True), ["credly.credentials"])[-1]
    assert set(seen) == {"sandbox.credly.com", "sandbox-api.credly.com"}
    assert with_flag.status == CheckStatus.FAIL
    assert "work in Credly sandbox" in with_flag.explanation
    assert 'environment = "sandbox"' in with_flag.fix
    text = json.dumps(with_flag.to_dict())
    assert (
        CREDLY_SECRET not in text and ENTRA_SECRET not in text and "sandbox-token-1234" not in text
    )


def test_report_lists_credential_checks_with_prerequisites(sim: Simulator, tmp_path: Path) -> None:
    ctx = DiagnosticContext.load(Path(config(sim, tmp_path)), None)
    report = run_credential_checks(ctx)
    assert [r.check_id for r in report.results][:3] == [
        "credly.org_id_format",
        "credly.endpoint",
        "credly.credentials",
    ]
