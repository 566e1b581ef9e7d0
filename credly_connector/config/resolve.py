"""One instance from raw values to `InstanceSettings`, collecting every finding on the way.

`load_instance` stops at the first error; `validate-config` shows them all. Both use this one
code path, so what validate-config accepts is exactly what the other commands accept.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ValidationError

from credly_connector.config import model as m
from credly_connector.config.findings import Finding, Severity, error, warning
from credly_connector.config.raw import INVALID, SECRET_FIELDS, RawInstance
from credly_connector.config.resolved import (
    CredlySettings,
    EntraSettings,
    GraphSettings,
    InstanceSettings,
    NetworkSettings,
    SyncSettings,
)
from credly_connector.endpoints import (
    CLOUDS,
    CREDLY_API_HOSTS,
    CREDLY_ENVIRONMENTS,
    CREDLY_LEGACY_HOSTS,
    CREDLY_WEB_ALIASES,
    UNSUPPORTED_CLOUDS,
    Cloud,
    CredlyEnvironment,
    host_of,
)
from credly_connector.orgid import check_org_id
from credly_connector.secrets import Secret, register_secret_value

AUTHORIZATION_TOKEN_LIFETIME = timedelta(days=180)  # Credly issuer help centre
EXPIRY_WARNING = timedelta(days=30)
GRAPH_RESERVED_IDS = frozenset(
    name.lower()
    for name in (
        "None", "Directory", "Exchange", "ExchangeArchive", "LinkedIn", "Mailbox",
        "OneDriveBusiness", "SharePoint", "Teams", "Yammer", "Connectors", "TaskFabric",
        "PowerBI", "Assistant", "TopicEngine", "MSFT_All_Connectors",
    )
)  # fmt: skip
INSTANCE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DOMAIN_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", re.I)
_CHINA_LOGIN_HOSTS = frozenset({"login.partner.microsoftonline.cn", "login.chinacloudapi.cn"})
_CHINA_GRAPH_HOSTS = frozenset({"microsoftgraph.chinacloudapi.cn"})
_PROXY_SCHEMES = frozenset({"http", "https", "socks4", "socks5", "socks5h"})

_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class Context:
    config_path: Path | None
    environ: Mapping[str, str]
    today: date
    file_mode: int | None = None  # st_mode of the configuration file, for the CFG018 check


def resolve_instance(
    raw: RawInstance, ctx: Context
) -> tuple[InstanceSettings | None, list[Finding]]:
    resolver = _Resolver(raw, ctx)
    settings = resolver.run()
    return settings, resolver.findings


class _Resolver:
    def __init__(self, raw: RawInstance, ctx: Context) -> None:
        # A copy: resolving takes special keys out of the sections and must not change the input.
        self.raw = RawInstance(
            raw.name, {k: dict(v) for k, v in raw.sections.items()}, dict(raw.origins)
        )
        self.ctx = ctx
        self.base = f"instances.{raw.name}"
        self.findings: list[Finding] = []
        self.custom_hosts: set[str] = set()
        self.inline_secret_paths: list[str] = []
        self.allow_custom = False
        self._sections: dict[str, BaseModel] = {}

    # -- helpers ---------------------------------------------------------------------------

    def path(self, section: str, key: str) -> str:
        return f"{self.base}.{section}.{key}"

    def add(self, finding: Finding) -> None:
        key = finding.path.removeprefix(f"{self.base}.")
        if finding.id == "CFG004" and self.raw.origins.get(key) == INVALID:
            return  # the value is there but malformed, which has its own finding
        self.findings.append(finding)

    def by(self, section: str, key: str) -> str:
        origin = self.raw.origin(section, key)
        return f" (set by {origin[4:]})" if origin.startswith("env:") else ""

    def file_path(self, value: Path) -> Path:
        """Relative paths are relative to the configuration file, not the working directory."""
        value = value.expanduser()
        if not value.is_absolute() and self.ctx.config_path is not None:
            return self.ctx.config_path.parent / value
        return value

    def section(self, name: str, model: type[_M]) -> _M:
        cached = self._sections.get(name)
        if isinstance(cached, model):
            return cached
        result = self._validate_section(name, model)
        self._sections[name] = result
        return result

    def _validate_section(self, name: str, model: type[_M]) -> _M:
        data = dict(self.raw.sections.get(name, {}))
        for _ in range(len(data) + 1):
            try:
                return model.model_validate(data)
            except ValidationError as exc:
                for err in exc.errors():
                    key = str(err["loc"][0])
                    sub = "".join(f".{part}" for part in err["loc"][1:])
                    shown = ""
                    if (name, key) not in SECRET_FIELDS and isinstance(
                        err.get("input"), str | int | float | bool
                    ):
                        shown = f" (got {str(err['input'])[:60]!r})"
                    self.add(
                        error(
                            "CFG003",
                            f"{self.path(name, key)}{sub}",
                            f"{err['msg']}{shown}{self.by(name, key)}.",
                            "See docs/configuration.md for the accepted values.",
                        )
                    )
                    data.pop(key, None)
                    self.raw.origins[f"{name}.{key}"] = INVALID
        return model()  # unreachable in practice: every failing key has been dropped

    def url(self, section: str, key: str, value: str) -> SplitResult | None:
        path = self.path(section, key)
        try:
            parts = urlsplit(value.strip())
            _ = parts.port  # raises ValueError on a malformed port
        except ValueError:
            self.add(error("CFG003", path, "This is not a valid URL.", "e.g. https://host"))
            return None
        if not parts.hostname:
            self.add(
                error("CFG003", path, "This is not an absolute URL.", "Write https://<host>...")
            )
            return None
        if parts.scheme.lower() != "https":
            self.add(
                error(
                    "CFG012",
                    path,
                    f"The URL uses {parts.scheme or 'no scheme'}:, but credentials only travel "
                    "over https.",
                    f"Use https://{parts.netloc}{parts.path}",
                )
            )
            return None
        return parts

    def custom(self, section: str, key: str, host: str, what: str) -> bool:
        """Accept an unknown host only with the explicit opt-in."""
        if self.allow_custom:
            self.custom_hosts.add(host)
            return True
        self.add(
            error(
                "CFG013",
                self.path(section, key),
                f"{host} is not a known {what} host; credlyctl only sends credentials to the "
                "known hosts of the configured environment.",
                f"Remove {key} to use the standard host, or (for the simulator or a test "
                "double only) set network.allow_custom_hosts = true.",
            )
        )
        return False

    # -- the walk ------------------------------------------------------------------------

    def run(self) -> InstanceSettings | None:
        if not INSTANCE_NAME_RE.match(self.raw.name):
            self.add(
                error(
                    "CFG027",
                    self.base,
                    f"Instance name {self.raw.name!r} is not usable (it names the state folder).",
                    "Use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit.",
                )
            )
        org_id = self.org_id()
        cloud_ok = self.check_cloud()
        network = self.section("network", m.NetworkSection)
        self.allow_custom = network.allow_custom_hosts
        credly = self.credly(org_id)
        entra = self.entra() if cloud_ok else None
        graph = self.graph()
        sync = self.sync()
        net = self.network(network, credly, entra)
        # A part can also be missing because of a problem found before resolving (the raw
        # file's findings, e.g. a malformed secret reference), so check the parts themselves.
        if credly is None or entra is None or net is None or any_error(self.findings):
            return None
        return InstanceSettings(
            name=self.raw.name,
            credly=credly,
            entra=entra,
            graph=graph,
            sync=sync,
            network=net,
            config_path=self.ctx.config_path,
            warnings=tuple(f.line() for f in self.findings if f.severity == Severity.WARNING),
        )

    def org_id(self) -> str | None:
        credly = self.raw.sections.get("credly", {})
        if "org_id" not in credly:
            self.add(
                error(
                    "CFG004",
                    self.path("credly", "org_id"),
                    "The Credly Organization ID is missing.",
                    'Add org_id = "<GUID>" to the credly section; it is shown in Credly under '
                    "Developers (organization settings).",
                )
            )
            return None
        value = credly.pop("org_id")
        path = self.path("credly", "org_id")
        if isinstance(value, list):
            if len(value) > 1:
                self.add(several_org_ids(path, len(value)))
                return None
            self.add(error("CFG003", path, "org_id must be a string, not a list.", "Remove [ ]."))
            return None
        if not isinstance(value, str):
            self.add(error("CFG003", path, "org_id must be a quoted string.", 'org_id = "<GUID>"'))
            return None
        check = check_org_id(value)
        if check.reason == "several" or (
            not check.ok and any(sep in value.strip() for sep in ",;")
        ):
            self.add(several_org_ids(path, max(2, value.count(",") + value.count(";") + 1)))
            return None
        if check.reason == "empty":
            self.add(missing(path, check.message + self.by("credly", "org_id"), check.hint))
            return None
        if not check.ok:
            self.add(error("CFG005", path, check.message + self.by("credly", "org_id"), check.hint))
            return None
        return check.canonical

    def check_cloud(self) -> bool:
        entra = self.raw.sections.get("entra", {})
        value = entra.get("cloud")
        if isinstance(value, str) and value.strip().lower() in UNSUPPORTED_CLOUDS:
            entra.pop("cloud")
            self.add(
                error(
                    "CFG016",
                    self.path("entra", "cloud"),
                    f"{UNSUPPORTED_CLOUDS[value.strip().lower()]}, so credlyctl (like "
                    "Microsoft's Credly connector) cannot run there.",
                    "Use a tenant in the global, usgov (GCC High) or usgovdod cloud.",
                )
            )
            return False
        return True

    # -- secrets ---------------------------------------------------------------------------

    def secret(self, section: str, key: str, ref: m.SecretRef | None) -> Secret | None:
        if ref is None:
            return None
        path = self.path(section, key)
        if ref.env is not None:
            value = self.ctx.environ.get(ref.env)
            if value is None or value == "":
                state = "is not set" if value is None else "is set but empty"
                self.add(
                    error(
                        "CFG010",
                        path,
                        f"The environment variable {ref.env} {state}.",
                        f"Set {ref.env} in the environment that runs credlyctl, or change the "
                        "reference.",
                    )
                )
                return None
            return Secret(value, f"env:{ref.env}")
        if ref.file is not None:
            file = self.file_path(ref.file)
            value = ""
            try:
                value = file.read_text(encoding="utf-8-sig").strip()
            except FileNotFoundError:
                problem = "does not exist"
            except (OSError, UnicodeDecodeError) as exc:
                problem = f"cannot be read ({getattr(exc, 'strerror', None) or type(exc).__name__})"
            else:
                problem = "is empty" if not value else ""
            if problem:
                self.add(
                    error(
                        "CFG011",
                        path,
                        f"The secret file {file} {problem}.",
                        "Create the file holding only the secret, readable by the account "
                        "that runs credlyctl, or change the reference.",
                    )
                )
                return None
            return Secret(value, f"file:{file}")
        value = ref.value or ""
        origin = self.raw.origin(section, key)
        if not value:
            self.add(error("CFG004", path, "The secret is empty.", "Fill it in or remove the key."))
            return None
        if origin == "file":
            self.inline_secret_paths.append(path)
            self.add(
                warning(
                    "CFG017",
                    path,
                    "The secret is written inline in the configuration file.",
                    f'Move it out: {key} = {{ env = "VARIABLE" }} or {key} = '
                    '{ file = "/path/to/secret" }.',
                )
            )
            self.check_file_mode(path)
        return Secret(value, "inline" if origin == "file" else origin)

    def check_file_mode(self, path: str) -> None:
        mode = self.ctx.file_mode
        if mode is None or os.name == "nt" or not mode & 0o077:
            return
        if len(self.inline_secret_paths) > 1:
            return  # one warning per instance is enough
        self.add(
            warning(
                "CFG018",
                path,
                f"{self.ctx.config_path} holds an inline secret and can be read by other "
                f"users (mode {mode & 0o777:o}).",
                f"chmod 600 {self.ctx.config_path}, or move the secret to an environment "
                "variable or a file.",
            )
        )

    # -- sections --------------------------------------------------------------------------

    def credly(self, org_id: str | None) -> CredlySettings | None:
        section = self.section("credly", m.CredlySection)
        environment = section.environment
        env_given = "environment" in section.model_fields_set
        web_base: str | None = None
        if section.base_url:
            parts = self.url("credly", "base_url", section.base_url)
            if parts and parts.hostname:
                web_base, environment = self.credly_web(
                    parts, section.base_url, environment, env_given
                )
        endpoints = CREDLY_ENVIRONMENTS[environment]
        api_base = self.credly_api(section, environment, web_base)
        web_base = web_base or endpoints.web_base
        if api_base is None:
            api_base = endpoints.api_base if web_base == endpoints.web_base else f"{web_base}/v1"
        client_secret, token = self.credly_auth(section)
        self.expiry_of_token(section, token)
        if org_id is None or (client_secret is None and token is None):
            return None
        return CredlySettings(
            org_id=org_id,
            environment=environment,
            web_base=web_base,
            api_base=api_base,
            client_id=section.client_id if client_secret else None,
            client_secret=client_secret,
            authorization_token=token,
            authorization_token_created=section.authorization_token_created,
        )

    def credly_web(
        self, parts: SplitResult, raw_url: str, environment: CredlyEnvironment, env_given: bool
    ) -> tuple[str | None, CredlyEnvironment]:
        host = (parts.hostname or "").lower()
        host = CREDLY_WEB_ALIASES.get(host, host)
        path = self.path("credly", "base_url")
        web_hosts = {host_of(e.web_base): e for e in CREDLY_ENVIRONMENTS.values()}
        if host in CREDLY_API_HOSTS:
            self.add(
                error(
                    "CFG014",
                    path,
                    f"{host} is Credly's API host; base_url is the web host, where the OAuth "
                    f"token endpoint lives ({CREDLY_API_HOSTS[host]}).",
                    f'Set base_url = "https://{CREDLY_API_HOSTS[host]}" (or remove it and set '
                    "environment).",
                )
            )
        elif host in CREDLY_LEGACY_HOSTS:
            self.add(legacy_host(path, host))
        elif host in web_hosts:
            found = web_hosts[host]
            if env_given and found.environment != environment:
                self.add(mixed(path, host, found.environment, environment))
            else:
                return found.web_base, found.environment
        elif self.custom("credly", "base_url", host, "Credly"):
            return raw_url.strip().rstrip("/"), environment
        return None, environment

    def credly_api(
        self, section: m.CredlySection, environment: CredlyEnvironment, web_base: str | None
    ) -> str | None:
        if not section.api_url:
            return None
        parts = self.url("credly", "api_url", section.api_url)
        if not parts or not parts.hostname:
            return None
        host = parts.hostname.lower()
        path = self.path("credly", "api_url")
        api_hosts = {host_of(e.api_base): e for e in CREDLY_ENVIRONMENTS.values()}
        web_hosts = {host_of(e.web_base) for e in CREDLY_ENVIRONMENTS.values()}
        if host in api_hosts:
            found = api_hosts[host]
            if found.environment != environment:
                self.add(mixed(path, host, found.environment, environment))
                return None
            return found.api_base
        if host in web_hosts or host in CREDLY_WEB_ALIASES:
            self.add(
                error(
                    "CFG003",
                    path,
                    f"{host} is Credly's web host; the REST API lives at "
                    f"{CREDLY_ENVIRONMENTS[environment].api_base}.",
                    "Remove api_url: it is derived from the environment.",
                )
            )
            return None
        if host in CREDLY_LEGACY_HOSTS:
            self.add(legacy_host(path, host))
            return None
        if self.custom("credly", "api_url", host, "Credly API"):
            return section.api_url.strip().rstrip("/")
        return None

    def credly_auth(self, section: m.CredlySection) -> tuple[Secret | None, Secret | None]:
        has_oauth = section.client_id is not None or section.client_secret is not None
        has_token = section.authorization_token is not None
        auth = section.auth
        if auth is None and has_oauth and has_token:
            self.add(
                error(
                    "CFG023",
                    self.path("credly", "auth"),
                    "Both an OAuth client and an authorization token are set for Credly.",
                    'Set auth = "oauth" or auth = "token" (OAuth is what Microsoft\'s connector '
                    "uses), or remove one of them.",
                )
            )
            return None, None
        if auth is None:
            auth = "token" if has_token else "oauth"
        if auth == "token":
            if has_oauth:
                self.add(ignored("credly", "client_id/client_secret", 'auth = "token"', self))
            token = self.secret("credly", "authorization_token", section.authorization_token)
            if section.authorization_token is None:
                self.add(
                    missing(
                        self.path("credly", "authorization_token"),
                        "The Credly authorization token is missing.",
                        'Add authorization_token = { env = "VARIABLE" }.',
                    )
                )
            return None, token
        if has_token:
            self.add(ignored("credly", "authorization_token", 'auth = "oauth"', self))
        if not has_oauth:
            self.add(
                missing(
                    self.path("credly", "client_id"),
                    "No Credly credentials: set an OAuth client (client_id + client_secret) or "
                    "an authorization_token.",
                    "Create an OAuth application in Credly under Developers > OAuth "
                    'Applications, then add client_id = "..." and client_secret = '
                    '{ env = "VARIABLE" }.',
                )
            )
            return None, None
        if not section.client_id:
            self.add(
                missing(
                    self.path("credly", "client_id"),
                    "The Credly OAuth client_id is missing.",
                    "Copy it from Credly (Developers > OAuth Applications).",
                )
            )
        secret = self.secret("credly", "client_secret", section.client_secret)
        if section.client_secret is None:
            self.add(
                missing(
                    self.path("credly", "client_secret"),
                    "The Credly OAuth client_secret is missing.",
                    'Add client_secret = { env = "VARIABLE" }; if it was not saved when the '
                    "application was created, create a new OAuth application.",
                )
            )
        return (secret if section.client_id else None), None

    def expiry_of_token(self, section: m.CredlySection, token: Secret | None) -> None:
        created = section.authorization_token_created
        if token is None or created is None:
            return
        self.expiry(
            self.path("credly", "authorization_token_created"),
            "The Credly authorization token",
            created + AUTHORIZATION_TOKEN_LIFETIME,
            "Create a new authorization token in Credly and update authorization_token and "
            "authorization_token_created.",
        )

    def expiry(self, path: str, what: str, expires: date, hint: str) -> None:
        today = self.ctx.today
        if expires < today:
            self.add(error("CFG029", path, f"{what} expired on {expires.isoformat()}.", hint))
        elif expires - today <= EXPIRY_WARNING:
            self.add(warning("CFG029", path, f"{what} expires on {expires.isoformat()}.", hint))

    def entra(self) -> EntraSettings | None:
        section = self.section("entra", m.EntraSection)
        tenant = self.tenant_id(section.tenant_id)
        client_id = self.app_id(section.client_id)
        secret = self.secret("entra", "client_secret", section.client_secret)
        certificate = self.certificate(section)
        password = self.secret("entra", "certificate_password", section.certificate_password)
        if section.client_secret is not None and section.certificate_path is not None:
            self.add(
                error(
                    "CFG023",
                    self.path("entra", "client_secret"),
                    "Both a client secret and a certificate are set for the Entra app.",
                    "Keep one: a certificate is the stronger choice.",
                )
            )
        elif section.client_secret is None and section.certificate_path is None:
            self.add(
                missing(
                    self.path("entra", "client_secret"),
                    "The Entra app has no credential (client_secret or certificate_path).",
                    'Add client_secret = { env = "VARIABLE" } or certificate_path = '
                    '"/path/app.pem".',
                )
            )
        if section.certificate_password is not None and section.certificate_path is None:
            self.add(ignored("entra", "certificate_password", "no certificate_path", self))
        if secret is not None and section.client_secret_expires is not None:
            self.expiry(
                self.path("entra", "client_secret_expires"),
                "The Entra client secret",
                section.client_secret_expires,
                "Add a new client secret to the app registration in Entra ID and update "
                "client_secret and client_secret_expires.",
            )
        cloud = CLOUDS[section.cloud]
        login_base = self.login_base(section, cloud.login_base)
        graph_base = self.graph_base(section.cloud, cloud.graph_base)
        if not tenant or not client_id or (secret is None and certificate is None):
            return None
        return EntraSettings(
            tenant_id=tenant,
            client_id=client_id,
            cloud=section.cloud,
            login_base=login_base,
            graph_base=graph_base,
            client_secret=secret,
            client_secret_expires=section.client_secret_expires,
            certificate_path=certificate,
            certificate_password=password if certificate else None,
        )

    def tenant_id(self, value: str | None) -> str | None:
        path = self.path("entra", "tenant_id")
        if not value:
            self.add(
                missing(
                    path,
                    "The Entra tenant ID is missing.",
                    "Copy the Directory (tenant) ID from the Entra admin center > Overview.",
                )
            )
            return None
        check = check_org_id(value)
        if check.ok:
            return check.canonical
        if value.lower() in {"common", "organizations", "consumers"}:
            self.add(
                error(
                    "CFG024",
                    path,
                    f"'{value}' is not a tenant: an app-only token needs the tenant itself.",
                    "Use the Directory (tenant) ID GUID or the tenant's domain name.",
                )
            )
            return None
        if _DOMAIN_RE.match(value):
            return value.lower()
        self.add(
            error(
                "CFG024",
                path,
                f"The tenant ID is neither a GUID nor a domain name: {check.message}",
                check.hint
                if check.suggestion
                else "Copy the Directory (tenant) ID from the Entra admin center > Overview.",
            )
        )
        return None

    def app_id(self, value: str | None) -> str | None:
        path = self.path("entra", "client_id")
        if not value:
            self.add(
                missing(
                    path,
                    "The Entra application (client) ID is missing.",
                    "Copy the Application (client) ID from the app registration's Overview.",
                )
            )
            return None
        check = check_org_id(value)
        if check.ok:
            return check.canonical
        self.add(
            error(
                "CFG024",
                path,
                f"The application (client) ID is not a GUID: {check.message}",
                check.hint
                if check.suggestion
                else "Copy the Application (client) ID from the app registration's Overview page.",
            )
        )
        return None

    def certificate(self, section: m.EntraSection) -> Path | None:
        if section.certificate_path is None:
            return None
        file = self.file_path(section.certificate_path)
        if not file.is_file():
            self.add(
                error(
                    "CFG020",
                    self.path("entra", "certificate_path"),
                    f"The certificate file {file} does not exist.",
                    "Point certificate_path at the PEM file holding the private key and the "
                    "certificate.",
                )
            )
            return None
        return file

    def login_base(self, section: m.EntraSection, default: str) -> str:
        if not section.authority_url:
            return default
        parts = self.url("entra", "authority_url", section.authority_url)
        if not parts or not parts.hostname:
            return default
        host = parts.hostname.lower()
        if host == host_of(default):
            return default
        owner = _cloud_owning(host, login=True)
        if owner:
            self.add(mixed(self.path("entra", "authority_url"), host, owner, section.cloud))
        elif self.custom("entra", "authority_url", host, "Microsoft sign-in"):
            base = section.authority_url.strip().rstrip("/")
            tenant = (section.tenant_id or "").lower()
            if tenant and base.lower().endswith(f"/{tenant}"):
                base = base[: -len(tenant) - 1]  # admins often paste the full authority
            return base
        return default

    def graph_base(self, cloud: Cloud, default: str) -> str:
        section = self.section("graph", m.GraphSection)
        if not section.base_url:
            return default
        parts = self.url("graph", "base_url", section.base_url)
        if not parts or not parts.hostname:
            return default
        host = parts.hostname.lower()
        if host == host_of(default):
            return default
        owner = _cloud_owning(host, login=False)
        if owner:
            self.add(mixed(self.path("graph", "base_url"), host, owner, cloud))
        elif self.custom("graph", "base_url", host, "Microsoft Graph"):
            base = section.base_url.strip().rstrip("/")
            for suffix in ("/v1.0", "/beta"):
                base = base.removesuffix(suffix)
            return base
        return default

    def graph(self) -> GraphSettings:
        section = self.section("graph", m.GraphSection)
        path = self.path("graph", "connection_id")
        problems = connection_id_problems(section.connection_id)
        if problems:
            self.add(
                error(
                    "CFG009",
                    path,
                    f"Graph rejects the connection id {section.connection_id!r}: "
                    f"{'; '.join(problems)}.",
                    "Use 3-32 letters and digits, not starting with 'Microsoft' and not a "
                    'reserved name, e.g. "credlybadges".',
                )
            )
        name = section.connection_name
        if not name.strip() or len(name) > 128:
            self.add(
                error(
                    "CFG003",
                    self.path("graph", "connection_name"),
                    f"The connection name must have 1-128 characters (it has {len(name)}).",
                    'e.g. connection_name = "Credly badges"',
                )
            )
        return GraphSettings(
            section.connection_id, section.connection_name, section.connection_description
        )

    def sync(self) -> SyncSettings:
        from credly_connector.config.files import default_state_root

        section = self.section("sync", m.SyncSection)
        if section.full_interval_days < section.incremental_interval_days:
            self.add(
                warning(
                    "CFG028",
                    self.path("sync", "full_interval_days"),
                    f"The full crawl interval ({section.full_interval_days:g} days) is "
                    f"shorter than the incremental one ({section.incremental_interval_days:g} "
                    "days), so incremental crawls never run.",
                    "Microsoft's defaults: incremental every 1 day, full every 7 days.",
                )
            )
        opt_out: set[str] = set()
        for index, email in enumerate(section.opt_out):
            if "@" not in email:
                self.add(
                    error(
                        "CFG003",
                        f"{self.path('sync', 'opt_out')}[{index}]",
                        f"{email!r} is not an email address.",
                        "List the email addresses whose badges must never be indexed.",
                    )
                )
            opt_out.add(email.strip().lower())
        state_dir = (
            self.file_path(section.state_dir)
            if section.state_dir is not None
            else default_state_root() / self.raw.name
        )
        return SyncSettings(
            incremental_interval_days=section.incremental_interval_days,
            full_interval_days=section.full_interval_days,
            state_dir=state_dir,
            max_write_rate=section.max_write_rate,
            write_concurrency=section.write_concurrency,
            credly_page_concurrency=section.credly_page_concurrency,
            opt_out=frozenset(opt_out),
        )

    def network(
        self,
        section: m.NetworkSection,
        credly: CredlySettings | None,
        entra: EntraSettings | None,
    ) -> NetworkSettings | None:
        ca_bundle = None
        if section.ca_bundle is not None:
            ca_bundle = self.file_path(section.ca_bundle)
            if not ca_bundle.is_file():
                self.add(
                    error(
                        "CFG020",
                        self.path("network", "ca_bundle"),
                        f"The CA bundle {ca_bundle} does not exist.",
                        "Point ca_bundle at a PEM file with your organization's root "
                        "certificates, or remove it to use the system's.",
                    )
                )
        proxy, proxy_origin = section.proxy, "network.proxy"
        if proxy is None:
            for name in ("HTTPS_PROXY", "https_proxy"):
                if self.ctx.environ.get(name):
                    proxy, proxy_origin = self.ctx.environ[name], f"env:{name}"
                    break
        if proxy:
            self.check_proxy(proxy, proxy_origin)
        no_proxy = section.no_proxy
        if no_proxy is None:
            no_proxy = self.ctx.environ.get("NO_PROXY") or self.ctx.environ.get("no_proxy")
        if section.allow_custom_hosts:
            used = ", ".join(sorted(self.custom_hosts)) or "none yet"
            self.add(
                warning(
                    "CFG019",
                    self.path("network", "allow_custom_hosts"),
                    "allow_custom_hosts is on: credentials may go to hosts that are not "
                    f"Credly's or Microsoft's (custom hosts in use: {used}).",
                    "Use it only for the simulator or a test double; remove it for a real tenant.",
                )
            )
        if credly is None or entra is None:
            return None
        return NetworkSettings(
            ca_bundle=ca_bundle,
            proxy=proxy or None,
            no_proxy=no_proxy or None,
            allow_custom_hosts=section.allow_custom_hosts,
            timeout_seconds=section.timeout_seconds,
            credly_hosts=frozenset({host_of(credly.web_base), host_of(credly.api_base)}),
            microsoft_hosts=frozenset({host_of(entra.login_base), host_of(entra.graph_base)}),
            custom_hosts=frozenset(self.custom_hosts),
        )

    def check_proxy(self, proxy: str, origin: str) -> None:
        path = self.path("network", "proxy") if origin == "network.proxy" else origin
        try:
            parts = urlsplit(proxy.strip())
            _ = parts.port
        except ValueError:
            parts = None
        if parts is not None and parts.password:
            register_secret_value(parts.password)  # never echo a proxy password
        if parts is None or parts.scheme.lower() not in _PROXY_SCHEMES or not parts.hostname:
            self.add(
                error(
                    "CFG031",
                    path,
                    "The proxy is not a URL such as http://proxy.example.com:8080.",
                    "Write scheme://host:port (http, https, socks5).",
                )
            )


def _cloud_owning(host: str, *, login: bool) -> str:
    for cloud, endpoints in CLOUDS.items():
        if host == host_of(endpoints.login_base if login else endpoints.graph_base):
            return str(cloud)
    if host in (_CHINA_LOGIN_HOSTS if login else _CHINA_GRAPH_HOSTS):
        return "china"
    return ""


def connection_id_problems(connection_id: str) -> list[str]:
    """Graph's rules for an external connection id (microsoft-graph.md §2.1)."""
    problems = []
    if not 3 <= len(connection_id) <= 32:
        problems.append(f"it has {len(connection_id)} characters, Graph allows 3 to 32")
    bad = sorted({c for c in connection_id if not (c.isascii() and c.isalnum())})
    if bad:
        problems.append(f"only letters and digits are allowed, not {' '.join(map(repr, bad))}")
    if connection_id.lower().startswith("microsoft"):
        problems.append("it must not start with 'Microsoft'")
    if connection_id.lower() in GRAPH_RESERVED_IDS:
        problems.append("it is a name Microsoft reserves")
    return problems


