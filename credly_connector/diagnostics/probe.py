"""A step-by-step live probe of one https host: DNS, (proxy), TCP, TLS, then plain requests.

Each step is reported separately, because "cannot connect" has very different fixes depending
on where it stops: a name that does not resolve, a firewall, a proxy that inspects TLS with its
own CA, or a host that answers but is not the service it should be. Raw sockets (not httpx) so
that every step is visible and the name resolver can be replaced in tests. Nothing secret is
ever sent by this module.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from credly_connector.net.transport import USER_AGENT, proxy_for_url, ssl_context

# (host, port) -> the socket addresses to try, like getaddrinfo; tests map names to 127.0.0.1.
Resolver = Callable[[str, int], list[tuple[str, int]]]
StepStatus = Literal["ok", "warn", "fail", "skipped"]

_MAX_BODY = 1 << 20
_VERIFY_HINTS = {
    10: "the certificate has expired",
    18: "the certificate is self-signed",
    19: "the chain ends in a self-signed CA this machine does not trust",
    20: "the certificate was issued by a CA this machine does not trust",
    62: "the certificate is for other host names",
}


def system_resolver(host: str, port: int) -> list[tuple[str, int]]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[tuple[str, int]] = []
    for info in infos:
        address = (str(info[4][0]), int(info[4][1]))
        if address not in seen:
            seen.append(address)
    return seen


@dataclass(frozen=True)
class ProbeStep:
    step: str  # dns | proxy | tcp | tls | http | oauth | api
    target: str
    status: StepStatus
    detail: str
    fix: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    transient: bool = False  # a network failure that may go away: retry later

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "target": self.target,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "evidence": self.evidence,
            "transient": self.transient,
        }


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def certificate_facts(der: bytes) -> dict[str, Any]:
    """Issuer, subject, names and validity of a DER certificate (for the admin, not for trust)."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return {
        "issuer": cert.issuer.rfc4514_string(),
        "subject": cert.subject.rfc4514_string(),
        "names": names,
        "not_after": cert.not_valid_after_utc.astimezone(UTC).isoformat(),
    }


