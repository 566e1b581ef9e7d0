"""Hostile paging (finding L3) and a foreign delta link (L9): bounded, refused, never stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from credly_connector.credly.client import MAX_BADGE_PAGES
from credly_connector.credly.errors import CredlyUnavailable
from credly_connector.errors import ForbiddenHostError
from credly_connector.graph.errors import GraphUnavailable
from tests.clients.helpers import API, GRAPH, ORG_ID, FakeServer, json_response
from tests.clients.test_credly_client import BADGES, badge, client, token_ok
from tests.clients.test_graph_client import V1, graph, user


def test_a_users_next_link_pointing_back_is_reported_not_followed_forever(
    fake: FakeServer,
) -> None:
    loop = f"{GRAPH}/users?$skiptoken=same"
    fake.on("GET", f"{V1}/users", json_response(200, {"value": [user(1)], "@odata.nextLink": loop}))
    with pytest.raises(GraphUnavailable, match="loop"):
        list(graph(fake).iter_users())
    assert len(fake.seen) == 2  # the first page and the looping one, once


def test_a_delta_next_link_pointing_back_is_reported(fake: FakeServer) -> None:
    loop = f"{GRAPH}/users/delta?token=same"
    fake.on("GET", f"{V1}/users/delta", json_response(200, {"value": [], "@odata.nextLink": loop}))
    with pytest.raises(GraphUnavailable, match="loop"):
        graph(fake).users_delta(None)
    assert len(fake.seen) == 2


def test_a_foreign_delta_link_is_refused_before_it_can_be_stored(fake: FakeServer) -> None:
    foreign = "https://127.0.0.2:8443/v1.0/users/delta?$deltatoken=x"
    fake.on(
        "GET", f"{V1}/users/delta", json_response(200, {"value": [], "@odata.deltaLink": foreign})
    )
    with pytest.raises(ForbiddenHostError):
        graph(fake).users_delta(None)


def _pages(meta: dict[str, Any]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        items = [badge(page * 10 + n) for n in range(2)] if page <= 3 else []
        return httpx.Response(200, json={"data": items, "metadata": {"per": 2, **meta}})

    return handler


def test_an_absurd_total_pages_is_capped_by_the_total_count(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, _pages({"total_pages": 100_000, "total_count": 6}))
    badges = client(fake).list_badges()
    assert len(badges) == 6
    assert sum(1 for r in fake.seen if r.url.path == BADGES) <= 4


def test_a_total_pages_beyond_any_organization_is_reported_not_read(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, _pages({"total_pages": MAX_BADGE_PAGES * 50}))
    with pytest.raises(CredlyUnavailable, match="pages of badges"):
        client(fake).list_badges()
    assert sum(1 for r in fake.seen if r.url.path == BADGES) == 1


def test_an_endless_chain_of_next_pages_stops_at_the_bound(
    fake: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("credly_connector.credly.client.MAX_BADGE_PAGES", 5)

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        nxt = f"{API}/organizations/{ORG_ID}/badges?page={page + 1}"
        return httpx.Response(200, json={"data": [badge(page)], "metadata": {"next_page_url": nxt}})

    token_ok(fake)
    fake.on("GET", BADGES, handler)
    with pytest.raises(CredlyUnavailable, match="pages of badges"):
        client(fake).list_badges()
    assert sum(1 for r in fake.seen if r.url.path == BADGES) == 5
