"""check-endpoint: what is wrong with a Credly URL an admin pasted, and does the host answer.

Static analysis first (no network): each finding carries the exact corrected URL. Then a live
probe of the corrected web host, step by step (diagnostics/probe.py). The probe never sends a
credential: the token endpoint is asked with an obviously fake client id and no secret, and a
real Credly OAuth server answers that with an OAuth error such as `invalid_client`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from credly_connector.config.resolved import InstanceSettings
from credly_connector.diagnostics.probe import HostProbe, ProbeStep, Resolver
from credly_connector.endpoints import (
    CREDLY_API_HOSTS,
    CREDLY_ENVIRONMENTS,
    CREDLY_LEGACY_HOSTS,
    CREDLY_WEB_ALIASES,
    CredlyEnvironment,
)
from credly_connector.errors import UsageError
from credly_connector.exit_codes import ExitCode, combine

Severity = Literal["error", "warning", "info"]

_WEB_HOSTS = {e.web_base.split("://", 1)[1]: env for env, e in CREDLY_ENVIRONMENTS.items()}
_KNOWN_CREDLY_HOSTS = (
    set(_WEB_HOSTS) | set(CREDLY_API_HOSTS) | set(CREDLY_WEB_ALIASES) | set(CREDLY_LEGACY_HOSTS)
)
_TYPO_DISTANCE = 2


@dataclass(frozen=True)
class UrlFinding:
    id: str
    severity: Severity
    message: str
    correction: str | None = None  # the exact URL to use instead

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "message": self.message,
            "correction": self.correction,
        }


@dataclass(frozen=True)
class UrlAnalysis:
    given: str  # as pasted, with any user info and query values masked
    corrected: str | None  # the URL to use; None when no Credly host can be guessed
    environment: CredlyEnvironment | None  # what the corrected URL points at
    custom_host: bool = False
    findings: tuple[UrlFinding, ...] = field(default_factory=tuple)

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "given": self.given,
            "corrected": self.corrected,
            "environment": str(self.environment) if self.environment else None,
            "custom_host": self.custom_host,
            "findings": [f.to_dict() for f in self.findings],
        }


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: a swap of two neighbours counts as one typo."""
    rows = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        rows[i][0] = i
    for j in range(len(b) + 1):
        rows[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[len(a)][len(b)]


def _mask(url: str) -> str:
    """The URL for display: user info and query values could hold a secret."""
    try:
        parts = urlsplit(url if "://" in url else f"https://{url}")
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        f"{pair.split('=', 1)[0]}=***" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    scheme = parts.scheme if "://" in url else ""
    text = f"{scheme}://{netloc}" if scheme else netloc
    text += parts.path
    if query:
        text += f"?{query}"
    if parts.fragment:
        text += "#…"
    return text


def _web_base(environment: CredlyEnvironment) -> str:
    return CREDLY_ENVIRONMENTS[environment].web_base


def _guess_host(host: str) -> tuple[str | None, str | None]:
    """(web host, finding id) for a host that is not the web host itself."""
    if host in CREDLY_API_HOSTS:
        return CREDLY_API_HOSTS[host], "api-host"
    if host in CREDLY_LEGACY_HOSTS:
        return CREDLY_LEGACY_HOSTS[host], "legacy-acclaim-host"
    if host in CREDLY_WEB_ALIASES:
        return CREDLY_WEB_ALIASES[host], "bare-domain"
    best: tuple[int, str] | None = None
    for known in sorted(_KNOWN_CREDLY_HOSTS):
        distance = edit_distance(host, known)
        if 0 < distance <= _TYPO_DISTANCE and (best is None or distance < best[0]):
            best = (distance, known)
    labels = host.split(".")
    if best is None and len(labels) >= 2 and labels[-2] == "credly" and labels[-1] != "com":
        best = (1, ".".join([*labels[:-1], "com"]))  # credly.net, credly.co ...
    if best is None:
        return None, None
    guessed = best[1]
    web = (
        CREDLY_API_HOSTS.get(guessed)
        or CREDLY_LEGACY_HOSTS.get(guessed)
        or CREDLY_WEB_ALIASES.get(guessed)
        or guessed
    )
    return (web if web in _WEB_HOSTS else None), "typo"


def analyze_credly_url(
    url: str,
    *,
    expected_environment: CredlyEnvironment | None = None,
    custom_hosts: frozenset[str] = frozenset(),
    allow_custom_hosts: bool = False,
) -> UrlAnalysis:
    """Static analysis of a Credly web URL (the OAuth base), with exact corrections."""
    findings: list[UrlFinding] = []
    shown = _mask(url.strip())
    text = url.strip()
    if text != url or (len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""):
        text = text.strip("'\"").strip()
        findings.append(
            UrlFinding(
                "surrounding-characters",
                "warning",
                "The URL has spaces or quotes around it; they are not part of the URL.",
            )
        )
    if not text:
        findings.append(
            UrlFinding(
                "empty",
                "error",
                "No URL was given.",
                _web_base(expected_environment or CredlyEnvironment.PRODUCTION),
            )
        )
        return UrlAnalysis(
            shown, findings[-1].correction, expected_environment, False, tuple(findings)
        )
    if "://" not in text:
        findings.append(
            UrlFinding(
                "missing-scheme",
                "error",
                "The URL has no scheme; Credly is only reached over https.",
            )
        )
        text = f"https://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        findings.append(
            UrlFinding(
                "unparseable",
                "error",
                "This is not a URL that can be read.",
                _web_base(expected_environment or CredlyEnvironment.PRODUCTION),
            )
        )
        return UrlAnalysis(shown, findings[-1].correction, None, False, tuple(findings))
    host = (parts.hostname or "").lower().rstrip(".")
    custom = host in custom_hosts or (parts.netloc.lower() in custom_hosts)
    if parts.scheme.lower() != "https":
        findings.append(
            UrlFinding(
                "not-https",
                "error",
                f"The URL uses {parts.scheme}://; credlyctl only sends credentials over https.",
            )
        )
    if parts.username is not None or parts.password is not None:
        findings.append(
            UrlFinding(
                "credentials-in-url",
                "error",
                "The URL contains a user name "
                "or password; credentials belong in the configuration's "
                "secret references, never in a URL.",
            )
        )
    if custom:
        if allow_custom_hosts:
            findings.append(
                UrlFinding(
                    "custom-host",
                    "warning",
                    f"{host} is not a Credly host; "
                    "it is allowed only because network.allow_custom_hosts "
                    "is true (a simulator or test double).",
                )
            )
        else:
            findings.append(
                UrlFinding(
                    "custom-host-not-allowed",
                    "error",
                    f"{host} is not a Credly host, and network.allow_custom_hosts is false.",
                )
            )
        origin = f"https://{parts.netloc.rsplit('@', 1)[-1]}"
        return UrlAnalysis(shown, origin, expected_environment, True, tuple(findings))

    web_host: str | None = host if host in _WEB_HOSTS else None
    if web_host is None:
        guessed, why = _guess_host(host)
        web_host = guessed
        message = {
            "api-host": f"{host} is Credly's API host; the OAuth token endpoint and this setting "
            "use the web host.",
            "legacy-acclaim-host": f"{host} is a legacy Acclaim host from before the Credly "
            "rebrand.",
            "bare-domain": f"{host} is the bare domain; Credly's documented web host is "
            "www.credly.com.",
            "typo": f"{host} looks like a typo of a Credly host.",
        }.get(why or "", f"{host} is not a Credly host, and no Credly host looks close to it.")
        severity: Severity = "warning" if why == "bare-domain" else "error"
        correction = f"https://{web_host}" if web_host else None
        findings.append(UrlFinding(why or "unknown-host", severity, message, correction))
    environment = _WEB_HOSTS.get(web_host) if web_host else None
    corrected = f"https://{web_host}" if web_host else None

    if port is not None and port != 443:
        findings.append(
            UrlFinding(
                "extra-port",
                "error",
                f"The URL names port {port}; Credly answers on the standard https port.",
                corrected,
            )
        )
    elif port == 443:
        findings.append(
            UrlFinding(
                "explicit-port",
                "info",
                "Port 443 is the https default; it can be left out.",
                corrected,
            )
        )
    path = parts.path.rstrip("/")
    if path:
        findings.append(
            UrlFinding(
                "extra-path",
                "error",
                f"The URL has a path ({path}); this "
                "setting is the site root only, credlyctl adds the paths.",
                corrected,
            )
        )
    if parts.query:
        findings.append(
            UrlFinding(
                "query-string",
                "error",
                "The URL has a query string; it must not have one.",
                corrected,
            )
        )
    if parts.fragment:
        findings.append(
            UrlFinding(
                "fragment", "error", "The URL has a #fragment; it must not have one.", corrected
            )
        )
    if environment and expected_environment and environment != expected_environment:
        other = _web_base(expected_environment)
        findings.append(
            UrlFinding(
                "environment-mismatch",
                "error",
                f"The URL points at Credly {environment} but the instance is configured for "
                f"{expected_environment}; production and sandbox credentials do not mix.",
                other,
            )
        )
        corrected = other
    if environment is not None and not findings:
        findings.append(
            UrlFinding("recognised", "info", f"This is Credly {environment}'s web host.")
        )
    return UrlAnalysis(shown, corrected, environment, False, tuple(findings))


