"""No stored secret, end to end: a sync with a federated token and with a managed identity,
and every documented failure of both explained by test-credentials (issue 11 item 3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from credly_connector.simulator.runner import Simulator, start_simulator
from tests.sync.simhelpers import do_setup, do_sync, graph_view, oracle, settings_of

pytestmark = pytest.mark.integration

USER_ASSIGNED = "9b8a7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with start_simulator("demo") as simulator:
        yield simulator


def _config(sim: Simulator, folder: Path, **options: Any) -> Path:
    return sim.write_config(folder / "credlyctl.toml", state_dir=folder / "state", **options)


def _credentials(
    config: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """test-credentials --json in-process; (exit code, document, the entra.token check)."""
    from typer.testing import CliRunner

    from credly_connector.cli.app import app

    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["test-credentials", "--config", str(config), "--json"])
    document = json.loads(result.stdout)
    token = next(c for c in document["checks"] if c["check_id"] == "entra.token")
    return result.exit_code, document, token


# ---- federated token ----------------------------------------------------------------------------


def test_a_full_sync_with_a_federated_token(fresh_sim: Simulator, tmp_path: Path) -> None:
    config = _config(fresh_sim, tmp_path, entra_auth="federated_token")
    assert "client_secret" not in config.read_text().split("[instances.demo.entra]")[1]
    settings = settings_of(config)
    assert settings.entra.credential_kind == "federated_token"
    do_setup(settings)
    report = do_sync(settings)
    assert report.kind == "full" and report.exit_code == 0
    assert graph_view(fresh_sim) == oracle(fresh_sim)


def test_the_token_file_is_read_again_at_each_sign_in(sim: Simulator, tmp_path: Path) -> None:
    from credly_connector.graph.auth import EntraTokenProvider
    from credly_connector.net import build_http_client

    token_file = sim.write_federated_token(tmp_path / "token")
    settings = settings_of(
        _config(sim, tmp_path, entra_auth="federated_token", federated_token_file=token_file)
    )
    tokens = EntraTokenProvider(
        settings.entra, build_http_client(settings, "microsoft"), network=settings.network
    )
    assert tokens.get_token()
    # The job writes a token Entra refuses; the next sign-in must present it, not the old one.
    sim.write_federated_token(
        token_file,
        issuer=sim.federated_credential()["issuer"],
        subject="repo:contoso/other:ref:refs/heads/main",
    )
    tokens.force_refresh()
    from credly_connector.graph.errors import EntraAuthError

    with pytest.raises(EntraAuthError) as caught:
        tokens.get_token()
    assert caught.value.codes == [700213]


@pytest.mark.parametrize(
    ("claims", "code", "fragment"),
    [
        ({"issuer": "https://token.actions.example.net"}, "AADSTS700211", "issuer"),
        ({"subject": "repo:contoso/credly-sync:ref:refs/heads/dev"}, "AADSTS700213", "subject"),
        ({"audience": "api://AzureADMyOrg"}, "AADSTS700212", "audience"),
        ({"lifetime_seconds": 300, "issued_seconds_ago": 3600}, "AADSTS700024", "expired"),
        ({"signed_by": "https://someone-else.example.net"}, "AADSTS50027", "JWT"),
    ],
)
def test_test_credentials_explains_each_federated_failure(
    sim: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    claims: dict[str, Any],
    code: str,
    fragment: str,
) -> None:
    trusted = sim.federated_credential()
    full = {"issuer": trusted["issuer"], "subject": trusted["subject"], **claims}
    token_file = sim.write_federated_token(tmp_path / "token", **full)
    config = _config(sim, tmp_path, entra_auth="federated_token", federated_token_file=token_file)
    exit_code, document, token = _credentials(config, monkeypatch)
    assert exit_code == 1 and token["status"] == "fail"
    assert token["cause"] == code
    assert code in token["explanation"] and fragment in token["explanation"] + token["fix"]
    evidence = token["evidence"]
    assert evidence["credential"] == "federated_token"
    assert evidence["assertion_issuer"] == full["issuer"]
    assert evidence["assertion_subject"] == full["subject"]
    assert evidence["correlation_id"]
    assert token_file.read_text() not in json.dumps(document)  # the token itself never shown


def test_an_app_without_federated_credentials_is_aadsts70021(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_app = "613d025a-96de-5a1e-820f-5db98b64f910"  # "users only": no federated credential
    trusted = sim.federated_credential()
    token_file = sim.write_federated_token(
        tmp_path / "token", issuer=trusted["issuer"], subject=trusted["subject"]
    )
    config = _config(
        sim,
        tmp_path,
        entra_auth="federated_token",
        entra_app_id=other_app,
        federated_token_file=token_file,
    )
    _, _, token = _credentials(config, monkeypatch)
    assert token["cause"] == "AADSTS70021" and "Federated credentials" in token["fix"]


def test_an_unreadable_token_file_is_explained(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = sim.write_federated_token(tmp_path / "token")
    config = _config(sim, tmp_path, entra_auth="federated_token", federated_token_file=token_file)
    token_file.unlink()  # the CI step that writes it did not run
    from typer.testing import CliRunner

    from credly_connector.cli.app import app

    result = CliRunner().invoke(app, ["test-credentials", "--config", str(config), "--json"])
    document = json.loads(result.stdout)
    assert result.exit_code == 2
    assert document["error"]["id"] == "CFG032"
    assert "does not exist" in document["error"]["message"]
    assert "api://AzureADTokenExchange" in document["error"]["hint"]


# ---- managed identity ---------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["app_service", "imds"])
def test_a_full_sync_with_a_managed_identity(
    fresh_sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str
) -> None:
    for name, value in fresh_sim.managed_identity_env(style).items():
        monkeypatch.setenv(name, value)
    settings = settings_of(_config(fresh_sim, tmp_path, entra_auth="managed_identity"))
    assert settings.entra.managed_identity and not settings.entra.client_id
    do_setup(settings)
    report = do_sync(settings)
    assert report.kind == "full" and report.exit_code == 0
    assert graph_view(fresh_sim) == oracle(fresh_sim)
    mi = [e for e in fresh_sim.request_log() if e.service == "managed-identity"]
    assert mi and all(e.status == 200 for e in mi)
    assert not [e for e in fresh_sim.request_log() if e.service == "entra"]


def test_a_user_assigned_identity(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(
        sim, tmp_path, entra_auth="managed_identity", managed_identity_client_id=USER_ASSIGNED
    )
    exit_code, document, token = _credentials(
        config, monkeypatch, sim.managed_identity_env("app_service")
    )
    assert exit_code == 0, document
    assert token["evidence"]["managed_identity"] == USER_ASSIGNED
    assert token["evidence"]["token_app_id"] == USER_ASSIGNED
    assert sim.managed_identity.identity_header not in json.dumps(document)


@pytest.mark.parametrize("style", ["app_service", "imds"])
def test_an_identity_not_assigned_to_the_host_is_explained(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str
) -> None:
    config = _config(
        sim,
        tmp_path,
        entra_auth="managed_identity",
        managed_identity_client_id="0f381ae3-f9d3-4545-9e21-dcda99431713",
    )
    exit_code, _, token = _credentials(config, monkeypatch, sim.managed_identity_env(style))
    assert exit_code == 1 and token["status"] == "fail"
    assert "not assigned" in token["explanation"]
    assert "managed_identity_client_id" in token["fix"]


def test_no_managed_identity_endpoint_is_explained(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as probe:  # a local port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = _config(sim, tmp_path, entra_auth="managed_identity")
    env = {"IDENTITY_ENDPOINT": f"http://127.0.0.1:{port}/msi/token", "IDENTITY_HEADER": "x"}
    exit_code, _, token = _credentials(config, monkeypatch, env)
    assert exit_code == 3 and token["status"] == "error"
    assert "no managed identity endpoint answered" in token["explanation"]
    assert "Azure host" in token["fix"]


def test_the_identity_secret_goes_to_its_endpoint_only(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An IDENTITY_ENDPOINT that is not on this machine never gets a request."""
    config = _config(sim, tmp_path, entra_auth="managed_identity")
    env = {"IDENTITY_ENDPOINT": "https://graph.example.net/msi/token", "IDENTITY_HEADER": "x"}
    from typer.testing import CliRunner

    from credly_connector.cli.app import app

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sim.clear_request_log()
    result = CliRunner().invoke(app, ["test-credentials", "--config", str(config), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["id"] == "CFG033"
    assert not [e for e in sim.request_log() if e.service in {"managed-identity", "entra"}]


def test_closing_the_clients_closes_the_identity_endpoint_session(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from credly_connector.sync.clients import build_clients

    for name, value in sim.managed_identity_env("imds").items():
        monkeypatch.setenv(name, value)
    clients = build_clients(settings_of(_config(sim, tmp_path, entra_auth="managed_identity")))
    assert clients.tokens.get_token()
    session = clients.tokens._mi_http
    assert session is not None and not session.is_closed
    clients.close()
    assert session.is_closed
