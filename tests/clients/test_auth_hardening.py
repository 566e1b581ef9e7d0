"""Hardening findings on Entra sign-in (issue 9): H2, M1, L1, L4. Each test reproduces one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from credly_connector.errors import ConfigError, ForbiddenHostError
from credly_connector.graph.auth import EntraTokenProvider
from credly_connector.graph.errors import EntraAuthError, EntraUnavailable
from credly_connector.net import Retrier, build_http_client
from credly_connector.secrets import Secret, scrub
from tests.clients.helpers import LOGIN, TENANT_ID, FakeServer, make_settings
from tests.clients.test_graph_auth import DISCOVERY, TOKEN_PATH, discovery

# A secret with the characters URL encoding changes (+ / =) and JSON escapes.
ODD_SECRET = 'Ab3+xY/9Qz=Kk8~Lm.Nn_Pp-Rr+Ss/Tt=Uu"q'
REPO_ROOT = Path(__file__).resolve().parents[2]


def provider(fake: FakeServer, secret: str = ODD_SECRET) -> EntraTokenProvider:
    settings = make_settings(entra={"client_secret": Secret(secret, "env:ODD")})
    http = build_http_client(settings, "microsoft", transport=fake.transport())
    return EntraTokenProvider(settings.entra, http, retrier=Retrier(sleep=lambda s: None))


def echo(status: int, content_type: str = "text/plain") -> Any:
    """A gateway page that reflects the request form (what a WAF or proxy error page does)."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = f"bad request: {request.content.decode()}"
        return httpx.Response(status, text=body, headers={"Content-Type": content_type})

    return handler


def every_form(secret: str) -> list[str]:
    return [secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]]


def assert_no_form(text: str, secret: str = ODD_SECRET) -> None:
    for form in every_form(secret):
        assert form not in text


# ---- H2: msal's logger and non-JSON token answers --------------------------------------------


@pytest.mark.parametrize(("status", "content_type"), [(400, "text/plain"), (200, "text/html")])
def test_a_non_json_token_answer_has_its_own_cause(
    fake: FakeServer, status: int, content_type: str
) -> None:
    fake.on("GET", DISCOVERY, discovery)
    fake.on("POST", TOKEN_PATH, echo(status, content_type))
    with pytest.raises(EntraUnavailable) as caught:
        provider(fake).get_token()
    exc = caught.value
    assert exc.kind == "malformed" and exc.exit_code == 3
    assert "not JSON" in exc.message and f"HTTP {status}" in exc.message
    assert "certificate" not in (exc.message + exc.hint).lower()
    assert "proxy" in exc.hint
    assert_no_form(exc.message + exc.hint + repr(exc))


