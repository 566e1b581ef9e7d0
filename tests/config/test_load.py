"""load_instance: discovery, precedence, secret references, derived URLs, host rules, errors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from credly_connector.config.load import (
    list_instances,
    load_config_file,
    load_instance,
    load_instance_with_origins,
)
from credly_connector.endpoints import Cloud, CredlyEnvironment
from credly_connector.errors import ConfigError
from tests.config.cfg import (
    APP,
    CREDLY_SECRET,
    ENTRA_SECRET,
    FILE_SECRET,
    INLINE_SECRET,
    ORG,
    ORG2,
    SECRET_ENV,
    TENANT,
    config,
    instance,
    write,
)


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)


def _file(tmp_path: Path, data: dict[str, Any] | None = None, mode: int = 0o600) -> Path:
    return write(tmp_path / "credlyctl.toml", data or config(), mode)


def _edited(**sections: dict[str, Any]) -> dict[str, Any]:
    data = config()
    for section, values in sections.items():
        data["instances"]["contoso"].setdefault(section, {}).update(values)
    return data


def test_production_defaults(tmp_path: Path) -> None:
    settings = load_instance(_file(tmp_path), None)
    assert settings.name == "contoso"
    assert settings.credly.org_id == ORG
    assert settings.credly.environment == CredlyEnvironment.PRODUCTION
    assert settings.credly.web_base == "https://www.credly.com"
    assert settings.credly.api_base == "https://api.credly.com/v1"
    assert settings.credly.token_url == "https://www.credly.com/oauth/token"
    assert settings.credly.uses_oauth
    assert settings.credly.client_secret is not None
    assert settings.credly.client_secret.reveal() == CREDLY_SECRET
    assert settings.credly.client_secret.source == "env:T_CREDLY_SECRET"
    assert settings.entra.authority == f"https://login.microsoftonline.com/{TENANT}"
    assert settings.entra.graph_scope == "https://graph.microsoft.com/.default"
    assert settings.network.credly_hosts == {"www.credly.com", "api.credly.com"}
    assert settings.network.microsoft_hosts == {"login.microsoftonline.com", "graph.microsoft.com"}
    assert settings.network.custom_hosts == frozenset()
    assert settings.sync.incremental_interval_days == 1
    assert settings.sync.full_interval_days == 7
    assert settings.sync.state_dir == tmp_path / "xdg-state" / "credlyctl" / "contoso"
    assert settings.graph.connection_id == "credlybadges"
    assert settings.warnings == ()


def test_sandbox_environment(tmp_path: Path) -> None:
    settings = load_instance(_file(tmp_path, _edited(credly={"environment": "sandbox"})), None)
    assert settings.credly.web_base == "https://sandbox.credly.com"
    assert settings.credly.api_base == "https://sandbox-api.credly.com/v1"
    assert settings.credly.token_url == "https://sandbox.credly.com/oauth/token"


@pytest.mark.parametrize(
    ("base_url", "environment", "web"),
    [
        ("https://credly.com/", CredlyEnvironment.PRODUCTION, "https://www.credly.com"),
        ("https://www.credly.com", CredlyEnvironment.PRODUCTION, "https://www.credly.com"),
        ("https://sandbox.credly.com", CredlyEnvironment.SANDBOX, "https://sandbox.credly.com"),
    ],
)
def test_pasted_base_url_selects_the_environment(
    tmp_path: Path, base_url: str, environment: CredlyEnvironment, web: str
) -> None:
    settings = load_instance(_file(tmp_path, _edited(credly={"base_url": base_url})), None)
    assert settings.credly.environment == environment
    assert settings.credly.web_base == web


@pytest.mark.parametrize(
    ("cloud", "login", "graph"),
    [
        ("usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"),
        ("usgovdod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    ],
)
def test_national_clouds(tmp_path: Path, cloud: str, login: str, graph: str) -> None:
    settings = load_instance(_file(tmp_path, _edited(entra={"cloud": cloud})), None)
    assert settings.entra.cloud == Cloud(cloud)
    assert (settings.entra.login_base, settings.entra.graph_base) == (login, graph)


def test_custom_hosts_need_the_opt_in_and_are_reported(tmp_path: Path) -> None:
    custom = {
        "credly": {"base_url": "https://127.0.0.1:8443", "api_url": "https://127.0.0.1:8443/v1"},
        "entra": {"authority_url": f"https://127.0.0.1:9443/{TENANT}"},
        "graph": {"base_url": "https://127.0.0.1:9443/v1.0"},
    }
    with pytest.raises(ConfigError) as refused:
        load_instance(_file(tmp_path, _edited(**custom)), None)
    assert refused.value.error_id == "CFG013"
    assert "allow_custom_hosts" in refused.value.hint
    custom["network"] = {"allow_custom_hosts": True}
    settings = load_instance(_file(tmp_path, _edited(**custom)), None)
    assert settings.credly.token_url == "https://127.0.0.1:8443/oauth/token"
    assert settings.credly.api_base == "https://127.0.0.1:8443/v1"
    assert settings.entra.authority == f"https://127.0.0.1:9443/{TENANT}"
    assert settings.graph_v1 == "https://127.0.0.1:9443/v1.0"
    assert settings.network.custom_hosts == {"127.0.0.1"}
    assert any(line.startswith("CFG019 warning") for line in settings.warnings)


def test_environment_overrides_file_and_flags_override_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _file(tmp_path)
    monkeypatch.setenv("CREDLYCTL_CREDLY_ORG_ID", ORG2.upper())
    monkeypatch.setenv("CREDLYCTL_SYNC_FULL_INTERVAL_DAYS", "14")
    monkeypatch.setenv("CREDLYCTL_NETWORK_ALLOW_CUSTOM_HOSTS", "false")
    monkeypatch.setenv("CREDLYCTL_SYNC_OPT_OUT", "A@Contoso.com, b@contoso.com")
    settings = load_instance(path, None)
    assert settings.credly.org_id == ORG2
    assert settings.sync.full_interval_days == 14
    assert settings.sync.opt_out == {"a@contoso.com", "b@contoso.com"}
    flagged, origins = load_instance_with_origins(
        path,
        None,
        {"credly.org_id": ORG, "sync": {"full_interval_days": 3}, "graph.base_url": None},
    )
    assert flagged.credly.org_id == ORG
    assert flagged.sync.full_interval_days == 3
    assert origins["credly.org_id"] == "flag"
    assert origins["sync.opt_out"] == "env:CREDLYCTL_SYNC_OPT_OUT"
    assert origins["entra.tenant_id"] == "file"


def test_secret_given_directly_by_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = config()
    del data["instances"]["contoso"]["entra"]["client_secret"]
    monkeypatch.setenv("CREDLYCTL_ENTRA_CLIENT_SECRET", ENTRA_SECRET)
    settings = load_instance(_file(tmp_path, data), None)
    assert settings.entra.client_secret is not None
    assert settings.entra.client_secret.source == "env:CREDLYCTL_ENTRA_CLIENT_SECRET"


def test_secret_from_a_file_relative_to_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "credly.txt").write_text(FILE_SECRET + "\n")
    data = _edited(credly={"client_secret": {"file": "secrets/credly.txt"}})
    settings = load_instance(_file(tmp_path, data), None)
    assert settings.credly.client_secret is not None
    assert settings.credly.client_secret.reveal() == FILE_SECRET
    assert settings.credly.client_secret.source == f"file:{tmp_path / 'secrets' / 'credly.txt'}"


def test_inline_secret_works_with_a_warning(tmp_path: Path) -> None:
    settings = load_instance(
        _file(tmp_path, _edited(credly={"client_secret": INLINE_SECRET})), None
    )
    assert settings.credly.client_secret is not None
    assert settings.credly.client_secret.source == "inline"
    assert [line[:14] for line in settings.warnings] == ["CFG017 warning"]


def test_authorization_token_instead_of_oauth(tmp_path: Path) -> None:
    data = config()
    data["instances"]["contoso"]["credly"] = {
        "org_id": ORG,
        "authorization_token": {"env": "T_CREDLY_SECRET"},
    }
    settings = load_instance(_file(tmp_path, data), None)
    assert not settings.credly.uses_oauth
    assert settings.credly.client_secret is None


def test_certificate_credential(tmp_path: Path) -> None:
    (tmp_path / "app.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    data = config()
    del data["instances"]["contoso"]["entra"]["client_secret"]
    data["instances"]["contoso"]["entra"]["certificate_path"] = "app.pem"
    settings = load_instance(_file(tmp_path, data), None)
    assert settings.entra.certificate_path == tmp_path / "app.pem"
    assert settings.entra.client_secret is None


def test_https_proxy_is_honoured_unless_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://envproxy:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    settings = load_instance(_file(tmp_path), None)
    # The environment's proxies stay with httpx, which reads HTTPS_PROXY and NO_PROXY itself.
    assert (settings.network.proxy, settings.network.no_proxy) == (None, None)
    assert settings.network.environment_proxy == "http://envproxy:3128"
    configured = _edited(network={"proxy": "http://fileproxy:8080", "no_proxy": "127.0.0.1"})
    settings = load_instance(_file(tmp_path, configured), None)
    assert (settings.network.proxy, settings.network.no_proxy) == (
        "http://fileproxy:8080",
        "127.0.0.1",
    )


def test_ca_bundle_relative_to_the_configuration(tmp_path: Path) -> None:
    import trustme  # a real CA certificate: a file of anything else is refused (CFG020)

    trustme.CA().cert_pem.write_to_path(str(tmp_path / "corp.pem"))
    settings = load_instance(_file(tmp_path, _edited(network={"ca_bundle": "corp.pem"})), None)
    assert settings.network.ca_bundle == tmp_path / "corp.pem"


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = tmp_path / "xdg-config" / "credlyctl" / "config.toml"
    default.parent.mkdir(parents=True)
    write(default, config(default=instance(ORG)))
    assert load_instance(None, None).name == "default"
    from_env = write(tmp_path / "env.toml", config(fromenv=instance(ORG)))
    monkeypatch.setenv("CREDLYCTL_CONFIG", str(from_env))
    assert load_instance(None, None).name == "fromenv"
    explicit = write(tmp_path / "explicit.toml", config(explicit=instance(ORG)))
    assert load_instance(explicit, None).name == "explicit"


def test_instance_selection(tmp_path: Path) -> None:
    data = config(first=instance(ORG), second=instance(ORG2))
    path = _file(tmp_path, data)
    assert list_instances(path) == ["first", "second"]
    with pytest.raises(ConfigError) as ambiguous:
        load_instance(path, None)
    assert ambiguous.value.error_id == "CFG022"
    assert "--instance" in ambiguous.value.hint
    assert load_instance(path, "second").credly.org_id == ORG2
    data["default_instance"] = "second"
    assert load_instance(_file(tmp_path, data), None).name == "second"
    with pytest.raises(ConfigError) as unknown:
        load_instance(path, "frist")
    assert "Did you mean 'first'?" in unknown.value.hint


def test_other_instances_problems_do_not_block(tmp_path: Path) -> None:
    broken = instance(ORG2)
    broken["credly"]["org_id"] = "nope"
    path = _file(tmp_path, config(good=instance(ORG), broken=broken))
    assert load_instance(path, "good").credly.org_id == ORG


@pytest.mark.parametrize(
    ("change", "error_id"),
    [
        ({"credly": {"org_id": "contoso"}}, "CFG005"),
        ({"credly": {"client_secret": {"env": "T_NOT_SET"}}}, "CFG010"),
        ({"entra": {"cloud": "china"}}, "CFG016"),
        ({"credly": {"base_url": "https://api.credly.com"}}, "CFG014"),
    ],
)
def test_errors_carry_id_message_and_hint(
    tmp_path: Path, change: dict[str, Any], error_id: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_instance(_file(tmp_path, _edited(**copy.deepcopy(change))), None)
    assert caught.value.error_id == error_id
    assert caught.value.message.startswith("instances.contoso.")
    assert caught.value.hint
    assert caught.value.exit_code == 2


def test_several_problems_point_to_validate_config(tmp_path: Path) -> None:
    data = config()
    data["instances"]["contoso"]["entra"] = {}
    with pytest.raises(ConfigError) as caught:
        load_instance(_file(tmp_path, data), None)
    assert "more problems: run credlyctl validate-config" in caught.value.hint


def test_missing_and_unparseable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        load_instance(tmp_path / "absent.toml", None)
    assert missing.value.error_id == "CFG000"
    assert "config init" in missing.value.hint
    bad = tmp_path / "bad.toml"
    bad.write_text("[instances\n")
    with pytest.raises(ConfigError) as syntax:
        load_instance(bad, None)
    assert syntax.value.error_id == "CFG001"
    assert "line 1" in syntax.value.message


def test_load_config_file_returns_the_model(tmp_path: Path) -> None:
    model, raw, path = load_config_file(_file(tmp_path))
    assert path == tmp_path / "credlyctl.toml"
    assert model.instances["contoso"].entra.client_id == APP
    assert model.instances["contoso"].credly.client_secret is not None
    assert model.instances["contoso"].credly.client_secret.env == "T_CREDLY_SECRET"
    assert raw["instances"]["contoso"]["credly"]["org_id"] == ORG
