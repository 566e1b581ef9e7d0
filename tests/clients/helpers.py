"""Settings and a fake server for the client tests (httpx.MockTransport, nothing on the wire)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from credly_connector.config.resolved import (
    CredlySettings,
    EntraSettings,
    GraphSettings,
    InstanceSettings,
    NetworkSettings,
    SyncSettings,
)
from credly_connector.endpoints import Cloud, CredlyEnvironment
from credly_connector.secrets import Secret

# Distinctive fake secrets: tests grep every message and repr for them.
CREDLY_SECRET = "cr3dly-S3CRET-zz91-never-print"
CREDLY_AUTH_TOKEN = "cr3dly-AUTHTOKEN-qq77-never-print"
ENTRA_SECRET = "entra-S3CRET-xx42-never-print"
ORG_ID = "ba92621f-f22c-41e5-9157-c2dc274e3cf0"
TENANT_ID = "11111111-2222-3333-4444-555555555555"
API = "https://api.credly.com/v1"
WEB = "https://www.credly.com"
GRAPH = "https://graph.microsoft.com/v1.0"
LOGIN = "https://login.microsoftonline.com"


def make_settings(
    *,
    oauth: bool = True,
    tmp: Path | None = None,
    network: dict[str, Any] | None = None,
    entra: dict[str, Any] | None = None,
) -> InstanceSettings:
    credly = CredlySettings(
        org_id=ORG_ID,
        environment=CredlyEnvironment.PRODUCTION,
        web_base=WEB,
        api_base=API,
        client_id="credly-client-1" if oauth else None,
        client_secret=Secret(CREDLY_SECRET, "inline") if oauth else None,
        authorization_token=None if oauth else Secret(CREDLY_AUTH_TOKEN, "inline"),
    )
    entra_settings = EntraSettings(
        tenant_id=TENANT_ID,
        client_id="app-client-1",
        cloud=Cloud.GLOBAL,
        login_base=LOGIN,
        graph_base="https://graph.microsoft.com",
        client_secret=Secret(ENTRA_SECRET, "inline"),
    )
    if entra:
        entra_settings = replace(entra_settings, **entra)
    net = NetworkSettings(
        ca_bundle=None,
        proxy=None,
        no_proxy=None,
        allow_custom_hosts=False,
        timeout_seconds=10,
        credly_hosts=frozenset({"api.credly.com", "www.credly.com"}),
        microsoft_hosts=frozenset({"login.microsoftonline.com", "graph.microsoft.com"}),
    )
    if network:
        net = replace(net, **network)
    return InstanceSettings(
        name="test",
        credly=credly,
        entra=entra_settings,
        graph=GraphSettings("credlybadges", "Credly badges", "Credly awards"),
        sync=SyncSettings(1, 7, tmp or Path("/nonexistent"), 25, 4, 8, frozenset()),
        network=net,
    )


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeServer:
    """Routes requests to handlers by (method, path prefix) and records every request."""

    routes: list[tuple[str, str, Handler]] = field(default_factory=list)
    seen: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.routes.insert(0, (method, path, handler))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.seen.append(request)
        for method, path, handler in self.routes:
            if request.method == method and request.url.path.startswith(path):
                return handler(request)
        return httpx.Response(404, json={"error": {"code": "notFound", "message": "no route"}})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def paths(self, method: str | None = None) -> list[str]:
        return [r.url.path for r in self.seen if method is None or r.method == method]


def json_response(status: int, document: Any, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(document).encode(), headers=headers)

    return handler