# Obviously not a real client, and no secret: a Credly OAuth server refuses it with an OAuth
# error, which is all the probe wants to see.
PROBE_CLIENT_ID = "credlyctl-endpoint-probe-not-a-real-client"
_OAUTH_ERRORS = frozenset(
    {"invalid_client", "invalid_request", "unauthorized_client", "unsupported_grant_type"}
)


@dataclass(frozen=True)
class EndpointReport:
    analysis: UrlAnalysis
    probed_url: str | None
    api_url: str | None
    steps: tuple[ProbeStep, ...]

    @property
    def exit_code(self) -> ExitCode:
        codes = [ExitCode.OK]
        if self.analysis.has_errors:
            codes.append(ExitCode.PROBLEMS)
        for step in self.steps:
            if step.status == "fail":
                codes.append(ExitCode.REMOTE if step.transient else ExitCode.PROBLEMS)
            elif step.status == "warn" and step.transient:
                codes.append(ExitCode.REMOTE)
        return combine(*codes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.analysis.to_dict(),
            "probed_url": self.probed_url,
            "api_url": self.api_url,
            "steps": [s.to_dict() for s in self.steps],
        }


def check_endpoint(
    settings: InstanceSettings | None,
    url: str | None = None,
    *,
    resolver: Resolver | None = None,
    probe: bool = True,
) -> EndpointReport:
    """Analyse `url` (default: the instance's Credly web URL), then probe the corrected URL."""
    if url is None:
        if settings is None:
            raise UsageError(
                "There is no URL to check: none was given and no instance is configured.",
                "Pass the URL, e.g. `credlyctl check-endpoint https://www.credly.com`, or "
                "configure an instance.",
                error_id="check-endpoint.no-url",
            )
        url = settings.credly.web_base
    network = settings.network if settings else None
    analysis = analyze_credly_url(
        url,
        expected_environment=settings.credly.environment if settings else None,
        custom_hosts=network.custom_hosts if network else frozenset(),
        allow_custom_hosts=network.allow_custom_hosts if network else False,
    )
    target = analysis.corrected
    api_url = _api_url(analysis, settings)
    if not probe:
        return EndpointReport(analysis, None, api_url, ())
    if target is None or (analysis.custom_host and not (network and network.allow_custom_hosts)):
        reason = ProbeStep(
            "dns",
            url if target is None else target,
            "skipped",
            "Not probed: no Credly host could be derived from this URL."
            if target is None
            else "Not probed: the host is not allowed by the configuration.",
        )
        return EndpointReport(analysis, None, api_url, (reason,))
    options: dict[str, Any] = {"resolver": resolver}
    if network is not None:
        options.update(
            ca_bundle=network.ca_bundle,
            proxy=network.proxy,
            no_proxy=network.no_proxy,
            timeout=min(network.timeout_seconds, 15.0),
        )
    steps = _probe_web(HostProbe(target, **options))
    if api_url is not None:
        steps += _probe_api(HostProbe(api_url, **options), api_url)
    return EndpointReport(analysis, target, api_url, tuple(steps))


