"""check-endpoint's live probe against local TLS servers that play Credly, a proxy and others.

The resolver is replaced, so `www.credly.com` leads to a server on 127.0.0.1; certificates come
from throw-away CAs (trustme), one of which plays a TLS-inspecting corporate proxy.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from credly_connector.diagnostics.endpoint import PROBE_CLIENT_ID, check_endpoint
from credly_connector.exit_codes import ExitCode
from tests.diagnostics.helpers_settings import CREDLY_SECRET, make_settings

CREDLY_NAMES = ["www.credly.com", "api.credly.com", "sandbox.credly.com", "sandbox-api.credly.com"]


@dataclass
class FakeServer:
    port: int
    mode: str = "credly"
    seen: list[tuple[str, str, bytes, dict[str, str]]] = field(default_factory=list)


def _handler(server_state: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _record(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            server_state.seen.append(
                (self.command, self.path, body, {k.lower(): v for k, v in self.headers.items()})
            )
            return body

        def do_GET(self) -> None:
            self._record()
            if server_state.mode == "credly" and self.path == "/v1/organizations":
                self._reply(401, b'{"message":"unauthorized"}', "application/json")
            elif server_state.mode == "credly":
                self._reply(200, b"<html>Credly</html>", "text/html")
            else:
                self._reply(404, b"<html>not found</html>", "text/html")

        def do_POST(self) -> None:
            self._record()
            if server_state.mode == "credly" and self.path == "/oauth/token":
                doc = {"error": "invalid_client", "error_description": "Client authentication"}
                self._reply(401, json.dumps(doc).encode(), "application/json")
            elif server_state.mode == "broken":
                self._reply(503, b"busy", "text/plain")
            else:
                self._reply(404, b"<html>not found</html>", "text/html")

    return Handler


@pytest.fixture
def trusted_ca(tmp_path: Path) -> tuple[trustme.CA, Path]:
    ca = trustme.CA(organization_name="Test Public CA")
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


def _serve(cert: trustme.LeafCert, mode: str = "credly") -> Iterator[FakeServer]:
    state = FakeServer(port=0, mode=mode)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def credly_server(trusted_ca: tuple[trustme.CA, Path]) -> Iterator[FakeServer]:
    yield from _serve(trusted_ca[0].issue_cert(*CREDLY_NAMES))


def to(port: int):  # type: ignore[no-untyped-def]
    def resolve(host: str, wanted_port: int) -> list[tuple[str, int]]:
        assert wanted_port == 443
        return [("127.0.0.1", port)]

    return resolve


def statuses(report) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(s.step, s.status) for s in report.steps]


def test_real_looking_credly_passes_every_step(
    tmp_path: Path, trusted_ca: tuple[trustme.CA, Path], credly_server: FakeServer
) -> None:
    settings = make_settings(tmp_path, ca_bundle=trusted_ca[1])
    report = check_endpoint(settings, resolver=to(credly_server.port))
    assert statuses(report) == [
        ("dns", "ok"),
        ("tcp", "ok"),
        ("tls", "ok"),
        ("http", "ok"),
        ("oauth", "ok"),
        ("dns", "ok"),
        ("tcp", "ok"),
        ("tls", "ok"),
        ("api", "ok"),
    ]
    assert report.exit_code == ExitCode.OK
    assert "Test Public CA" in report.steps[2].detail
    assert report.api_url == "https://api.credly.com/v1"


def test_the_probe_never_sends_a_secret(
    tmp_path: Path, trusted_ca: tuple[trustme.CA, Path], credly_server: FakeServer
) -> None:
    settings = make_settings(tmp_path, ca_bundle=trusted_ca[1])
    check_endpoint(settings, resolver=to(credly_server.port))
    token_posts = [s for s in credly_server.seen if s[1] == "/oauth/token"]
    assert len(token_posts) == 1
    body = token_posts[0][2].decode()
    assert f"client_id={PROBE_CLIENT_ID}" in body and "client_secret" not in body
    for _method, _path, raw, headers in credly_server.seen:
        assert CREDLY_SECRET not in raw.decode() + json.dumps(headers)
        assert "authorization" not in headers


def test_tls_interception_by_an_untrusted_proxy_ca_names_the_issuer(
    tmp_path: Path, trusted_ca: tuple[trustme.CA, Path]
) -> None:
    proxy_ca = trustme.CA(organization_name="Contoso TLS Inspection")
    for server in _serve(proxy_ca.issue_cert(*CREDLY_NAMES)):
        settings = make_settings(tmp_path, ca_bundle=trusted_ca[1])
        report = check_endpoint(settings, resolver=to(server.port))
        tls = next(s for s in report.steps if s.step == "tls")
        assert tls.status == "fail"
        assert "Contoso TLS Inspection" in tls.detail
        assert "network.ca_bundle" in tls.fix
        assert report.exit_code == ExitCode.PROBLEMS
        assert not [s for s in server.seen if s[1] == "/oauth/token"]


def test_interception_trusted_through_the_ca_bundle_is_reported(tmp_path: Path) -> None:
    proxy_ca = trustme.CA(organization_name="Contoso TLS Inspection")
    bundle = tmp_path / "proxy-ca.pem"
    proxy_ca.cert_pem.write_to_path(str(bundle))
    for server in _serve(proxy_ca.issue_cert(*CREDLY_NAMES)):
        report = check_endpoint(make_settings(tmp_path, ca_bundle=bundle), resolver=to(server.port))
        tls = next(s for s in report.steps if s.step == "tls")
        assert tls.status == "ok"
        assert "Contoso TLS Inspection" in tls.detail and str(bundle) in tls.detail


def test_certificate_for_other_names_is_a_hostname_mismatch(
    tmp_path: Path, trusted_ca: tuple[trustme.CA, Path]
) -> None:
    for server in _serve(trusted_ca[0].issue_cert("portal.example.net")):
        report = check_endpoint(
            make_settings(tmp_path, ca_bundle=trusted_ca[1]), resolver=to(server.port)
        )
        tls = next(s for s in report.steps if s.step == "tls")
        assert tls.status == "fail" and tls.evidence["verify_code"] == 62
        assert tls.evidence["names"] == ["portal.example.net"]


def test_a_host_without_an_oauth_endpoint_is_not_credly(
    tmp_path: Path, trusted_ca: tuple[trustme.CA, Path]
) -> None:
    for server in _serve(trusted_ca[0].issue_cert(*CREDLY_NAMES), mode="plain"):
        report = check_endpoint(
            make_settings(tmp_path, ca_bundle=trusted_ca[1]), resolver=to(server.port)
        )
        oauth = next(s for s in report.steps if s.step == "oauth")
        api = next(s for s in report.steps if s.step == "api")
        assert oauth.status == "fail" and "404" in oauth.detail
        assert api.status == "fail"
        assert report.exit_code == ExitCode.PROBLEMS


def test_server_errors_are_worth_retrying(
    tmp_path: Path, trusted_ca: tuple[trustme.CA, Path]
) -> None:
    for server in _serve(trusted_ca[0].issue_cert(*CREDLY_NAMES), mode="broken"):
        report = check_endpoint(
            make_settings(tmp_path, ca_bundle=trusted_ca[1]), resolver=to(server.port)
        )
        oauth = next(s for s in report.steps if s.step == "oauth")
        assert oauth.status == "warn" and oauth.transient
        assert report.exit_code == ExitCode.REMOTE


def test_dns_failure_stops_the_probe_and_says_retry(tmp_path: Path) -> None:
    def nowhere(host: str, port: int) -> list[tuple[str, int]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    report = check_endpoint(make_settings(tmp_path), resolver=nowhere)
    assert [s.step for s in report.steps] == ["dns", "dns"]  # web host, then API host
    assert all(s.status == "fail" and s.transient for s in report.steps)
    assert report.exit_code == ExitCode.REMOTE


def test_refused_connection_is_the_tcp_step(tmp_path: Path) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed_port = placeholder.getsockname()[1]
    report = check_endpoint(make_settings(tmp_path), resolver=to(closed_port))
    assert statuses(report)[:2] == [("dns", "ok"), ("tcp", "fail")]


def test_a_typo_is_reported_and_the_corrected_host_probed(
    tmp_path: Path, trusted_ca: tuple[trustme.CA, Path], credly_server: FakeServer
) -> None:
    resolved: list[str] = []

    def resolver(host: str, port: int) -> list[tuple[str, int]]:
        resolved.append(host)
        return [("127.0.0.1", credly_server.port)]

    settings = make_settings(tmp_path, ca_bundle=trusted_ca[1])
    report = check_endpoint(settings, "https://www.credyl.com/", resolver=resolver)
    assert report.analysis.has_errors and report.probed_url == "https://www.credly.com"
    assert resolved == ["www.credly.com", "api.credly.com"]
    assert report.exit_code == ExitCode.PROBLEMS


def test_no_url_and_no_settings_is_a_usage_error() -> None:
    from credly_connector.errors import UsageError

    with pytest.raises(UsageError):
        check_endpoint(None, None)