def several_org_ids(path: str, count: int) -> Finding:
    return error(
        "CFG007",
        path,
        f"This instance lists {count} Organization IDs; a connector instance serves exactly "
        "one Credly organization, as Microsoft's connector does.",
        "Create one instance per organization ([instances.<name>] each with its own org_id).",
    )


def legacy_host(path: str, host: str) -> Finding:
    return error(
        "CFG025",
        path,
        f"{host} is the retired Acclaim host.",
        f"Use https://{CREDLY_LEGACY_HOSTS[host]} (base_url) or remove the key and set "
        "environment.",
    )


def mixed(path: str, host: str, belongs_to: str, configured: str) -> Finding:
    return error(
        "CFG015",
        path,
        f"{host} belongs to {belongs_to}, but this instance is configured for {configured}; "
        "credentials of one environment never work in the other.",
        f"Use the {configured} host (remove the URL to derive it), or change the environment "
        "or cloud setting.",
    )


def missing(path: str, message: str, hint: str) -> Finding:
    return error("CFG004", path, message, hint)


def ignored(section: str, keys: str, because: str, resolver: _Resolver) -> Finding:
    return warning(
        "CFG023",
        f"{resolver.base}.{section}",
        f"{keys} is set but ignored because of {because}.",
        "Remove what is not used, so nobody rotates the wrong credential.",
    )


def any_error(findings: list[Finding]) -> bool:
    return any(f.severity == Severity.ERROR for f in findings)
