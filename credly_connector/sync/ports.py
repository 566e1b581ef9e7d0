"""What a crawl needs from the outside world, as typed protocols.

The runner depends on these, not on the concrete clients, so tests pass small fakes and the
type checker still verifies every call. `sync.clients.InstanceClients.for_sync` adapts the real
Credly and Graph clients to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from credly_connector.credly.changes import ChangedBadges, FullReadNeeded
from credly_connector.credly.models import Badge
from credly_connector.graph.batch import BatchRequest, BatchResponse
from credly_connector.graph.client import DeltaResult
from credly_connector.graph.models import DirectoryUser
from credly_connector.net.retry import RetryStats


class CredlyReader(Protocol):
    """The badges of the organization: page by page, or those of one recipient."""

    def iter_badge_pages(self) -> Iterable[tuple[int, list[Badge]]]: ...

    def iter_badges(self, *, recipient_email: str | None = None) -> Iterable[Badge]: ...


class GraphPort(Protocol):
    """The directory reads and the connector writes a crawl performs."""

    def get_connection(self, connection_id: str) -> dict[str, Any] | None: ...

    def iter_users(self) -> Iterable[DirectoryUser]: ...

    def users_delta(self, delta_link: str | None) -> DeltaResult: ...

    def find_users_by_addresses(self, addresses: Sequence[str]) -> list[DirectoryUser]: ...

    def batch(self, requests: list[BatchRequest]) -> list[BatchResponse]: ...


class Progress(Protocol):
    """Where a crawl reports its phases; the CLI draws a bar, tests and `--json` ignore it."""

    def phase(self, name: str, total: int | None = None) -> None: ...

    def advance(self, done: int) -> None: ...


class NoProgress:
    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, done: int) -> None:
        pass


# name -> callable giving {kind: count}: request and retry counters reported with a crawl.
Counters = dict[str, Callable[[], dict[str, Any]]]


@dataclass
class SyncClients:
    credly: CredlyReader
    graph: GraphPort
    counters: Counters = field(default_factory=dict)
    # Gets the Graph token now; None: each request signs in when it needs to.
    sign_in: Callable[[], object] | None = None
    # A /users/delta link that starts from now, for a crawl that lists users in full anyway.
    latest_delta_link: Callable[[], str | None] | None = None
    # The clients' retry counters: each wait they make goes to the crawl log as `retry_wait`.
    retry_stats: tuple[RetryStats, ...] = ()
    # The badges Credly changed since a day, verified (credly/changes.py); None: not offered.
    read_changes: Callable[[date], ChangedBadges | FullReadNeeded] | None = None
    # Every page of the listing asked sorted by recipient address (sync/streamed.py checks
    # that it is), as (page number, badges) in any order; None: not offered.
    read_sorted: Callable[[], Iterable[tuple[int, list[Badge]]]] | None = None
    # After `read_sorted`: True when Credly refused the sort and the pages came unsorted.
    sort_refused: Callable[[], bool] = lambda: False
