"""Real clients for one instance (Credly, Entra, Graph), shared by sync, setup and status."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from credly_connector.config.resolved import InstanceSettings
from credly_connector.credly.client import CredlyClient
from credly_connector.graph.auth import EntraTokenProvider
from credly_connector.graph.client import GraphClient
from credly_connector.graph.models import USER_SELECT
from credly_connector.net.transport import build_http_client
from credly_connector.sync.runner import SyncClients


@dataclass
class InstanceClients:
    credly: CredlyClient
    graph: GraphClient
    tokens: EntraTokenProvider
    _http: tuple[httpx.Client, ...]

    def close(self) -> None:
        for client in self._http:
            client.close()

    def latest_delta_link(self) -> str | None:
        """A /users/delta link that starts from now (`$deltaToken=latest`): no user pages."""
        query = f"$deltaToken=latest&$select={USER_SELECT}"
        return self.graph.users_delta(f"/users/delta?{query}").delta_link

    def for_sync(self) -> SyncClients:
        return SyncClients(
            credly=self.credly,
            graph=self.graph,
            counters={
                "credly": self.credly.request_counts.as_dict,
                "graph": self.graph.request_counts.as_dict,
                "entra": self.tokens.request_counts.as_dict,
                "credly_retries": self.credly.retry_stats.as_dict,
                "graph_retries": self.graph.retry_stats.as_dict,
            },
            latest_delta_link=self.latest_delta_link,
        )


def build_clients(settings: InstanceSettings) -> InstanceClients:
    microsoft_http = build_http_client(settings, "microsoft")
    credly_http = build_http_client(settings, "credly")
    tokens = EntraTokenProvider(settings.entra, microsoft_http)
    return InstanceClients(
        credly=CredlyClient(
            settings.credly, credly_http, page_concurrency=settings.sync.credly_page_concurrency
        ),
        graph=GraphClient(settings, microsoft_http, tokens),
        tokens=tokens,
        _http=(microsoft_http, credly_http),
    )
