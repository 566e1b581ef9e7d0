"""`credlyctl check-endpoint` through the CLI: the simulator's Credly web host, and offline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from credly_connector.simulator.runner import Simulator, start_simulator
from tests.cli.schema_check import validate_output
from tests.diagnostics.cli_helpers import invoke, run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with start_simulator("demo") as simulator:
        yield simulator


def test_simulated_credly_host_passes_and_is_a_custom_host(sim: Simulator, tmp_path: Path) -> None:
    path = sim.write_config(tmp_path / "c.toml", state_dir=tmp_path / "state")
    code, out, _ = invoke("check-endpoint", "--config", str(path), "--json")
    document = validate_output(out)
    assert code == 0
    assert [f["id"] for f in document["url"]["findings"]] == ["custom-host"]
    steps = [(s["step"], s["status"]) for s in document["steps"]]
    assert ("oauth", "ok") in steps and ("api", "ok") in steps
    assert all(status == "ok" for _, status in steps)
    oauth = next(s for s in document["steps"] if s["step"] == "oauth")
    assert oauth["evidence"]["oauth_error"] == "invalid_client"
    posts = [e for e in sim.request_log() if e.method == "POST"]
    # The probe asked the token endpoint once, and was refused: it sent no usable credential.
    assert [(e.path, e.status) for e in posts] == [("/oauth/token", 401)]


def test_api_host_pasted_gives_the_exact_correction_offline() -> None:
    code, out, _ = invoke("check-endpoint", "https://api.credly.com/v1", "--no-probe", "--json")
    document = validate_output(out)
    assert code == 1
    corrections = {f["id"]: f["correction"] for f in document["url"]["findings"]}
    assert corrections["api-host"] == "https://www.credly.com"
    assert corrections["extra-path"] == "https://www.credly.com"
    assert document["steps"] == []


def test_human_output_of_the_installed_command(tmp_path: Path) -> None:
    result = run("check-endpoint", "http://credly.com/oauth/token", "--no-probe")
    assert result.returncode == 1
    assert "https://www.credly.com" in result.stdout
    assert "Traceback" not in result.stderr


def test_unreachable_host_is_exit_3_with_error_in_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A resolver that fails for every name, so the test runs (and can fail) on any machine,
    # whether or not it can resolve www.credly.com.
    import socket

    from credly_connector.diagnostics import probe

    asked: list[str] = []

    def nowhere(host: str, port: int) -> list[tuple[str, int]]:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(probe, "system_resolver", nowhere)
    code, out, _ = invoke("check-endpoint", "https://www.credly.com", "--json")
    document = validate_output(out)
    assert asked and asked[0] == "www.credly.com"
    assert code == 3 and document["error"]["id"] == "remote"
    assert document["steps"][0]["step"] == "dns"
    assert document["steps"][0]["status"] == "fail"
