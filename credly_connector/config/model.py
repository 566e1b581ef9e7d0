"""The configuration file's shape (pydantic) and the resolved settings the core works with.

File layout (see docs/configuration.md)::

    [instances.contoso.credly]      org_id, environment, base_url, auth, client_id, ...
    [instances.contoso.entra]       tenant_id, client_id, client_secret | certificate_path, cloud
    [instances.contoso.graph]       connection_id, connection_name, base_url
    [instances.contoso.sync]        incremental_interval_days, full_interval_days, state_dir, ...
    [instances.contoso.network]     ca_bundle, proxy, allow_custom_hosts

A secret is either an inline string (allowed, warned about) or a reference table
`{ env = "NAME" }` / `{ file = "path" }`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from credly_connector.endpoints import Cloud, CredlyEnvironment


def _no_nul(value: Path) -> Path:
    # The OS cannot open such a path: say so here rather than crash where it is opened.
    if "\x00" in str(value):
        raise ValueError("a path cannot contain a NUL byte")
    return value


FilePath = Annotated[Path, AfterValidator(_no_nul)]

# Finite and bounded: `inf` or 1e308 days passed validation and overflowed date arithmetic
# later (hardening L2). Ten years between crawls, an hour per request, are far beyond use.
MAX_INTERVAL_DAYS = 3650.0
MAX_TIMEOUT_SECONDS = 3600.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """Where a secret comes from. Exactly one of the three is set."""

    env: str | None = None
    file: FilePath | None = None
    value: str | None = Field(default=None, repr=False)  # inline; warned about


class CredlySection(_Strict):
    org_id: str | None = None
    environment: CredlyEnvironment = CredlyEnvironment.PRODUCTION
    base_url: str | None = None  # the web host an admin pasted, e.g. https://www.credly.com
    api_url: str | None = None  # only with allow_custom_hosts (simulator, test doubles)
    auth: Literal["oauth", "token"] | None = None  # derived from what is set when omitted
    client_id: str | None = None
    client_secret: SecretRef | None = None
    authorization_token: SecretRef | None = None
    authorization_token_created: date | None = None  # tokens expire after 180 days


EntraAuth = Literal["client_secret", "certificate", "federated_token", "managed_identity"]


class EntraSection(_Strict):
    tenant_id: str | None = None
    client_id: str | None = None
    auth: EntraAuth | None = None  # derived from what is set when omitted
    client_secret: SecretRef | None = None
    client_secret_expires: date | None = None  # recorded by the admin, for expiry warnings
    certificate_path: FilePath | None = None  # PEM holding the private key and the certificate
    certificate_password: SecretRef | None = None
    # Workload identity federation: a token file the identity provider writes (a CI job,
    # Kubernetes); $AZURE_FEDERATED_TOKEN_FILE when auth = "federated_token" and this is unset.
    federated_token_file: FilePath | None = None
    # Managed identity: the client id of a user-assigned identity; unset = system-assigned.
    managed_identity_client_id: str | None = None
    cloud: Cloud = Cloud.GLOBAL
    authority_url: str | None = None  # only with allow_custom_hosts


class GraphSection(_Strict):
    connection_id: str = "credlybadges"
    connection_name: str = "Credly badges"
    connection_description: str = "Awards and certifications from Credly"
    base_url: str | None = None  # only with allow_custom_hosts


class SyncSection(_Strict):
    incremental_interval_days: float = Field(
        default=1, gt=0, le=MAX_INTERVAL_DAYS, allow_inf_nan=False
    )
    full_interval_days: float = Field(default=7, gt=0, le=MAX_INTERVAL_DAYS, allow_inf_nan=False)
    state_dir: FilePath | None = None
    # A ceiling in items per second per connection; unset, the writer finds what Graph allows.
    max_write_rate: float | None = Field(default=None, gt=0)
    # $batch requests in flight at once; their entries share Graph's 25 concurrent operations.
    write_concurrency: int = Field(default=2, ge=1, le=16)
    credly_page_concurrency: int = Field(default=8, ge=1, le=8)
    opt_out: tuple[str, ...] = ()  # emails whose badges are never indexed
    # More planned deletions than this and a crawl holds every deletion back; 0: no limit.
    max_deletes: int = Field(default=500, ge=0)


class NetworkSection(_Strict):
    ca_bundle: FilePath | None = None
    proxy: str | None = None
    no_proxy: str | None = None
    allow_custom_hosts: bool = False
    timeout_seconds: float = Field(default=30, gt=0, le=MAX_TIMEOUT_SECONDS, allow_inf_nan=False)


class InstanceConfig(_Strict):
    credly: CredlySection = CredlySection()
    entra: EntraSection = EntraSection()
    graph: GraphSection = GraphSection()
    sync: SyncSection = SyncSection()
    network: NetworkSection = NetworkSection()


class ConfigFile(_Strict):
    default_instance: str | None = None
    instances: dict[str, InstanceConfig] = Field(default_factory=dict)
