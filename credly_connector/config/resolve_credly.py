"""The Credly part of an instance: Organization ID, endpoints and credentials."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import SplitResult

from credly_connector.config import model as m
from credly_connector.config.findings import error
from credly_connector.config.resolve_base import legacy_host, missing, mixed
from credly_connector.config.resolve_secrets import SecretsMixin
from credly_connector.config.resolved import (
    CredlySettings,
)
from credly_connector.endpoints import (
    CREDLY_API_HOSTS,
    CREDLY_ENVIRONMENTS,
    CREDLY_LEGACY_HOSTS,
    CREDLY_WEB_ALIASES,
    CredlyEnvironment,
    host_of,
)
from credly_connector.secrets import Secret

AUTHORIZATION_TOKEN_LIFETIME = timedelta(days=180)  # Credly issuer help centre


class CredlyMixin(SecretsMixin):
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
                self.add(self.ignored("credly", "client_id/client_secret", 'auth = "token"'))
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
            self.add(self.ignored("credly", "authorization_token", 'auth = "oauth"'))
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
