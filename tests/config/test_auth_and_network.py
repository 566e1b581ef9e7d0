"""Entra sign-in without a stored secret, URL userinfo (L8) and proxies (M5/M6) in the config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from credly_connector.cli.app import app
from credly_connector.config.load import load_instance
from credly_connector.errors import ConfigError
from credly_connector.net import build_http_client
from credly_connector.net.transport import explicit_proxy_routes
from tests.clients.helpers import make_settings
from tests.config.cfg import APP, SECRET_ENV, TENANT, config, write

FAKE_JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOngifQ.c2lnbmF0dXJl"


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)


def _file(tmp_path: Path, entra: dict[str, Any], **sections: dict[str, Any]) -> Path:
    data = config()
    data["instances"]["contoso"]["entra"] = {"tenant_id": TENANT, **entra}
    data["instances"]["contoso"].update(sections)
    return write(tmp_path / "credlyctl.toml", data)


# ---- no stored secret ------------------------------------------------------------------------


def test_a_federated_token_file_from_the_config_or_the_kubernetes_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "token"
    token.write_text(FAKE_JWT + "\n")
    settings = load_instance(
        _file(tmp_path, {"client_id": APP, "federated_token_file": "token"}), None
    )
    assert settings.entra.credential_kind == "federated_token"
    assert settings.entra.federated_token_file == token
    assert settings.entra.client_secret is None
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token))
    settings = load_instance(_file(tmp_path, {"client_id": APP, "auth": "federated_token"}), None)
    assert settings.entra.federated_token_file == token


def test_managed_identity_needs_no_app_id(tmp_path: Path) -> None:
    settings = load_instance(_file(tmp_path, {"auth": "managed_identity"}), None)
    assert settings.entra.credential_kind == "managed_identity"
    assert settings.entra.managed_identity_client_id is None  # system-assigned
    user = "0f381ae3-f9d3-4545-9e21-dcda99431713"
    settings = load_instance(
        _file(tmp_path, {"auth": "managed_identity", "managed_identity_client_id": user}), None
    )
    assert settings.entra.managed_identity_client_id == user


@pytest.mark.parametrize(
    ("environ", "accepted"),
    [
        ({}, True),  # IMDS, the default
        ({"IDENTITY_ENDPOINT": "http://127.0.0.1:41741/msi/token", "IDENTITY_HEADER": "h"}, True),
        ({"IDENTITY_ENDPOINT": "http://localhost:42356/msi/token", "IDENTITY_HEADER": "h"}, True),
        ({"IDENTITY_ENDPOINT": "https://10.0.0.5/msi/token", "IDENTITY_HEADER": "h"}, False),
        ({"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://evil.example.net"}, False),
        ({"MSI_ENDPOINT": "http://127.0.0.1:1/", "MSI_SECRET": "s"}, False),
    ],
)
def test_the_managed_identity_endpoint_must_be_local(
    tmp_path: Path, environ: dict[str, str], accepted: bool
) -> None:
    path = _file(tmp_path, {"auth": "managed_identity"})
    env = {**SECRET_ENV, **environ}
    if accepted:
        assert load_instance(path, None, environ=env).entra.managed_identity
    else:
        with pytest.raises(ConfigError) as caught:
            load_instance(path, None, environ=env)
        assert caught.value.error_id == "CFG033"


def test_federated_token_problems_are_clear(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("not a jwt")
    with pytest.raises(ConfigError) as caught:
        load_instance(_file(tmp_path, {"client_id": APP, "federated_token_file": "token"}), None)
    assert caught.value.error_id == "CFG032" and "JWT" in caught.value.message


# ---- L8: userinfo in a custom URL ---------------------------------------------------------------


def test_userinfo_in_a_custom_url_is_refused_and_never_shown(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        {"client_id": APP, "client_secret": {"env": "T_ENTRA_SECRET"}},
        graph={"base_url": "https://admin:graphpassw0rd123@127.0.0.1:8443/v1.0"},
        network={"allow_custom_hosts": True},
    )
    with pytest.raises(ConfigError):
        load_instance(path, None)
    for command in (["validate-config", "--json"], ["config", "show", "--json"]):
        result = CliRunner().invoke(app, [*command, "--config", str(path)], env=SECRET_ENV)
        assert "graphpassw0rd123" not in result.stdout + result.stderr
        assert "CFG034" in result.stdout + result.stderr


# ---- M5/M6: proxies ---------------------------------------------------------------------------


def _proxied(client: httpx.Client, url: str) -> bool:
    transport = client._transport_for_url(httpx.URL(url))
    return getattr(transport, "_pool", None).__class__.__name__ != "ConnectionPool"


@pytest.mark.parametrize(
    ("no_proxy", "direct"),
    [
        ("graph.microsoft.com", True),
        ("microsoft.com", True),
        (".microsoft.com", True),
        ("*", True),
        # httpx's rule: host:port matches requests that name that port; documented
        ("graph.microsoft.com:443", False),
        ("login.microsoftonline.com", False),
        ("", False),
    ],
)
def test_no_proxy_follows_httpx_rules_with_an_explicit_proxy(no_proxy: str, direct: bool) -> None:
    settings = make_settings(
        network={"proxy": "http://proxy.corp.example:3128", "no_proxy": no_proxy}
    )
    client = build_http_client(settings, "microsoft")
    assert _proxied(client, "https://graph.microsoft.com/v1.0/users") is not direct


def test_a_host_and_port_entry_matches_that_port() -> None:
    settings = make_settings(
        network={"proxy": "http://proxy.corp.example:3128", "no_proxy": "127.0.0.1:8443"}
    )
    client = build_http_client(settings, "microsoft")
    assert not _proxied(client, "https://127.0.0.1:8443/v1.0/users")
    assert _proxied(client, "https://127.0.0.1:9443/v1.0/users")


def test_the_environment_is_read_by_httpx_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://envproxy.corp.example:8080")
    monkeypatch.setenv("NO_PROXY", ".microsoft.com")
    client = build_http_client(make_settings(), "microsoft")
    assert not _proxied(client, "https://graph.microsoft.com/v1.0/users")
    assert _proxied(client, "https://login.microsoftonline.com/x")


def test_an_explicit_proxy_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,graph.microsoft.com")
    settings = make_settings(network={"proxy": "http://proxy.corp.example:3128"})
    client = build_http_client(settings, "microsoft")
    assert _proxied(client, "https://graph.microsoft.com/v1.0/users")
    assert explicit_proxy_routes("http://p:1", None) == {"all://": "http://p:1"}


def test_a_socks5_proxy_builds(tmp_path: Path) -> None:
    for proxy in ("socks5://127.0.0.1:1080", "socks5h://127.0.0.1:1080"):
        client = build_http_client(make_settings(network={"proxy": proxy}), "credly")
        assert _proxied(client, "https://api.credly.com/v1/x")
    path = _file(
        tmp_path,
        {"client_id": APP, "client_secret": {"env": "T_ENTRA_SECRET"}},
        network={"proxy": "socks5://127.0.0.1:1080"},
    )
    result = CliRunner().invoke(app, ["validate-config", "--json", "--config", str(path)])
    assert json.loads(result.stdout)["exit_code"] == 0


def test_check_endpoint_routes_like_the_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    from credly_connector.diagnostics.probe import HostProbe
    from credly_connector.net.transport import proxy_for_url

    proxy = "http://proxy.corp.example:3128"
    assert proxy_for_url("https://credly.com/", proxy, ".credly.com") == proxy  # subdomains only
    assert proxy_for_url("https://www.credly.com/", proxy, ".credly.com") is None
    assert proxy_for_url("https://www.credly.com/", proxy, "credly.com") is None
    assert proxy_for_url("https://www.credly.com/", proxy, "*") is None
    assert proxy_for_url("https://www.credly.com:8443/", proxy, "www.credly.com:8443") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://envproxy.corp.example:8080")
    monkeypatch.setenv("NO_PROXY", "credly.com")
    assert HostProbe("https://api.credly.com/v1").proxy is None  # the environment's NO_PROXY
    assert HostProbe("https://graph.microsoft.com/").proxy == "http://envproxy.corp.example:8080"
    assert HostProbe("https://api.credly.com/v1", proxy=proxy).proxy == proxy  # env ignored
