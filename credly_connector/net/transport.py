"""The shared httpx client: TLS always verified, proxies, a User-Agent and the host guard.

The host guard is the promise that a credential never reaches a host the configuration does
not name: every request (including each redirect hop, since redirects are never followed
automatically) is checked against the allowlist of its service before anything is sent.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import certifi
import httpx

from credly_connector import __version__
from credly_connector.config.resolved import InstanceSettings, NetworkSettings
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
        hosts = set(network.credly_hosts)
        bases = {settings.credly.web_base, settings.credly.api_base}
        if allow_other_credly_environment:
            for endpoints in CREDLY_ENVIRONMENTS.values():
                hosts |= endpoints.hosts
                bases |= {endpoints.web_base, endpoints.api_base}
    elif service == "microsoft":
        hosts = set(network.microsoft_hosts)
        bases = {settings.entra.login_base, settings.entra.graph_base}
    else:  # pragma: no cover - Literal guards this for typed callers
        raise ValueError(f"unknown service {service!r}")
    # Origins, not hosts: the configured URLs fix the port too (finding L1). A base whose host
    # the resolver did not allow stays out.
    allowed = {origin_of(base) for base in bases if httpx.URL(base).host.lower() in hosts}
    guard = HostGuard(service, frozenset(allowed))
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
    context = shared_ssl_context(network.ca_bundle)
    if network.proxy:
        # network.proxy wins over the environment (HTTPS_PROXY, NO_PROXY are then ignored);
        # network.no_proxy lists what goes direct, read with httpx's NO_PROXY rules.
        mounts: dict[str, httpx.BaseTransport | None] = {}
        for pattern, proxy in explicit_proxy_routes(network.proxy, network.no_proxy).items():
            mounts[pattern] = httpx.HTTPTransport(verify=context, proxy=proxy)
        return client(verify=context, mounts=mounts, trust_env=False)
    # trust_env lets HTTPS_PROXY / NO_PROXY work, read by httpx itself; the CA comes from our
    # own context, so REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (requests-only) cannot change it.
    return client(verify=context, trust_env=True)


_ROUTES_LOCK = threading.Lock()


def explicit_proxy_routes(proxy: str, no_proxy: str | None) -> dict[str, str | None]:
    """URL pattern -> proxy (None: direct) for a configured proxy and no_proxy list.

    The list means what NO_PROXY means to httpx (curl's rules: `*`, `example.com` and
    `.example.com` suffixes, IP addresses, `localhost`, `host:port`), because httpx itself
    reads it: its environment reader is given these two values instead of the environment's.
    """
    from httpx import _utils

    def configured() -> dict[str, str]:
        return {"all": proxy, "no": no_proxy or ""}

    with _ROUTES_LOCK:  # the reader is module state; never let two builds interleave
        original = getattr(_utils, "getproxies")  # noqa: B009 - not exported, but stable
        setattr(_utils, "getproxies", configured)  # noqa: B010
        try:
            routes: dict[str, str | None] = _utils.get_environment_proxies()
        finally:
            setattr(_utils, "getproxies", original)  # noqa: B010
    if not routes:  # NO_PROXY=* : nothing goes through the proxy
        return {"all://": None}
    return routes


def proxy_for_url(url: str, proxy: str | None, no_proxy: str | None) -> str | None:
    """The proxy a request to `url` goes through (None: direct), decided as the clients decide.

    `proxy` / `no_proxy` are network.proxy / network.no_proxy; without `proxy`, the
    environment's variables apply. The routes and their precedence are httpx's own (its URL
    patterns, most specific first), so a probe and a real request always agree.
    """
    from httpx._utils import URLPattern, get_environment_proxies

    routes = explicit_proxy_routes(proxy, no_proxy) if proxy else get_environment_proxies()
    target = httpx.URL(url)
    for pattern in sorted(URLPattern(key) for key in routes):
        if pattern.matches(target):
            return routes[pattern.pattern]
    return None


def build_managed_identity_client(
    network: NetworkSettings | None, origin: str, *, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """The client for the managed identity endpoint: one origin, never through a proxy.

    The endpoint is Azure's instance metadata service (plain http on a link-local address, by
    design) or a local address the host names in IDENTITY_ENDPOINT; the caller checked which.
    Requests go to that origin only, since they carry the host's identity secret.
    """
    seconds = network.timeout_seconds if network else 30.0
    # The endpoint is on this machine or link-local: if it does not connect at once, there is
    # none (credlyctl is not running on Azure).
    timeout = httpx.Timeout(seconds, connect=min(seconds, 2.0))
    guard = OriginGuard("managed identity", frozenset({origin_of(origin)}))
    options: dict[str, Any] = {
        "headers": {"User-Agent": USER_AGENT},
        "timeout": timeout,
        "follow_redirects": False,
        "event_hooks": {"request": [guard]},
        "trust_env": False,  # a proxy must never see the identity endpoint's traffic
    }
    if transport is not None:
        return httpx.Client(transport=transport, **options)
    return httpx.Client(
        verify=shared_ssl_context(network.ca_bundle if network else None), **options
    )


class OriginGuard:
    """Refuses any request outside a fixed set of origins (the scheme may be http)."""

    def __init__(self, what: str, allowed: frozenset[str]) -> None:
        self.what = what
        self.allowed = allowed

    def __call__(self, request: httpx.Request) -> None:
        origin = origin_of(request.url)
        if origin not in self.allowed:
            raise ForbiddenHostError(
                f"credlyctl refused to send a {self.what} request to {origin}: only "
                f"{', '.join(sorted(self.allowed))} may receive it",
                "This should not happen; report it with `credlyctl support-bundle`.",
                error_id="net.forbidden_host",
            )


class HostGuard:
    """An httpx request hook that refuses any request outside the allowed origins.

    An origin is scheme, host and port: another port of a known host is another service (on
    127.0.0.1 the simulator's Entra ID and Graph differ only by port), so it is refused too.
    """

    def __init__(self, service: Service, allowed: frozenset[str]) -> None:
        self.service = service
        self.allowed = allowed  # "https://host:port"

    def __call__(self, request: httpx.Request) -> None:
        host = request.url.host.lower()
        if request.url.scheme != "https":
            raise ForbiddenHostError(
                f"credlyctl refused a plain-http {self.service} request to {host}: "
                "credentials only travel over https",
                "Use an https:// URL in the configuration.",
                error_id="net.insecure_scheme",
            )
        origin = origin_of(request.url)
        if origin not in self.allowed:
            known = ", ".join(sorted(self.allowed)) or "none"
            raise ForbiddenHostError(
                f"credlyctl refused to send a {self.service} request to {origin}: it is not a "
                "known origin for this configuration",
                f"Known {self.service} origins here: {known}. A simulator or test double needs "
                "its URL in the configuration and network.allow_custom_hosts = true.",
                error_id="net.forbidden_host",
            )


def ensure_same_origin(url: str, base: str, *, what: str = "link") -> httpx.URL:
    """`url` parsed, if it has the scheme, host and port of `base`; else ForbiddenHostError."""
    target = httpx.URL(url)
    if origin_of(target) != origin_of(base):
        raise ForbiddenHostError(
            f"the server sent a {what} on another origin ({origin_of(target)}); "
            f"credlyctl only follows links on {origin_of(base)}",
            "This should not happen with the real service; if it persists, report it with "
            "`credlyctl support-bundle`.",
            error_id="net.cross_origin_link",
        )
    return target


def origin_of(url: str | httpx.URL) -> str:
    """scheme://host:port with the scheme's default port written out, host lower-cased."""
    parsed = httpx.URL(url) if isinstance(url, str) else url
    default_ports = {"https": 443, "http": 80}
    port = parsed.port or default_ports.get(parsed.scheme)
    host = parsed.host.lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{parsed.scheme}://{host}:{port}"


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


_SHARED_LOCK = threading.Lock()
_SHARED_CONTEXTS: dict[tuple[str, int, int] | None, ssl.SSLContext] = {}


def shared_ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """`ssl_context(ca_bundle)`, built once per process for every client that uses it.

    Loading the trust store costs about 35 ms of CPU, and a diagnosis opens four sessions
    (Credly, Entra, Graph, another organization) while its first requests wait for them. An
    SSLContext is made to be shared by connections; httpx only sets ALPN on it, the same value
    for every client. A bundle that changed on disk (size or modification time) is read again.
    """
    key: tuple[str, int, int] | None = None
    if ca_bundle is not None:
        try:
            info = os.stat(ca_bundle)
        except OSError:
            return ssl_context(ca_bundle)  # says why it cannot be used
        key = (str(ca_bundle), info.st_mtime_ns, info.st_size)
    with _SHARED_LOCK:  # concurrent first builds wait for one instead of each paying for it
        context = _SHARED_CONTEXTS.get(key)
        if context is None:
            context = ssl_context(ca_bundle)
            _SHARED_CONTEXTS[key] = context
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
