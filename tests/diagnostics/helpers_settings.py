"""InstanceSettings built directly, for unit tests that do not need a configuration file."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from credly_connector.config.resolved import (
    CredlySettings,
    EntraSettings,
    GraphSettings,
    InstanceSettings,
    NetworkSettings,
    SyncSettings,
)
from credly_connector.endpoints import CLOUDS, CREDLY_ENVIRONMENTS, Cloud, CredlyEnvironment
from credly_connector.secrets import Secret

ORG_ID = "ba92621f-f22c-41e5-9157-c2dc274e3cf0"
TENANT_ID = "11111111-2222-3333-4444-555555555555"
APP_ID = "66666666-7777-8888-9999-000000000000"
CREDLY_SECRET = "credly-secret-VALUE-do-not-print-7f3a"
ENTRA_SECRET = "entra-secret-VALUE-do-not-print-91bd"


def make_settings(
    tmp_path: Path,
    *,
    environment: CredlyEnvironment = CredlyEnvironment.PRODUCTION,
    ca_bundle: Path | None = None,
    allow_custom_hosts: bool = False,
    credly: dict[str, Any] | None = None,
    entra: dict[str, Any] | None = None,
    network: dict[str, Any] | None = None,
) -> InstanceSettings:
    env = CREDLY_ENVIRONMENTS[environment]
    cloud = CLOUDS[Cloud.GLOBAL]
    credly_settings = CredlySettings(
        org_id=ORG_ID,
        environment=environment,
        web_base=env.web_base,
        api_base=env.api_base,
        client_id="credly-client-id",
        client_secret=Secret(CREDLY_SECRET, "env:CREDLY_SECRET"),
    )
    entra_settings = EntraSettings(
        tenant_id=TENANT_ID,
        client_id=APP_ID,
        cloud=Cloud.GLOBAL,
        login_base=cloud.login_base,
        graph_base=cloud.graph_base,
        client_secret=Secret(ENTRA_SECRET, "env:ENTRA_SECRET"),
        client_secret_expires=None,
    )
    network_settings = NetworkSettings(
        ca_bundle=ca_bundle,
        proxy=None,
        no_proxy=None,
        allow_custom_hosts=allow_custom_hosts,
        timeout_seconds=10,
        credly_hosts=env.hosts,
        microsoft_hosts=cloud.hosts,
    )
    return InstanceSettings(
        name="contoso",
        credly=replace(credly_settings, **(credly or {})),
        entra=replace(entra_settings, **(entra or {})),
        graph=GraphSettings("credlybadges", "Credly badges", "Awards and certifications"),
        sync=SyncSettings(1, 7, tmp_path / "state", 25, 4, 8, frozenset()),
        network=replace(network_settings, **(network or {})),
    )


def days_ago(today: date, days: int) -> date:
    from datetime import timedelta

    return today - timedelta(days=days)
