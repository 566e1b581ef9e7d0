"""The shared httpx client: TLS always verified, proxies, a User-Agent and the host guard.

The host guard is the promise that a credential never reaches a host the configuration does
not name: every request (including each redirect hop, since redirects are never followed
automatically) is checked against the allowlist of its service before anything is sent.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import certifi
import httpx

from credly_connector import __version__
from credly_connector.config.resolved import InstanceSettings
from credly_connector.endpoints import CREDLY_ENVIRONMENTS
from credly_connector.errors import ConfigError, ForbiddenHostError

USER_AGENT = f"credlyctl/{__version__}"

Service = Literal["credly", "microsoft"]


def build_http_client(
    settings: InstanceSettings,
    service: Service,
    *,
    allow_other_credly_environment: bool = False,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An httpx client for one service of one instance.

    `allow_other_credly_environment` adds the other Credly environment's hosts (used only by
    `test-credentials --probe-other-environment`). `transport` replaces the network (tests).
    """
    network = settings.network
    if service == "credly":
        allowed = set(network.credly_hosts)
        if allow_other_credly_environment:
            for endpoints in CREDLY_ENVIRONMENTS.values():
                allowed |= endpoints.hosts
    elif service == "microsoft":
        allowed = set(network.microsoft_hosts)
    else:  # pragma: no cover - Literal guards this for typed callers
        raise ValueError(f"unknown service {service!r}")
    guard = HostGuard(service, frozenset(h.lower() for h in allowed))
    timeout = httpx.Timeout(network.timeout_seconds)
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    hooks: dict[str, list[Callable[..., Any]]] = {"request": [guard]}

    def client(**routing: Any) -> httpx.Client:
        # Redirects stay manual so the guard sees every hop before a credential is sent.
        return httpx.Client(
            headers=headers, timeout=timeout, follow_redirects=False, event_hooks=hooks, **routing
        )

    if transport is not None:
        return client(transport=transport)
    context = ssl_context(network.ca_bundle)
    if network.proxy:
        # An explicit proxy wins over the environment; no_proxy hosts go direct.
        mounts: dict[str, httpx.BaseTransport | None] = {
            "all://": httpx.HTTPTransport(verify=context, proxy=network.proxy)
        }
        for host in _split_no_proxy(network.no_proxy):
            mounts[f"all://{host}"] = httpx.HTTPTransport(verify=context)
        return client(verify=context, mounts=mounts, trust_env=False)
    # trust_env lets HTTPS_PROXY / NO_PROXY work; the CA comes from our own context, so
    # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (requests-only variables) cannot change it.
    return client(verify=context, trust_env=True)


class HostGuard:
    """An httpx request hook that refuses any request to a host outside the allowlist."""

    def __init__(self, service: Service, allowed: frozenset[str]) -> None:
        self.service = service
        self.allowed = allowed

    def __call__(self, request: httpx.Request) -> None:
        host = request.url.host.lower()
        if request.url.scheme != "https":
            raise ForbiddenHostError(
                f"credlyctl refused a plain-http {self.service} request to {host}: "
                "credentials only travel over https",
                "Use an https:// URL in the configuration.",
                error_id="net.insecure_scheme",
            )
        if host not in self.allowed:
            known = ", ".join(sorted(self.allowed)) or "none"
            raise ForbiddenHostError(
                f"credlyctl refused to send a {self.service} request to {host}: it is not a "
                "known host for this configuration",
                f"Known {self.service} hosts here: {known}. A simulator or test double needs "
                "its URL in the configuration and network.allow_custom_hosts = true.",
                error_id="net.forbidden_host",
            )


def ensure_same_origin(url: str, base: str, *, what: str = "link") -> httpx.URL:
    """`url` parsed, if it has the scheme, host and port of `base`; else ForbiddenHostError."""
    target = httpx.URL(url)
    origin = httpx.URL(base)
    if _origin(target) != _origin(origin):
        raise ForbiddenHostError(
            f"the server sent a {what} on another origin ({target.scheme}://{target.host}); "
            f"credlyctl only follows links on {origin.scheme}://{origin.host}",
            "This should not happen with the real service; if it persists, report it with "
            "`credlyctl support-bundle`.",
            error_id="net.cross_origin_link",
        )
    return target


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default_ports = {"https": 443, "http": 80}
    return (url.scheme, url.host.lower(), url.port or default_ports.get(url.scheme))


def ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """Verification always on: system store + certifi, plus the configured CA bundle."""
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_default_certs()
    if ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"the CA bundle {ca_bundle} cannot be used: {exc.__class__.__name__}",
                "network.ca_bundle must name a readable PEM file with one or more CA certificates.",
                error_id="net.ca_bundle",
            ) from None
    return context


def is_tls_error(exc: BaseException) -> bool:
    """Whether a network error was a TLS failure (untrusted certificate, handshake)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError | ssl.CertificateError):
            return True
        text = str(current)
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSL:" in text or "TLSV1_ALERT" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def _split_no_proxy(value: str | None) -> list[str]:
    if not value:
        return []
    return [part.strip().lower() for part in value.split(",") if part.strip()]
