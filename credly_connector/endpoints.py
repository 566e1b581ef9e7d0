"""Known service hosts: the only places credentials may be sent (see docs/security.md).

Facts from ../shared/reference/credly-api.md (Credly) and microsoft-graph.md / entra-msal.md
(Microsoft clouds). The sandbox token URL is inferred, not documented by Credly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CredlyEnvironment(StrEnum):
    PRODUCTION = "production"
    SANDBOX = "sandbox"


@dataclass(frozen=True)
class CredlyEndpoints:
    environment: CredlyEnvironment
    web_base: str  # where the OAuth token endpoint and the web app live
    api_base: str  # REST API root, ends in /v1

    @property
    def token_url(self) -> str:
        return f"{self.web_base}/oauth/token"

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset({_host(self.web_base), _host(self.api_base)})


CREDLY_ENVIRONMENTS: dict[CredlyEnvironment, CredlyEndpoints] = {
    CredlyEnvironment.PRODUCTION: CredlyEndpoints(
        CredlyEnvironment.PRODUCTION, "https://www.credly.com", "https://api.credly.com/v1"
    ),
    # [INFERRED] the sandbox token endpoint sits on the sandbox web host, as in production.
    CredlyEnvironment.SANDBOX: CredlyEndpoints(
        CredlyEnvironment.SANDBOX, "https://sandbox.credly.com", "https://sandbox-api.credly.com/v1"
    ),
}

# Hosts an admin may paste that are not the web host; used to give exact corrections.
CREDLY_API_HOSTS = {
    "api.credly.com": "www.credly.com",
    "sandbox-api.credly.com": "sandbox.credly.com",
}
CREDLY_LEGACY_HOSTS = {
    "api.youracclaim.com": "www.credly.com",
    "youracclaim.com": "www.credly.com",
    "www.youracclaim.com": "www.credly.com",
    "sandbox.youracclaim.com": "sandbox.credly.com",
    "sandbox-api.youracclaim.com": "sandbox.credly.com",
}
CREDLY_WEB_ALIASES = {"credly.com": "www.credly.com"}


class Cloud(StrEnum):
    GLOBAL = "global"
    USGOV = "usgov"  # US Government L4 (GCC High)
    USGOVDOD = "usgovdod"  # US Government L5 (DoD)


@dataclass(frozen=True)
class CloudEndpoints:
    cloud: Cloud
    login_base: str
    graph_base: str  # without /v1.0

    @property
    def graph_scope(self) -> str:
        return f"{self.graph_base}/.default"

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset({_host(self.login_base), _host(self.graph_base)})


CLOUDS: dict[Cloud, CloudEndpoints] = {
    Cloud.GLOBAL: CloudEndpoints(
        Cloud.GLOBAL, "https://login.microsoftonline.com", "https://graph.microsoft.com"
    ),
    Cloud.USGOV: CloudEndpoints(
        Cloud.USGOV, "https://login.microsoftonline.us", "https://graph.microsoft.us"
    ),
    Cloud.USGOVDOD: CloudEndpoints(
        Cloud.USGOVDOD, "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"
    ),
}

# Offered by Microsoft but not by credlyctl: Graph external connections do not exist there.
UNSUPPORTED_CLOUDS = {
    "china": "Microsoft Graph external connections are not available in Azure China (21Vianet)",
    "21vianet": "Microsoft Graph external connections are not available in Azure China (21Vianet)",
}


# Offered by credlyctl for identity checks, but without people-data connections: the US
# Government clouds' Graph v1.0 metadata (msgraph-metadata schemas/v1.0-Fairfax.csdl) has no
# externalConnection.contentCategory and no person* labels, and Microsoft documents creating
# profile sources for the global service only.
_NO_PEOPLE_DATA = (
    "the US Government Microsoft Graph has no people-data connections: its metadata has no "
    "contentCategory and no person labels, and Microsoft documents profile sources for the "
    "global service only"
)
PEOPLE_DATA_UNAVAILABLE: dict[Cloud, str] = {
    Cloud.USGOV: _NO_PEOPLE_DATA,
    Cloud.USGOVDOD: _NO_PEOPLE_DATA,
}


def people_data_unavailable(cloud: Cloud | str) -> str | None:
    """Why Microsoft 365 people data cannot be written in this cloud, or None."""
    try:
        return PEOPLE_DATA_UNAVAILABLE.get(Cloud(cloud))
    except ValueError:
        return None


def _host(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].split(":", 1)[0].lower()


def host_of(url: str) -> str:
    """The lower-cased host name of an absolute URL (no port)."""
    return _host(url)
