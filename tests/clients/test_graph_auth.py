"""EntraTokenProvider: real msal over httpx.MockTransport; AADSTS mapping; no secret leaks."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from credly_connector.errors import ConfigError, ForbiddenHostError
from credly_connector.graph import aadsts
from credly_connector.graph.auth import (
    EntraTokenProvider,
    decode_claims,
    error_from_constructor,
    split_pem,
)
from credly_connector.graph.errors import EntraAuthError, EntraUnavailable
from credly_connector.net import build_http_client
from tests.clients.helpers import ENTRA_SECRET, LOGIN, TENANT_ID, FakeServer, make_settings

DISCOVERY = f"/{TENANT_ID}/v2.0/.well-known/openid-configuration"
TOKEN_PATH = f"/{TENANT_ID}/oauth2/v2.0/token"


def jwt(claims: dict[str, Any]) -> str:
    def enc(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}.c2lnbmF0dXJl"


def discovery(request: httpx.Request) -> httpx.Response:
    base = f"{LOGIN}/{TENANT_ID}"
    return httpx.Response(
        200,
        json={
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"{base}/v2.0",
        },
    )


def entra_error(code: int, error: str, status: int = 400) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            json={
                "error": error,
                "error_description": f"AADSTS{code}: Something went wrong for app.\r\n"
                "Trace ID: t-1\r\nCorrelation ID: c-1\r\nTimestamp: 2026-11-28 10:00:00Z",
                "error_codes": [code],
                "timestamp": "2026-11-28 10:00:00Z",
                "trace_id": "t-1",
                "correlation_id": "c-1",
            },
        )

    return handler


def provider(fake: FakeServer, **entra: Any) -> EntraTokenProvider:
    settings = make_settings(entra=entra or None)
    http = build_http_client(settings, "microsoft", transport=fake.transport())
    return EntraTokenProvider(settings.entra, http)


def assert_clean(exc: BaseException) -> None:
    text = str(exc) + repr(exc) + getattr(exc, "hint", "") + str(vars(exc))
    assert ENTRA_SECRET not in text


def test_token_with_secret_then_from_cache(fake: FakeServer) -> None:
    token = jwt({"roles": ["User.Read.All", "ExternalItem.ReadWrite.OwnedBy"], "tid": TENANT_ID})
    fake.on("GET", DISCOVERY, discovery)
    fake.on(
        "POST",
        TOKEN_PATH,
        lambda r: httpx.Response(200, json={"access_token": token, "expires_in": 3599}),
    )
    tokens = provider(fake)
    assert tokens.get_token() == token
    assert tokens.get_token() == token
    assert tokens.last_token_source == "cache"
    assert fake.paths() == [DISCOVERY, TOKEN_PATH]
    sent = {k: v[0] for k, v in parse_qs(fake.seen[1].content.decode()).items()}
    assert sent["client_secret"] == ENTRA_SECRET
    assert sent["scope"] == "https://graph.microsoft.com/.default"
    assert sent["grant_type"] == "client_credentials"
    assert tokens.granted_roles() == ["ExternalItem.ReadWrite.OwnedBy", "User.Read.All"]
    assert tokens.request_counts.as_dict() == {"entra.discovery": 1, "entra.token": 1}
    tokens.force_refresh()
    tokens.get_token()
    assert fake.paths("POST") == [TOKEN_PATH, TOKEN_PATH]


def test_a_token_without_roles_means_no_permission(fake: FakeServer) -> None:
    fake.on("GET", DISCOVERY, discovery)
    fake.on(
        "POST", TOKEN_PATH, lambda r: httpx.Response(200, json={"access_token": jwt({"tid": "x"})})
    )
    assert provider(fake).granted_roles() == []
    assert decode_claims("not-a-jwt") is None
    assert decode_claims("a.!!!.c") is None


@pytest.mark.parametrize(
    ("code", "error", "fragment"),
    [
        (7000215, "invalid_client", "secret ID"),
        (7000222, "invalid_client", "expired"),
        (700016, "unauthorized_client", "client id"),
        (7000218, "invalid_client", "empty"),
        (700027, "invalid_client", "certificate"),
        (7000112, "unauthorized_client", "disabled"),
        (500011, "invalid_resource", "cloud"),
        (1002012, "invalid_scope", "/.default"),
        (53003, "access_denied", "Conditional Access"),
    ],
)
def test_aadsts_codes_map_to_cause_and_fix(
    fake: FakeServer, code: int, error: str, fragment: str
) -> None:
    fake.on("GET", DISCOVERY, discovery)
    fake.on("POST", TOKEN_PATH, entra_error(code, error, 401 if "client" in error else 400))
    with pytest.raises(EntraAuthError) as caught:
        provider(fake).get_token()
    exc = caught.value
    assert exc.codes == [code]
    assert exc.error == error
    assert exc.cause is not None and fragment in exc.cause
    assert exc.fix
    assert (exc.correlation_id, exc.trace_id, exc.timestamp) == (
        "c-1",
        "t-1",
        "2026-11-28 10:00:00Z",
    )
    assert "correlation_id=c-1" in exc.hint
    assert exc.summary is None  # Entra's free text is never kept (finding M1)
    assert "Something went wrong" not in exc.message + exc.hint
    assert exc.exit_code == 2
    assert_clean(exc)


def test_unknown_code_falls_back_to_error_and_summary(fake: FakeServer) -> None:
    fake.on("GET", DISCOVERY, discovery)
    fake.on("POST", TOKEN_PATH, entra_error(9999999, "weird_error"))
    with pytest.raises(EntraAuthError) as caught:
        provider(fake).get_token()
    assert caught.value.cause is None
    assert "weird_error" in caught.value.message
    assert "AADSTS9999999" in caught.value.message
    assert "Something went wrong" not in caught.value.message  # free text stays out
    assert "code=9999999" in caught.value.hint


def test_unknown_tenant_surfaces_from_the_constructor(fake: FakeServer) -> None:
    fake.on("GET", DISCOVERY, entra_error(90002, "invalid_tenant"))
    with pytest.raises(EntraAuthError) as caught:
        provider(fake).get_token()
    assert caught.value.codes == [90002]
    assert caught.value.correlation_id == "c-1"
    assert fake.paths("POST") == []


def test_constructor_errors_parse_the_context_too() -> None:
    try:
        try:
            raise ValueError("OIDC Discovery failed. HTTP status: 400, Error: AADSTS900023: bad")
        except ValueError:
            raise ValueError("Unable to get authority configuration") from None
    except ValueError as outer:
        outer.__context__ = ValueError("HTTP status: 400, Error: AADSTS900023: malformed")
        exc = error_from_constructor(outer)
    assert isinstance(exc, EntraAuthError)
    assert exc.codes == [900023]


def test_server_errors_and_network_failures_are_unavailable(fake: FakeServer) -> None:
    fake.on("GET", DISCOVERY, discovery)
    fake.on("POST", TOKEN_PATH, lambda r: httpx.Response(500, text="oops"))
    settings = make_settings()
    from credly_connector.net import Retrier

    http = build_http_client(settings, "microsoft", transport=fake.transport())
    tokens = EntraTokenProvider(settings.entra, http, retrier=Retrier(sleep=lambda s: None))
    with pytest.raises(EntraUnavailable) as caught:
        tokens.get_token()
    assert caught.value.kind == "server" and caught.value.exit_code == 3

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    fake2 = FakeServer()
    fake2.on("GET", DISCOVERY, down)
    http2 = build_http_client(settings, "microsoft", transport=fake2.transport())
    tokens2 = EntraTokenProvider(settings.entra, http2, retrier=Retrier(sleep=lambda s: None))
    with pytest.raises(EntraUnavailable) as caught2:
        tokens2.get_token()
    assert caught2.value.kind == "network"
    assert_clean(caught2.value)


def test_503_from_the_token_endpoint_is_retried(fake: FakeServer) -> None:
    answers = iter([httpx.Response(503, headers={"Retry-After": "1"})])
    fake.on("GET", DISCOVERY, discovery)
    fake.on(
        "POST",
        TOKEN_PATH,
        lambda r: next(answers, None) or httpx.Response(200, json={"access_token": jwt({})}),
    )
    settings = make_settings()
    from credly_connector.net import Retrier

    sleeps: list[float] = []
    http = build_http_client(settings, "microsoft", transport=fake.transport())
    tokens = EntraTokenProvider(settings.entra, http, retrier=Retrier(sleep=sleeps.append))
    assert tokens.get_token()
    assert sleeps == [1.0]


def test_authority_on_an_unknown_host_is_refused(fake: FakeServer) -> None:
    tokens = provider(fake, login_base="https://login.evil.example.net")
    with pytest.raises(ForbiddenHostError):
        tokens.get_token()
    assert fake.seen == []


def test_certificate_credential_is_read_from_one_pem(tmp_path: Path, fake: FakeServer) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    leaf = ca.issue_cert("credlyctl.example", key_type=trustme.KeyType.RSA)
    pem = leaf.private_key_pem.bytes().decode() + leaf.cert_chain_pems[0].bytes().decode()
    path = tmp_path / "app.pem"
    path.write_text(pem)
    key, cert = split_pem(pem)
    assert key is not None and "PRIVATE KEY" in key
    assert cert is not None and "CERTIFICATE" in cert
    fake.on("GET", DISCOVERY, discovery)
    fake.on("POST", TOKEN_PATH, lambda r: httpx.Response(200, json={"access_token": jwt({"r": 1})}))
    tokens = provider(fake, certificate_path=path, client_secret=None)
    tokens.get_token()
    sent = {k: v[0] for k, v in parse_qs(fake.seen[-1].content.decode()).items()}
    assert "client_secret" not in sent
    assert sent["client_assertion_type"].endswith("jwt-bearer")
    head = sent["client_assertion"].split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert "x5t#S256" in header


def test_certificate_file_problems_are_config_errors(tmp_path: Path, fake: FakeServer) -> None:
    with pytest.raises(ConfigError):
        provider(fake, certificate_path=tmp_path / "missing.pem").get_token()
    only_cert = tmp_path / "cert.pem"
    only_cert.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="private key"):
        provider(fake, certificate_path=only_cert).get_token()
    assert fake.seen == []


def test_a_non_rsa_key_is_a_config_error(tmp_path: Path, fake: FakeServer) -> None:
    trustme = pytest.importorskip("trustme")
    leaf = trustme.CA(key_type=trustme.KeyType.ECDSA).issue_cert("credlyctl.example")
    path = tmp_path / "ec.pem"
    path.write_bytes(leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes())
    fake.on("GET", DISCOVERY, discovery)
    with pytest.raises(ConfigError) as caught:
        provider(fake, certificate_path=path, client_secret=None).get_token()
    assert "RSA" in caught.value.hint
    assert fake.paths("POST") == []


def test_hint_table_covers_the_codes_the_brief_names() -> None:
    expected = {90002, 900023, 90038, 700016, 7000215, 7000222, 7000218, 700027, 700024}
    expected |= {7000112, 500011, 1002012, 53003}
    assert expected <= set(aadsts.HINTS)
    assert aadsts.codes_in_text("x AADSTS700016: y AADSTS700016 AADSTS90002") == [700016, 90002]
    assert aadsts.first_line("AADSTS1: a\r\nTrace ID: x") == "AADSTS1: a"
