"""The Microsoft part of an instance: tenant, app, credential, cloud hosts."""

from __future__ import annotations

import re
from pathlib import Path

from credly_connector.config import model as m
from credly_connector.config.findings import error
from credly_connector.config.resolve_base import missing, mixed
from credly_connector.config.resolve_secrets import SecretsMixin
from credly_connector.config.resolved import (
    EntraSettings,
)
from credly_connector.config.workload_identity import FederatedTokenFile, managed_identity_endpoint
from credly_connector.endpoints import (
    CLOUDS,
    Cloud,
    host_of,
)
from credly_connector.errors import ConfigError
from credly_connector.orgid import check_org_id

_DOMAIN_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", re.I)
_CHINA_LOGIN_HOSTS = frozenset({"login.partner.microsoftonline.cn", "login.chinacloudapi.cn"})
_CHINA_GRAPH_HOSTS = frozenset({"microsoftgraph.chinacloudapi.cn"})


class EntraMixin(SecretsMixin):
    def entra(self) -> EntraSettings | None:
        section = self.section("entra", m.EntraSection)
        tenant = self.tenant_id(section.tenant_id)
        kind = self.entra_auth(section)
        managed = kind == "managed_identity"
        client_id = self.app_id(section.client_id) if not managed else None
        secret = certificate = password = token_file = None
        mi_client_id: str | None = None
        usable = False
        if kind == "client_secret":
            secret = self.secret("entra", "client_secret", section.client_secret)
            usable = secret is not None
        elif kind == "certificate":
            certificate = self.certificate(section)
            password = self.secret("entra", "certificate_password", section.certificate_password)
            usable = certificate is not None
        elif kind == "federated_token":
            token_file = self.federated_token_file(section)
            usable = token_file is not None
        elif kind == "managed_identity":
            mi_client_id = self.managed_identity_client_id(section)
            usable = self.managed_identity_endpoint()
        self.unused_entra_keys(section, kind)
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
        if not tenant or not usable or (not managed and not client_id):
            return None
        return EntraSettings(
            tenant_id=tenant,
            client_id=client_id or "",
            cloud=section.cloud,
            login_base=login_base,
            graph_base=graph_base,
            client_secret=secret,
            client_secret_expires=section.client_secret_expires if secret else None,
            certificate_path=certificate,
            certificate_password=password if certificate else None,
            federated_token_file=token_file,
            managed_identity=managed,
            managed_identity_client_id=mi_client_id,
        )

    def entra_auth(self, section: m.EntraSection) -> str | None:
        """entra.auth, or the one credential that is set; None (with a finding) otherwise."""
        if section.auth is not None:
            return section.auth
        has_secret = section.client_secret is not None
        has_certificate = section.certificate_path is not None
        has_token_file = section.federated_token_file is not None
        if has_secret and has_certificate:
            self.add(
                error(
                    "CFG023",
                    self.path("entra", "client_secret"),
                    "Both a client secret and a certificate are set for the Entra app.",
                    "Keep one (a certificate is the stronger choice), or say which with auth = "
                    '"certificate".',
                )
            )
            return None
        if has_token_file:
            return "federated_token"
        if has_certificate:
            return "certificate"
        if has_secret:
            return "client_secret"
        self.add(
            missing(
                self.path("entra", "client_secret"),
                "The Entra app has no credential (client_secret, certificate_path, or auth = "
                '"federated_token" / "managed_identity").',
                'Add client_secret = { env = "VARIABLE" } or certificate_path = "/path/app.pem"; '
                'without a stored secret: auth = "federated_token" (CI, Kubernetes) or auth = '
                '"managed_identity" (on Azure).',
            )
        )
        return None

    def unused_entra_keys(self, section: m.EntraSection, kind: str | None) -> None:
        if kind is None:
            return
        used = {
            "client_secret": {"client_secret", "client_secret_expires"},
            "certificate": {"certificate_path", "certificate_password"},
            "federated_token": {"federated_token_file"},
            "managed_identity": {"managed_identity_client_id"},
        }[kind]
        credential_keys = (
            "client_secret",
            "client_secret_expires",
            "certificate_path",
            "certificate_password",
            "federated_token_file",
            "managed_identity_client_id",
        )
        unused = [k for k in credential_keys if k not in used and getattr(section, k) is not None]
        if kind == "managed_identity" and section.client_id is not None:
            unused.insert(0, "client_id")  # the identity has its own id
        if unused:
            self.add(self.ignored("entra", ", ".join(unused), f'auth = "{kind}"'))
        if kind == "client_secret" and section.client_secret is None:
            self.add(
                missing(
                    self.path("entra", "client_secret"),
                    'auth = "client_secret" but no client_secret is set.',
                    'Add client_secret = { env = "VARIABLE" }.',
                )
            )
        if kind == "certificate" and section.certificate_path is None:
            self.add(
                missing(
                    self.path("entra", "certificate_path"),
                    'auth = "certificate" but no certificate_path is set.',
                    'Add certificate_path = "/path/app.pem" (private key and certificate).',
                )
            )

    def federated_token_file(self, section: m.EntraSection) -> Path | None:
        path = self.path("entra", "federated_token_file")
        if section.federated_token_file is not None:
            file = self.file_path(section.federated_token_file)
        elif self.ctx.environ.get("AZURE_FEDERATED_TOKEN_FILE"):
            file = Path(self.ctx.environ["AZURE_FEDERATED_TOKEN_FILE"])
        else:
            self.add(
                missing(
                    path,
                    'auth = "federated_token" needs the file the identity provider writes its '
                    "token to: federated_token_file is not set and neither is "
                    "AZURE_FEDERATED_TOKEN_FILE.",
                    'Set federated_token_file = "/path/to/token" (the file your CI job writes '
                    "its OIDC token to), or run where AZURE_FEDERATED_TOKEN_FILE is set "
                    "(Kubernetes workload identity).",
                )
            )
            return None
        try:
            FederatedTokenFile(file).read()
        except ConfigError as exc:
            self.add(error("CFG032", path, _sentence(exc.message), exc.hint))
            return None
        return file

    def managed_identity_client_id(self, section: m.EntraSection) -> str | None:
        value = section.managed_identity_client_id
        if value is None:
            return None
        return self.client_guid(
            value,
            self.path("entra", "managed_identity_client_id"),
            "The managed identity's client id",
            "Copy the Client ID from the user-assigned managed identity's Overview page, "
            "or remove the key to use the system-assigned identity.",
        )

    def client_guid(self, value: str, path: str, what: str, hint: str) -> str | None:
        """A client id in canonical GUID form, or CFG024 with the exact correction if one exists."""
        check = check_org_id(value)
        if check.ok:
            return check.canonical
        self.add(
            error(
                "CFG024",
                path,
                f"{what} is not a GUID: {check.message}",
                check.hint if check.suggestion else hint,
            )
        )
        return None

    def managed_identity_endpoint(self) -> bool:
        """The endpoint msal would use must be one credlyctl may send the host secret to."""
        try:
            managed_identity_endpoint(self.ctx.environ)
        except ConfigError as exc:
            self.add(error("CFG033", self.path("entra", "auth"), _sentence(exc.message), exc.hint))
            return False
        return True

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
        return self.client_guid(
            value,
            path,
            "The application (client) ID",
            "Copy the Application (client) ID from the app registration's Overview page.",
        )

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


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + "."


def _cloud_owning(host: str, *, login: bool) -> str:
    for cloud, endpoints in CLOUDS.items():
        if host == host_of(endpoints.login_base if login else endpoints.graph_base):
            return str(cloud)
    if host in (_CHINA_LOGIN_HOSTS if login else _CHINA_GRAPH_HOSTS):
        return "china"
    return ""