def test_msal_never_prints_the_echoed_secret_on_stderr(tmp_path: Path) -> None:
    """In a fresh interpreter (no pytest log capture), exactly as the CLI would run it."""
    script = textwrap.dedent(
        f"""
        import httpx
        from credly_connector.graph.auth import EntraTokenProvider
        from credly_connector.net import Retrier, build_http_client
        from credly_connector.secrets import Secret
        from tests.clients.helpers import FakeServer, make_settings
        from tests.clients.test_graph_auth import DISCOVERY, TOKEN_PATH, discovery
        from tests.clients.test_auth_hardening import echo

        fake = FakeServer()
        fake.on("GET", DISCOVERY, discovery)
        fake.on("POST", TOKEN_PATH, echo(400))
        settings = make_settings(entra={{"client_secret": Secret({ODD_SECRET!r}, "env:X")}})
        http = build_http_client(settings, "microsoft", transport=fake.transport())
        tokens = EntraTokenProvider(settings.entra, http, retrier=Retrier(sleep=lambda s: 0))
        try:
            tokens.get_token()
        except Exception as exc:
            print(type(exc).__name__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "EntraUnavailable", done.stderr
    assert done.stderr == ""
    assert_no_form(done.stdout + done.stderr)


def test_library_loggers_reach_stderr_only_with_debug_and_scrubbed() -> None:
    script = textwrap.dedent(
        f"""
        import logging, sys
        from credly_connector.logpolicy import configure_library_logging
        from credly_connector.secrets import Secret
        Secret({ODD_SECRET!r}, "env:X")
        from urllib.parse import quote_plus
        configure_library_logging(debug=sys.argv[1] == "debug")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("msal.oauth2cli").exception(
                "Token response is not in json format: %s",
                "client_secret=" + quote_plus({ODD_SECRET!r}),
            )
        logging.getLogger("some.other.library").error("x=%s", {ODD_SECRET!r})
        """
    )
    quiet = subprocess.run(
        [sys.executable, "-c", script, "quiet"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = subprocess.run(
        [sys.executable, "-c", script, "debug"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CREDLYCTL_DEBUG": "1"},  # what --debug sets
    )
    assert "Token response is not in json format: client_secret=***" in loud.stderr
    assert "Traceback" in loud.stderr and "x=***" in loud.stderr
    assert_no_form(loud.stderr)


# ---- M1: every encoded form is scrubbed; free text is not kept ------------------------------


def test_scrub_knows_every_form_a_secret_travels_in() -> None:
    Secret(ODD_SECRET, "env:ODD")
    for form in every_form(ODD_SECRET):
        assert scrub(f"before {form} after") == "before *** after"
    lower = quote(ODD_SECRET, safe="").replace("%2B", "%2b")
    assert ODD_SECRET.split("+")[0] not in scrub(f"x {lower} y").replace("***", "")


def test_basic_credentials_are_scrubbed_in_their_encoded_form() -> None:
    import base64

    from credly_connector.secrets import register_basic_credentials

    register_basic_credentials("client-1", "pa ss+word/1")
    for pair in ("client-1:pa ss+word/1", "client-1:pa+ss%2Bword%2F1"):
        encoded = base64.b64encode(pair.encode()).decode()
        assert scrub(f"Basic {encoded}") == "Basic ***"


def test_an_unknown_aadsts_answer_echoing_the_form_keeps_no_free_text(fake: FakeServer) -> None:
    def echoing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={
                "error": "weird_error",
                "error_description": f"AADSTS99999: Something: {request.content.decode()}",
                "error_codes": [99999],
                "correlation_id": "c-1",
                "trace_id": f"t {request.content.decode()}",  # free text where an id belongs
            },
        )

    fake.on("GET", DISCOVERY, discovery)
    fake.on("POST", TOKEN_PATH, echoing)
    with pytest.raises(EntraAuthError) as caught:
        provider(fake).get_token()
    exc = caught.value
    everything = exc.message + exc.hint + repr(vars(exc))
    assert "AADSTS99999" in exc.message and "weird_error" in exc.message
    assert "Something" not in everything and "client_id" not in everything
    assert exc.trace_id is None and exc.correlation_id == "c-1"
    assert_no_form(everything)


# ---- L1: a credential goes to exactly its origin ---------------------------------------------


@pytest.mark.parametrize(
    "token_endpoint",
    [
        f"{LOGIN}:8443/{TENANT_ID}/oauth2/v2.0/token",  # same host, another port
        f"https://graph.microsoft.com/{TENANT_ID}/oauth2/v2.0/token",  # an allowed host
    ],
)
def test_the_discovered_token_endpoint_must_be_the_authoritys_origin(
    fake: FakeServer, token_endpoint: str
) -> None:
    fake.on(
        "GET",
        DISCOVERY,
        lambda r: httpx.Response(
            200,
            json={"token_endpoint": token_endpoint, "authorization_endpoint": token_endpoint},
        ),
    )
    fake.on("POST", "/", lambda r: httpx.Response(200, json={"access_token": "x.y.z"}))
    with pytest.raises(ForbiddenHostError) as caught:
        provider(fake).get_token()
    assert fake.paths("POST") == []
    assert caught.value.error_id == "net.cross_origin_link"
    port = "8443" if ":8443" in token_endpoint else "443"
    assert f":{port}" in caught.value.message


def test_the_host_guard_compares_ports(fake: FakeServer) -> None:
    fake.on("GET", "/", lambda r: httpx.Response(200, json={}))
    http = build_http_client(make_settings(), "microsoft", transport=fake.transport())
    assert http.get("https://graph.microsoft.com/v1.0/users").status_code == 200
    assert http.get("https://graph.microsoft.com:443/v1.0/users").status_code == 200
    with pytest.raises(ForbiddenHostError) as caught:
        http.get("https://graph.microsoft.com:8443/v1.0/users")
    assert "https://graph.microsoft.com:8443" in caught.value.message
    assert len(fake.seen) == 2


# ---- L4: redirects, truncated discovery, certificate password ---------------------------------


def test_a_redirect_from_the_token_endpoint_is_reported_not_followed(fake: FakeServer) -> None:
    fake.on("GET", DISCOVERY, discovery)
    fake.on(
        "POST",
        TOKEN_PATH,
        lambda r: httpx.Response(307, headers={"Location": "https://evil.example.net:9/t"}),
    )
    with pytest.raises(EntraUnavailable) as caught:
        provider(fake).get_token()
    assert "redirect (HTTP 307) to https://evil.example.net:9" in caught.value.message
    assert [r.url.host for r in fake.seen] == ["login.microsoftonline.com"] * 2


def test_a_truncated_discovery_document_is_transient_not_a_bad_authority(
    fake: FakeServer,
) -> None:
    fake.on("GET", DISCOVERY, lambda r: httpx.Response(200, text='{"token_endpoint": "https:/'))
    with pytest.raises(EntraUnavailable) as caught:
        provider(fake).get_token()
    assert caught.value.exit_code == 3
    assert "discovery" in caught.value.message and "authority" not in caught.value.message
    assert fake.paths("POST") == []


def _encrypted_pem(tmp_path: Path, password: bytes | None) -> Path:
    trustme = pytest.importorskip("trustme")
    from cryptography.hazmat.primitives import serialization

    leaf = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert(
        "credlyctl.example", key_type=trustme.KeyType.RSA
    )
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    path = tmp_path / "app.pem"
    path.write_bytes(pem + leaf.cert_chain_pems[0].bytes())
    return path


@pytest.mark.parametrize(
    ("stored", "configured", "fragment"),
    [
        (b"right-password", "wrong-password", "cannot be decrypted"),
        (b"right-password", None, "no password is configured"),
        (None, "some-password", "not encrypted"),
    ],
)
def test_certificate_password_problems_have_their_own_cause(
    tmp_path: Path, fake: FakeServer, stored: bytes | None, configured: str | None, fragment: str
) -> None:
    path = _encrypted_pem(tmp_path, stored)
    settings = make_settings(
        entra={
            "client_secret": None,
            "certificate_path": path,
            "certificate_password": Secret(configured, "env:PW") if configured else None,
        }
    )
    http = build_http_client(settings, "microsoft", transport=fake.transport())
    with pytest.raises(ConfigError) as caught:
        EntraTokenProvider(settings.entra, http).get_token()
    assert caught.value.error_id == "entra.certificate_password"
    assert fragment in caught.value.message
    assert "tenant" not in caught.value.hint
    assert fake.seen == []


def test_debug_output_ends_with_the_run_that_asked_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    import logging

    from credly_connector.logpolicy import configure_library_logging

    stream = io.StringIO()
    monkeypatch.setenv("CREDLYCTL_DEBUG", "1")
    configure_library_logging(debug=True, stream=stream)
    try:
        logging.getLogger("httpx").info("first run")
        monkeypatch.delenv("CREDLYCTL_DEBUG")  # the next command of this process: no --debug
        logging.getLogger("httpx").info("second run")
    finally:
        configure_library_logging(debug=False)
    assert "first run" in stream.getvalue() and "second run" not in stream.getvalue()
