"""Credentials without a stored secret: a federated token file, a managed identity endpoint.

Both are resolved here (validate-config reports their problems) and used by graph/auth.py.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from credly_connector.errors import ConfigError
from credly_connector.secrets import register_secret_value

# Where Azure's managed identity endpoints live: IMDS (link-local, plain http by design) and
# the per-host endpoints App Service, Functions, Container Apps and Arc name in
# IDENTITY_ENDPOINT (always on the local machine).
IMDS_ORIGIN = "http://169.254.169.254:80"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


@dataclass(frozen=True)
class FederatedTokenFile:
    """The file a workload's identity provider (a CI job, Kubernetes) keeps a token in.

    Read again at each sign-in: Kubernetes rotates the file, and a CI token is short-lived.
    """

    path: Path

    def __call__(self) -> str:
        return self.read()

    def read(self) -> str:
        try:
            text = self.path.read_text(encoding="utf-8-sig").strip()
        except FileNotFoundError:
            raise self._problem("does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise self._problem(f"cannot be read ({reason})") from None
        if not text:
            raise self._problem("is empty")
        register_secret_value(text)
        if text.count(".") != 2:
            raise self._problem("does not hold a JWT (three dot-separated parts)")
        return text

    def _problem(self, what: str) -> ConfigError:
        return ConfigError(
            f"the federated token file {self.path} {what}",
            "The job that runs credlyctl must write its identity provider's token there first "
            "(GitHub Actions: request an OIDC token for the audience api://AzureADTokenExchange; "
            "Kubernetes workload identity: AZURE_FEDERATED_TOKEN_FILE is set by the webhook).",
            error_id="entra.federated_token_file",
        )


@dataclass(frozen=True)
class ManagedIdentityEndpoint:
    """Where msal will ask for a managed identity token, as msal itself chooses it."""

    source: str  # "app_service", "imds", "service_fabric", "machine_learning", "arc"
    url: str
    secret_header: str | None  # IDENTITY_HEADER: a per-host secret sent to the endpoint

    @property
    def origin(self) -> str:
        """scheme://host:port, the default port written out (as net.transport writes it)."""
        parts = urlsplit(self.url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        if ":" in host:
            host = f"[{host}]"
        port = parts.port or {"https": 443, "http": 80}.get(scheme)
        return f"{scheme}://{host}:{port}"


def managed_identity_endpoint(environ: Mapping[str, str] | None = None) -> ManagedIdentityEndpoint:
    """The endpoint msal's ManagedIdentityClient picks from the environment (msal 1.39 order).

    Raises ConfigError for the sources credlyctl cannot check or that are not on this machine.
    """
    env = os.environ if environ is None else environ
    endpoint = env.get("IDENTITY_ENDPOINT")
    if endpoint and env.get("IDENTITY_HEADER") and env.get("IDENTITY_SERVER_THUMBPRINT"):
        raise _unsupported("Service Fabric")
    if endpoint and env.get("IDENTITY_HEADER"):
        found = ManagedIdentityEndpoint("app_service", endpoint, env["IDENTITY_HEADER"])
    elif env.get("MSI_ENDPOINT") and env.get("MSI_SECRET"):
        raise _unsupported("Azure Machine Learning")
    elif endpoint and env.get("IMDS_ENDPOINT"):
        found = ManagedIdentityEndpoint("arc", endpoint, None)
    else:
        host = env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://169.254.169.254")
        found = ManagedIdentityEndpoint(
            "imds", host.strip().strip("/") + "/metadata/identity/oauth2/token", None
        )
    if found.secret_header:
        register_secret_value(found.secret_header)
    check_managed_identity_origin(found)
    return found


def check_managed_identity_origin(endpoint: ManagedIdentityEndpoint) -> None:
    """The identity endpoint must be IMDS or on this machine: it receives a host secret."""
    try:
        origin = endpoint.origin
    except Exception:
        origin = ""
    host = origin.split("://", 1)[-1].rsplit(":", 1)[0] if origin else ""
    scheme = origin.split("://", 1)[0] if origin else ""
    if origin == IMDS_ORIGIN or (scheme in {"http", "https"} and host in _LOOPBACK_HOSTS):
        return
    raise ConfigError(
        f"the managed identity endpoint {origin or endpoint.url!r} is neither Azure's "
        "instance metadata service (169.254.169.254) nor on this machine, so credlyctl will not "
        "send it a request",
        "Check IDENTITY_ENDPOINT / AZURE_POD_IDENTITY_AUTHORITY_HOST in the environment: Azure "
        "sets them to a local address on hosts that have a managed identity.",
        error_id="entra.managed_identity_endpoint",
    )


def _unsupported(source: str) -> ConfigError:
    return ConfigError(
        f"credlyctl does not support the {source} managed identity endpoint",
        "Use a client secret, a certificate or a federated token there (entra.auth).",
        error_id="entra.managed_identity_endpoint",
    )
