"""The real clients of one instance (Credly, Entra, Graph): built in one place, closed together.

Sync, setup, status, coverage and the diagnostics all get their clients here. Each client is
built on first use (a Credly-only check opens no connection to Microsoft), and `close()` (or
leaving the `with` block) closes every HTTP session that was opened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Literal

import httpx

from credly_connector.config.resolved import InstanceSettings
from credly_connector.credly.changes import read_changed_badges
from credly_connector.credly.client import CredlyClient
from credly_connector.graph.auth import DiscoveryCache, EntraTokenProvider
from credly_connector.graph.client import GraphClient
from credly_connector.graph.models import USER_SELECT
from credly_connector.net.transport import build_http_client
from credly_connector.sync.ports import SyncClients
from credly_connector.sync.streamed import SORT

# Called with ("credly" | "entra" | "graph", session) when a session is opened: the support
# bundle uses it to record the shape of every answer.
SessionHook = Callable[[str, httpx.Client], None]


class InstanceClients:
    def __init__(self, settings: InstanceSettings, on_session: SessionHook | None = None) -> None:
        self.settings = settings
        self._on_session = on_session
        self._lock = threading.RLock()
        self._sessions: list[httpx.Client] = []
        self._credly: CredlyClient | None = None
        self._tokens: EntraTokenProvider | None = None
        self._graph: GraphClient | None = None

    def _session(self, service: Literal["credly", "entra", "graph"]) -> httpx.Client:
        http = build_http_client(self.settings, "credly" if service == "credly" else "microsoft")
        self._sessions.append(http)
        if self._on_session is not None:
            self._on_session(service, http)
        return http

    @property
    def credly(self) -> CredlyClient:
        with self._lock:
            if self._credly is None:
                self._credly = CredlyClient(
                    self.settings.credly,
                    self._session("credly"),
                    page_concurrency=self.settings.sync.credly_page_concurrency,
                )
            return self._credly

    @property
    def tokens(self) -> EntraTokenProvider:
        with self._lock:
            if self._tokens is None:
                self._tokens = EntraTokenProvider(
                    self.settings.entra,
                    self._session("entra"),
                    network=self.settings.network,
                    # A later run's first Entra request is the token request itself.
                    discovery_cache=DiscoveryCache.in_state_folder(
                        self.settings.sync.state_dir, self.settings.name
                    ),
                )
            return self._tokens

    @property
    def graph(self) -> GraphClient:
        with self._lock:
            if self._graph is None:
                self._graph = GraphClient(self.settings, self._session("graph"), self.tokens)
            return self._graph

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
            tokens = self._tokens
        for http in sessions:
            http.close()
        if tokens is not None:
            tokens.close()  # the managed identity endpoint's own session, if one was opened

    def __enter__(self) -> InstanceClients:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

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
            sign_in=self.tokens.get_token,
            latest_delta_link=self.latest_delta_link,
            read_changes=lambda since: read_changed_badges(self.credly, since),
            read_sorted=lambda: self.credly.iter_badge_pages(sort=SORT),
            sort_refused=lambda: self.credly.sort_refused,
            retry_stats=(
                self.credly.retry_stats,
                self.graph.retry_stats,
                self.tokens.retry_stats,
            ),
        )


def build_clients(
    settings: InstanceSettings, on_session: SessionHook | None = None
) -> InstanceClients:
    return InstanceClients(settings, on_session)
