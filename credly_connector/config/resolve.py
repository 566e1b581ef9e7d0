"""One instance from raw values to `InstanceSettings`, collecting every finding on the way.

`load_instance` stops at the first error; `validate-config` shows them all. Both use this one
code path, so what validate-config accepts is exactly what the other commands accept. The
Credly, Microsoft and secret parts live in resolve_credly, resolve_entra and resolve_secrets.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from credly_connector.config import model as m
from credly_connector.config.findings import Finding, Severity, error, warning
from credly_connector.config.raw import RawInstance
from credly_connector.config.resolve_base import Context, any_error, missing
from credly_connector.config.resolve_credly import CredlyMixin
from credly_connector.config.resolve_entra import EntraMixin
from credly_connector.config.resolved import (
    CredlySettings,
    EntraSettings,
    GraphSettings,
    InstanceSettings,
    NetworkSettings,
    SyncSettings,
)
from credly_connector.endpoints import (
    UNSUPPORTED_CLOUDS,
    host_of,
)
from credly_connector.orgid import check_org_id
from credly_connector.secrets import register_secret_value

GRAPH_RESERVED_IDS = frozenset(
    name.lower()
    for name in (
        "None", "Directory", "Exchange", "ExchangeArchive", "LinkedIn", "Mailbox",
        "OneDriveBusiness", "SharePoint", "Teams", "Yammer", "Connectors", "TaskFabric",
        "PowerBI", "Assistant", "TopicEngine", "MSFT_All_Connectors",
    )
)  # fmt: skip
INSTANCE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# What httpx can use (SOCKS through its `socks` extra, a dependency): no SOCKS4.
_PROXY_SCHEMES = frozenset({"http", "https", "socks5", "socks5h"})

__all__ = ["INSTANCE_NAME_RE", "Context", "connection_id_problems", "resolve_instance"]


def resolve_instance(
    raw: RawInstance, ctx: Context
) -> tuple[InstanceSettings | None, list[Finding]]:
    resolver = _Resolver(raw, ctx)
    settings = resolver.run()
    return settings, resolver.findings


class _Resolver(CredlyMixin, EntraMixin):
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
            max_deletes=section.max_deletes,
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
            elif (problem := _unusable_ca_bundle(ca_bundle)) is not None:
                self.add(
                    error(
                        "CFG020",
                        self.path("network", "ca_bundle"),
                        f"The CA bundle {ca_bundle} cannot be used: {problem}.",
                        "Point ca_bundle at a PEM file with your organization's root "
                        "certificates, or remove it to use the system's.",
                    )
                )
        # network.proxy is explicit and then the only proxy; without it the proxy variables
        # of the environment apply, read by httpx (checked here so a bad one fails early).
        proxy = section.proxy
        environment_proxy = None
        if proxy is not None:
            self.check_proxy(proxy, "network.proxy")
        else:
            for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
                if self.ctx.environ.get(name):
                    environment_proxy = self.ctx.environ[name]
                    self.check_proxy(environment_proxy, f"env:{name}")
                    break
        no_proxy = section.no_proxy
        if no_proxy is not None and proxy is None:
            self.add(
                warning(
                    "CFG023",
                    self.path("network", "no_proxy"),
                    "no_proxy is set but ignored because network.proxy is not set (the "
                    "environment's NO_PROXY goes with the environment's HTTPS_PROXY).",
                    "Set network.proxy too, or put the hosts in NO_PROXY.",
                )
            )
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
            no_proxy=(no_proxy or None) if proxy else None,
            allow_custom_hosts=section.allow_custom_hosts,
            timeout_seconds=section.timeout_seconds,
            credly_hosts=frozenset({host_of(credly.web_base), host_of(credly.api_base)}),
            microsoft_hosts=frozenset({host_of(entra.login_base), host_of(entra.graph_base)}),
            custom_hosts=frozenset(self.custom_hosts),
            environment_proxy=environment_proxy,
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
        if parts is None or not parts.hostname or not parts.scheme:
            self.add(
                error(
                    "CFG031",
                    path,
                    "The proxy is not a URL such as http://proxy.example.com:8080.",
                    "Write scheme://host:port (http, https, socks5, socks5h).",
                )
            )
        elif parts.scheme.lower() not in _PROXY_SCHEMES:
            self.add(
                error(
                    "CFG031",
                    path,
                    f"{parts.scheme}:// proxies are not supported.",
                    "Use an http, https, socks5 or socks5h proxy (socks5h resolves names on "
                    "the proxy).",
                )
            )


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


def _unusable_ca_bundle(path: Path) -> str | None:
    """Why TLS could not load `path` as CA certificates, or None when it can (hardening L2:
    a file of random bytes passed validate-config and failed every later command)."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
    except ssl.SSLError:
        return "it holds no PEM certificate"
    except (OSError, ValueError) as exc:
        return getattr(exc, "strerror", None) or type(exc).__name__
    return None
