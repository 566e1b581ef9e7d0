"""The shared transport: host guard, https only, same-origin links, CA bundle, TLS errors."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from credly_connector.errors import ConfigError, ForbiddenHostError
from credly_connector.net import USER_AGENT, build_http_client, ensure_same_origin, is_tls_error
from credly_connector.net.transport import ssl_context
from tests.clients.helpers import CREDLY_SECRET, FakeServer, json_response, make_settings


def test_request_to_unknown_host_is_refused_before_anything_is_sent(fake: FakeServer) -> None:
    fake.on("POST", "/", json_response(200, {}))
    http = build_http_client(make_settings(), "credly", transport=fake.transport())
    with pytest.raises(ForbiddenHostError) as caught:
        http.post("https://evil.example.net/oauth/token", data={"client_secret": CREDLY_SECRET})
    assert fake.seen == []
    assert "evil.example.net" in caught.value.message
    assert CREDLY_SECRET not in str(caught.value) + repr(caught.value) + caught.value.hint


def test_each_service_has_its_own_allowlist(fake: FakeServer) -> None:
    fake.on("GET", "/", json_response(200, {}))
    credly = build_http_client(make_settings(), "credly", transport=fake.transport())
    microsoft = build_http_client(make_settings(), "microsoft", transport=fake.transport())
    assert credly.get("https://api.credly.com/v1/x").status_code == 200
    assert microsoft.get("https://graph.microsoft.com/v1.0/users").status_code == 200
    with pytest.raises(ForbiddenHostError):
        credly.get("https://graph.microsoft.com/v1.0/users")
    with pytest.raises(ForbiddenHostError):
        microsoft.get("https://api.credly.com/v1/x")
    assert len(fake.seen) == 2


def test_plain_http_is_refused_even_for_a_known_host(fake: FakeServer) -> None:
    http = build_http_client(make_settings(), "credly", transport=fake.transport())
    with pytest.raises(ForbiddenHostError, match="https"):
        http.get("http://api.credly.com/v1/organizations")
    assert fake.seen == []


def test_redirects_are_not_followed_so_the_guard_sees_every_hop(fake: FakeServer) -> None:
    fake.on(
        "GET",
        "/v1/organizations",
        json_response(302, {}, headers={"Location": "https://evil.example.net/steal"}),
    )
    http = build_http_client(make_settings(), "credly", transport=fake.transport())
    response = http.get("https://api.credly.com/v1/organizations")
    assert response.status_code == 302
    assert [r.url.host for r in fake.seen] == ["api.credly.com"]


def test_other_credly_environment_only_when_asked(fake: FakeServer) -> None:
    fake.on("GET", "/", json_response(200, {}))
    strict = build_http_client(make_settings(), "credly", transport=fake.transport())
    with pytest.raises(ForbiddenHostError):
        strict.get("https://sandbox-api.credly.com/v1/organizations")
    probing = build_http_client(
        make_settings(), "credly", allow_other_credly_environment=True, transport=fake.transport()
    )
    assert probing.get("https://sandbox-api.credly.com/v1/organizations").status_code == 200


def test_user_agent_and_no_redirect_following(fake: FakeServer) -> None:
    fake.on("GET", "/", json_response(200, {}))
    http = build_http_client(make_settings(), "credly", transport=fake.transport())
    http.get("https://api.credly.com/v1/x")
    assert fake.seen[0].headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("credlyctl/")
    assert http.follow_redirects is False


def test_same_origin_check() -> None:
    base = "https://api.credly.com/v1"
    assert ensure_same_origin("https://api.credly.com/v1/x?page=2", base).params["page"] == "2"
    assert ensure_same_origin("https://API.credly.com:443/v1/x", base).host == "api.credly.com"
    for bad in (
        "https://evil.example.net/v1/x",
        "http://api.credly.com/v1/x",
        "https://api.credly.com:8443/v1/x",
        "https://api.credly.com.evil.net/v1/x",
    ):
        with pytest.raises(ForbiddenHostError):
            ensure_same_origin(bad, base)


def test_unreadable_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CA bundle"):
        ssl_context(tmp_path / "missing.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError):
        ssl_context(bad)


def test_ca_bundle_is_added_and_verification_stays_on(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    context = ssl_context(path)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    subjects = [c.get("subject") for c in context.get_ca_certs()]
    assert len(subjects) > 1  # the default store is kept, the bundle added


def test_real_clients_build_with_and_without_proxy(tmp_path: Path) -> None:
    direct = build_http_client(make_settings(), "microsoft")
    assert direct.follow_redirects is False
    proxied = build_http_client(
        make_settings(
            network={"proxy": "http://proxy.corp.example:3128", "no_proxy": "graph.microsoft.com"}
        ),
        "microsoft",
    )
    assert proxied.trust_env is False
    patterns = {str(p.pattern) for p in proxied._mounts}
    assert "all://" in patterns
    assert "all://*graph.microsoft.com" in patterns  # httpx's NO_PROXY rule: host and suffix


def test_tls_errors_are_recognised() -> None:
    try:
        raise httpx.ConnectError("handshake") from ssl.SSLCertVerificationError(
            1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
        )
    except httpx.ConnectError as exc:
        assert is_tls_error(exc)
    assert not is_tls_error(httpx.ConnectError("[Errno 111] Connection refused"))


def test_environment_proxies_apply_when_none_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://envproxy.corp.example:8080")
    monkeypatch.setenv("NO_PROXY", "graph.microsoft.com")
    http = build_http_client(make_settings(), "microsoft")
    assert http.trust_env is True
    patterns = {str(p.pattern) for p in http._mounts}
    assert "https://" in patterns
    assert any("graph.microsoft.com" in p for p in patterns)  # NO_PROXY goes direct


def test_clients_share_one_trust_store_per_ca_bundle(tmp_path: Path) -> None:
    """Loading the trust store is the costly part of a client; it is done once per bundle."""
    from credly_connector.net.transport import shared_ssl_context

    trustme = pytest.importorskip("trustme")
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    first = shared_ssl_context(path)
    assert shared_ssl_context(path) is first
    assert shared_ssl_context(None) is shared_ssl_context(None)
    assert shared_ssl_context(None) is not first
    # The bundle edited on disk (a CA added) is read again.
    path.write_bytes(path.read_bytes() + trustme.CA().cert_pem.bytes())
    assert shared_ssl_context(path) is not first
    assert len(shared_ssl_context(path).get_ca_certs()) == len(first.get_ca_certs()) + 1
    with pytest.raises(ConfigError):
        shared_ssl_context(tmp_path / "missing.pem")
