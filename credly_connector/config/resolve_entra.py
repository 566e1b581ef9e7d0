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
from credly_connector.endpoints import (
    CLOUDS,
    Cloud,
    host_of,
)
from credly_connector.orgid import check_org_id

_DOMAIN_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", re.I)
_CHINA_LOGIN_HOSTS = frozenset({"login.partner.microsoftonline.cn", "login.chinacloudapi.cn"})
_CHINA_GRAPH_HOSTS = frozenset({"microsoftgraph.chinacloudapi.cn"})


class EntraMixin(SecretsMixin):
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
            self.add(self.ignored("entra", "certificate_password", "no certificate_path"))
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


def _cloud_owning(host: str, *, login: bool) -> str:
    for cloud, endpoints in CLOUDS.items():
        if host == host_of(endpoints.login_base if login else endpoints.graph_base):
            return str(cloud)
    if host in (_CHINA_LOGIN_HOSTS if login else _CHINA_GRAPH_HOSTS):
        return "china"
    return ""