class HostProbe:
    """Probes one origin; `connect()` reports DNS/proxy/TCP/TLS once, `request()` reuses them."""

    def __init__(
        self,
        base_url: str,
        *,
        resolver: Resolver | None = None,
        ca_bundle: Path | None = None,
        proxy: str | None = None,
        no_proxy: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(base_url)
        self.host = (parts.hostname or "").lower()
        self.port = parts.port or 443
        self.target = self.host if self.port == 443 else f"{self.host}:{self.port}"
        self.resolver = resolver or system_resolver
        self.ca_bundle = ca_bundle
        # The same routing as the real clients (httpx's NO_PROXY rules; an explicit proxy
        # ignores the environment's variables).
        self.proxy = proxy_for_url(base_url, proxy, no_proxy)
        self.timeout = timeout
        self.steps: list[ProbeStep] = []
        self._addresses: list[tuple[str, int]] = []
        self._reachable = False

    def _add(self, step: str, status: StepStatus, detail: str, fix: str = "", **kw: Any) -> None:
        evidence = kw.pop("evidence", {})
        self.steps.append(ProbeStep(step, self.target, status, detail, fix, evidence, **kw))

    # -- connection steps -------------------------------------------------------------------

    def connect(self) -> bool:
        """Run DNS, TCP and TLS once, reporting each; True when a verified TLS session works."""
        if self.proxy:
            return self._connect_via_proxy()
        try:
            self._addresses = self.resolver(self.host, self.port)
        except (OSError, UnicodeError) as exc:
            self._add(
                "dns",
                "fail",
                f"The name {self.host} does not resolve ({type(exc).__name__}).",
                "Check the host name for typos, then this machine's DNS settings; behind a "
                "proxy, set network.proxy or HTTPS_PROXY.",
                transient=True,
            )
            return False
        if not self._addresses:
            self._add(
                "dns",
                "fail",
                f"The name {self.host} resolves to no address.",
                "Check the host name and the DNS settings.",
                transient=True,
            )
            return False
        self._add(
            "dns",
            "ok",
            f"{self.host} resolves to {', '.join(a for a, _ in self._addresses[:4])}.",
            evidence={"addresses": [a for a, _ in self._addresses]},
        )
        sock = self._tcp()
        if sock is None:
            return False
        return self._tls(sock)

    def _tcp(self) -> socket.socket | None:
        last: OSError | None = None
        for address in self._addresses:
            try:
                sock = socket.create_connection(address, timeout=self.timeout)
            except OSError as exc:
                last = exc
                continue
            self._add(
                "tcp",
                "ok",
                f"Connected to {address[0]} port {self.port}.",
                evidence={"address": address[0], "port": self.port},
            )
            return sock
        self._add(
            "tcp",
            "fail",
            f"No address of {self.host} accepts connections on port {self.port} "
            f"({type(last).__name__ if last else 'no address'}).",
            "A firewall may block outgoing https; if this network requires a proxy, set "
            "network.proxy or HTTPS_PROXY.",
            transient=True,
        )
        return None

    def _connect_via_proxy(self) -> bool:
        proxy = urlsplit(self.proxy or "")
        proxy_host, proxy_port = (proxy.hostname or ""), proxy.port or 8080
        shown = f"{proxy_host}:{proxy_port}"  # never the proxy's user info
        try:
            raw = socket.create_connection((proxy_host, proxy_port), timeout=self.timeout)
        except OSError as exc:
            self._add(
                "proxy",
                "fail",
                f"The proxy {shown} does not accept connections ({type(exc).__name__}).",
                "Check network.proxy / HTTPS_PROXY.",
                transient=True,
            )
            return False
        request = (
            f"CONNECT {self.host}:{self.port} HTTP/1.1\r\nHost: {self.host}:{self.port}"
            f"\r\nUser-Agent: {USER_AGENT}\r\n\r\n"
        )
        try:
            raw.sendall(request.encode("ascii"))
            status_line = raw.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
        except OSError as exc:
            raw.close()
            self._add(
                "proxy",
                "fail",
                f"The proxy {shown} dropped the connection ({type(exc).__name__}).",
                "Check network.proxy.",
                transient=True,
            )
            return False
        if " 200" not in status_line:
            raw.close()
            self._add(
                "proxy",
                "fail",
                f"The proxy {shown} refused to tunnel to {self.target}: {status_line[:80]!r}.",
                "Ask the network team to allow this host "
                "through the proxy (or check the proxy's authentication).",
            )
            return False
        self._add(
            "proxy",
            "ok",
            f"The proxy {shown} opened a tunnel to {self.target}; DNS is resolved by the proxy.",
            evidence={"proxy": shown},
        )
        return self._tls(raw)

    def _tls(self, sock: socket.socket) -> bool:
        context = ssl_context(self.ca_bundle)
        try:
            with context.wrap_socket(sock, server_hostname=self.host) as tls:
                facts = certificate_facts(tls.getpeercert(binary_form=True) or b"")
                version = tls.version()
        except ssl.SSLCertVerificationError as exc:
            facts = self._unverified_certificate()
            reason = _VERIFY_HINTS.get(exc.verify_code, exc.verify_message or "not trusted")
            issuer = facts.get("issuer", "unknown")
            fix = (
                "If your network inspects TLS through a proxy, add that proxy's CA certificate "
                "(the issuer shown) to network.ca_bundle; otherwise something is intercepting "
                "the connection or the host is not the real service."
            )
            if exc.verify_code == 62:
                fix = (
                    "The host answered with a certificate for other names: check the host "
                    "name, or whether a proxy or captive portal answers instead."
                )
            if exc.verify_code == 10:
                fix = (
                    "Check this machine's clock; if it is right, the server's certificate expired."
                )
            self._add(
                "tls",
                "fail",
                f"TLS verification failed for {self.host}: {reason} (issuer: {issuer}).",
                fix,
                evidence={"verify_code": exc.verify_code, **facts},
            )
            return False
        except (ssl.SSLError, OSError) as exc:
            self._add(
                "tls",
                "fail",
                f"The TLS handshake with {self.host} failed ({type(exc).__name__}).",
                "A proxy or firewall may be interfering with https to this host.",
                transient=isinstance(exc, TimeoutError),
            )
            return False
        detail = f"TLS {version} verified; certificate issued by {facts['issuer']}."
        if self.ca_bundle is not None:
            detail += (
                f" Trust includes the CA bundle {self.ca_bundle}: if that is a TLS-"
                "inspecting proxy's CA, the proxy sees this traffic."
            )
        self._add("tls", "ok", detail, evidence={"tls_version": version, **facts})
        self._reachable = True
        return True

    def _unverified_certificate(self) -> dict[str, Any]:
        """The certificate the host presents, read without trusting it, to name its issuer."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            sock = self._open_raw()
            with context.wrap_socket(sock, server_hostname=self.host) as tls:
                return certificate_facts(tls.getpeercert(binary_form=True) or b"")
        except (OSError, ssl.SSLError, ValueError):
            return {}

    def _open_raw(self) -> socket.socket:
        if self.proxy:
            proxy = urlsplit(self.proxy)
            raw = socket.create_connection(
                (proxy.hostname or "", proxy.port or 8080), timeout=self.timeout
            )
            raw.sendall(
                f"CONNECT {self.host}:{self.port} HTTP/1.1\r\nHost: {self.host}:"
                f"{self.port}\r\n\r\n".encode("ascii")
            )
            raw.recv(4096)
            return raw
        last: OSError = OSError("no address")
        for address in self._addresses:
            try:
                return socket.create_connection(address, timeout=self.timeout)
            except OSError as exc:
                last = exc
        raise last

    # -- requests over the verified connection ------------------------------------------------

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> HttpAnswer:
        """One HTTP/1.1 request on a fresh verified connection; OSError/SSLError on failure."""
        if not self._reachable:
            raise OSError("the host was not reached")
        context = ssl_context(self.ca_bundle)
        host_header = self.host if self.port == 443 else f"{self.host}:{self.port}"
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {host_header}",
            f"User-Agent: {USER_AGENT}",
            "Accept: application/json",
            "Connection: close",
        ]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        with context.wrap_socket(self._open_raw(), server_hostname=self.host) as tls:
            tls.sendall(payload)
            data = b""
            while len(data) < _MAX_BODY:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
        return parse_http_answer(data)


def parse_http_answer(data: bytes) -> HttpAnswer:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError("not an HTTP answer")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers and headers["content-length"].isdigit():
        body = body[: int(headers["content-length"])]
    return HttpAnswer(int(parts[1]), headers, body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out