def _api_url(analysis: UrlAnalysis, settings: InstanceSettings | None) -> str | None:
    if analysis.custom_host:
        if settings is not None and analysis.corrected == _origin(settings.credly.web_base):
            return settings.credly.api_base
        return None
    if analysis.environment is None:
        return None
    return CREDLY_ENVIRONMENTS[analysis.environment].api_base


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _probe_web(probe: HostProbe) -> list[ProbeStep]:
    if not probe.connect():
        return probe.steps
    steps = list(probe.steps)
    try:
        home = probe.request("GET", "/")
        status: Literal["ok", "warn"] = "ok" if home.status < 500 else "warn"
        steps.append(
            ProbeStep(
                "http",
                probe.target,
                status,
                f"GET / answered HTTP {home.status}.",
                evidence={"status": home.status},
                transient=home.status >= 500,
            )
        )
    except (OSError, ValueError) as exc:
        steps.append(
            ProbeStep(
                "http",
                probe.target,
                "fail",
                f"The host accepted TLS but gave no HTTP answer ({type(exc).__name__}).",
                "A proxy or firewall may be cutting the connection.",
                transient=True,
            )
        )
        return steps
    body = f"grant_type=client_credentials&client_id={PROBE_CLIENT_ID}".encode("ascii")
    try:
        answer = probe.request(
            "POST",
            "/oauth/token",
            body,
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
    except (OSError, ValueError) as exc:
        steps.append(
            ProbeStep(
                "oauth",
                probe.target,
                "fail",
                f"The token endpoint gave no HTTP answer ({type(exc).__name__}).",
                transient=True,
            )
        )
        return steps
    steps.append(_judge_oauth(probe.target, answer.status, answer.body))
    return steps


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _judge_oauth(target: str, status: int, body: bytes) -> ProbeStep:
    document = _json(body)
    error = document.get("error") if isinstance(document, dict) else None
    evidence: dict[str, Any] = {
        "status": status,
        "oauth_error": error if isinstance(error, str) and error.isidentifier() else None,
    }
    what = "POST /oauth/token with a made-up client id and no secret"
    if isinstance(error, str) and status in (400, 401) and error in _OAUTH_ERRORS:
        return ProbeStep(
            "oauth",
            target,
            "ok",
            f"{what} was refused with HTTP {status} "
            f"{error!r}: this host answers like Credly's OAuth server.",
            evidence=evidence,
        )
    if isinstance(document, dict) and "access_token" in document:
        return ProbeStep(
            "oauth",
            target,
            "fail",
            f"{what} was given a token: this is not Credly's OAuth server.",
            "Use https://www.credly.com (production) or https://sandbox.credly.com (sandbox).",
            evidence=evidence,
        )
    if status >= 500:
        return ProbeStep(
            "oauth",
            target,
            "warn",
            f"{what} answered HTTP {status}: the server has a problem right now.",
            "Try again later.",
            evidence=evidence,
            transient=True,
        )
    if status == 404:
        return ProbeStep(
            "oauth",
            target,
            "fail",
            f"{what} answered 404: there is no OAuth "
            "token endpoint on this host, so it is not Credly's web host.",
            "Use https://www.credly.com (production) or https://sandbox.credly.com (sandbox).",
            evidence=evidence,
        )
    return ProbeStep(
        "oauth",
        target,
        "fail",
        f"{what} answered HTTP {status} without an OAuth "
        "error: this does not look like Credly's OAuth server.",
        "Use https://www.credly.com (production) or https://sandbox.credly.com (sandbox).",
        evidence=evidence,
    )


def _probe_api(probe: HostProbe, api_url: str) -> list[ProbeStep]:
    if not probe.connect():
        return probe.steps
    steps = list(probe.steps)
    path = urlsplit(api_url).path.rstrip("/") + "/organizations"
    try:
        answer = probe.request("GET", path)
    except (OSError, ValueError) as exc:
        steps.append(
            ProbeStep(
                "api",
                probe.target,
                "fail",
                f"The API host gave no HTTP answer ({type(exc).__name__}).",
                transient=True,
            )
        )
        return steps
    evidence = {"status": answer.status, "path": path}
    if answer.status in (401, 403):
        steps.append(
            ProbeStep(
                "api",
                probe.target,
                "ok",
                f"GET {path} without credentials "
                f"answered {answer.status}: the API is there and wants "
                "authentication.",
                evidence=evidence,
            )
        )
    elif answer.status >= 500:
        steps.append(
            ProbeStep(
                "api",
                probe.target,
                "warn",
                f"GET {path} answered {answer.status}: the API has a problem right now.",
                "Try again later.",
                evidence=evidence,
                transient=True,
            )
        )
    else:
        steps.append(
            ProbeStep(
                "api",
                probe.target,
                "fail",
                f"GET {path} without credentials "
                f"answered {answer.status}, not 401/403: this is not Credly's "
                "API.",
                evidence=evidence,
            )
        )
    return steps
