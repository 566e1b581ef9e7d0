"""Settings of one connector instance after precedence, secret resolution and URL derivation.

This is what the core (clients, sync, diagnostics) receives; it never sees raw TOML.
Built by `credly_connector.config.load.load_instance`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from credly_connector.endpoints import Cloud, CredlyEnvironment
from credly_connector.secrets import Secret


@dataclass(frozen=True)
class CredlySettings:
    org_id: str  # canonical lower-case GUID
    environment: CredlyEnvironment
    web_base: str  # e.g. https://www.credly.com (token endpoint lives here)
    api_base: str  # e.g. https://api.credly.com/v1
    client_id: str | None = None
    client_secret: Secret | None = None
    authorization_token: Secret | None = None
    authorization_token_created: date | None = None

    @property
    def token_url(self) -> str:
        return f"{self.web_base}/oauth/token"

    @property
    def uses_oauth(self) -> bool:
        return self.authorization_token is None


@dataclass(frozen=True)
class EntraSettings:
    tenant_id: str
    client_id: str
    cloud: Cloud
    login_base: str  # e.g. https://login.microsoftonline.com
    graph_base: str  # e.g. https://graph.microsoft.com (no /v1.0)
    client_secret: Secret | None = None
    client_secret_expires: date | None = None
    certificate_path: Path | None = None
    certificate_password: Secret | None = None
    # No stored secret: a token file written by the workload's identity provider (a CI job,
    # Kubernetes), or the managed identity of the Azure host (system- or user-assigned).
    federated_token_file: Path | None = None
    managed_identity: bool = False
    managed_identity_client_id: str | None = None

    @property
    def credential_kind(self) -> str:
        """client_secret, certificate, federated_token or managed_identity (entra.auth)."""
        if self.managed_identity:
            return "managed_identity"
        if self.federated_token_file is not None:
            return "federated_token"
        if self.certificate_path is not None:
            return "certificate"
        return "client_secret"

    @property
    def authority(self) -> str:
        return f"{self.login_base}/{self.tenant_id}"

    @property
    def graph_scope(self) -> str:
        return f"{self.graph_base}/.default"


@dataclass(frozen=True)
class GraphSettings:
    connection_id: str
    connection_name: str
    connection_description: str


@dataclass(frozen=True)
class SyncSettings:
    incremental_interval_days: float
    full_interval_days: float
    state_dir: Path
    max_write_rate: float | None  # a ceiling; None: find the rate Graph allows
    write_concurrency: int
    credly_page_concurrency: int
    opt_out: frozenset[str]  # lower-cased emails
    max_deletes: int = 500  # accidental-delete guard; 0 means no limit


@dataclass(frozen=True)
class NetworkSettings:
    ca_bundle: Path | None
    proxy: str | None  # network.proxy: explicit, then the environment's proxies are ignored
    no_proxy: str | None  # with `proxy` only; NO_PROXY syntax, read by httpx
    allow_custom_hosts: bool
    timeout_seconds: float
    # Every host a credential may be sent to, per service; anything else is refused.
    credly_hosts: frozenset[str] = field(default_factory=frozenset)
    microsoft_hosts: frozenset[str] = field(default_factory=frozenset)
    custom_hosts: frozenset[str] = field(default_factory=frozenset)  # subset, flagged as warning
    # Without `proxy`: the environment's proxy (HTTPS_PROXY...), for display; httpx reads the
    # environment itself, NO_PROXY included.
    environment_proxy: str | None = None


@dataclass(frozen=True)
class InstanceSettings:
    name: str
    credly: CredlySettings
    entra: EntraSettings
    graph: GraphSettings
    sync: SyncSettings
    network: NetworkSettings
    config_path: Path | None = None
    # Configuration warnings (validate-config lines, e.g. the custom-host opt-in); commands
    # print them on stderr so an admin sees them on every run.
    warnings: tuple[str, ...] = ()

    @property
    def graph_v1(self) -> str:
        return f"{self.entra.graph_base}/v1.0"
