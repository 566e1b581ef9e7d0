"""read_changed_badges over httpx.MockTransport: each verdict, and the errors it leaves alone.

The fake Credly below honours, ignores or refuses `updated_at_min` as a test asks, so every
answer docs/fidelity.md C-BADGE-11 considers plausible gets its verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from credly_connector.credly.changes import (
    ChangedBadges,
    FullReadNeeded,
    changed_since_filter,
    read_changed_badges,
    window_start,
)
from credly_connector.credly.errors import CredlyAuthError, CredlyUnavailable
from tests.clients.helpers import API, ORG_ID, FakeServer
from tests.clients.test_credly_client import client, token_ok

BADGES = f"/v1/organizations/{ORG_ID}/badges"
SINCE = date(2026, 11, 30)
OLD = "2026-03-02T10:00:00.000Z"
RECENT = "2026-12-01T09:00:00.000Z"


def badges(count: int, recent: int) -> list[dict[str, Any]]:
    """`count` badges, the last `recent` of them updated after SINCE."""
    return [
        {
            "id": f"badge-{n}",
            "state": "accepted",
            "public": True,
            "updated_at": RECENT if n >= count - recent else OLD,
        }
        for n in range(count)
    ]


def day_filter(request: httpx.Request) -> str | None:
    for part in request.url.params.get("filter", "").split("|"):
        key, _, value = part.partition("::")
        if key == "updated_at_min":
            return value
    return None


def credly(
    stored: list[dict[str, Any]],
    *,
    narrow: Callable[[list[dict[str, Any]], str], list[dict[str, Any]]] | None = None,
    refuse: int | None = None,
    refuse_from_page: int = 1,
    per: int = 2,
    total_count: bool = True,
) -> Callable[[httpx.Request], httpx.Response]:
    """A badge listing; `narrow` decides what a day filter returns (None: honoured)."""

    def honoured(items: list[dict[str, Any]], since: str) -> list[dict[str, Any]]:
        return [b for b in items if str(b.get("updated_at", ""))[:10] >= since]

    def handler(request: httpx.Request) -> httpx.Response:
        since = day_filter(request)
        page = int(request.url.params.get("page", "1"))
        if since is not None and refuse is not None and page >= refuse_from_page:
            return httpx.Response(refuse, json={"data": {"message": "Invalid filter"}})
        matched = stored if since is None else (narrow or honoured)(stored, since)
        pages = max(1, -(-len(matched) // per))
        chunk = matched[(page - 1) * per : page * per]
        query = {"filter": request.url.params["filter"]} if "filter" in request.url.params else {}
        nxt = f"{API}/organizations/{ORG_ID}/badges?{urlencode({**query, 'page': page + 1})}"
        meta: dict[str, Any] = {"count": len(chunk), "current_page": page, "per": per}
        meta |= {"total_pages": pages, "next_page_url": nxt if page < pages else None}
        if total_count:
            meta["total_count"] = len(matched)
        return httpx.Response(200, json={"data": chunk, "metadata": meta})

    return handler


def serve(fake: FakeServer, handler: Callable[[httpx.Request], httpx.Response]) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, handler)


def filtered_requests(fake: FakeServer) -> list[httpx.Request]:
    return [r for r in fake.seen if r.method == "GET" and day_filter(r) is not None]


def test_an_honoured_filter_gives_the_changed_badges(fake: FakeServer) -> None:
    serve(fake, credly(badges(40, recent=3)))
    result = read_changed_badges(client(fake), SINCE)
    assert isinstance(result, ChangedBadges)
    assert [b.id for b in result.badges] == ["badge-37", "badge-38", "badge-39"]
    assert (result.total, result.changed_total, result.since) == (40, 3, SINCE)
    assert result.share == pytest.approx(3 / 40)
    # The organization's total first, then the filter with Credly's syntax.
    gets = [r for r in fake.seen if r.method == "GET"]
    assert day_filter(gets[0]) is None
    assert {r.url.params["filter"] for r in gets[1:]} == {"updated_at_min::2026-11-30"}
    # Total, filtered total, then 2 filtered pages (2 a page): 4 requests for 40 badges.
    assert len(gets) == 4


def test_nothing_changed_is_an_empty_honoured_answer(fake: FakeServer) -> None:
    serve(fake, credly(badges(10, recent=0)))
    result = read_changed_badges(client(fake), SINCE)
    assert isinstance(result, ChangedBadges)
    assert result.badges == () and result.changed_total == 0 and result.total == 10


def test_an_ignored_filter_is_not_honoured(fake: FakeServer) -> None:
    serve(fake, credly(badges(40, recent=3), narrow=lambda items, _since: items))
    result = read_changed_badges(client(fake), SINCE)
    assert isinstance(result, FullReadNeeded)
    assert result.verdict == "not_honoured"
    assert (result.total, result.changed_total) == (40, 40)
    assert "may have ignored the filter" in result.reason
    # Decided from the totals: no filtered page beyond the one that gave the count.
    assert len(filtered_requests(fake)) == 1


@pytest.mark.parametrize("status", [400, 422])
def test_a_refused_filter_is_not_honoured_not_an_error(fake: FakeServer, status: int) -> None:
    serve(fake, credly(badges(40, recent=3), refuse=status))
    result = read_changed_badges(client(fake), SINCE)
    assert isinstance(result, FullReadNeeded)
    assert (result.verdict, result.status, result.total) == ("not_honoured", status, 40)
    assert f"HTTP {status}" in result.reason


def test_a_filter_refused_on_a_later_page_is_not_honoured(fake: FakeServer) -> None:
    serve(fake, credly(badges(40, recent=3), refuse=400, refuse_from_page=2))
    result = read_changed_badges(client(fake), SINCE)
    assert isinstance(result, FullReadNeeded)
    assert (result.verdict, result.status) == ("not_honoured", 400)


def test_a_badge_outside_the_window_means_not_honoured(fake: FakeServer) -> None:
    # Credly counts fewer badges but a page still holds an old one: not what was asked for.
    stored = badges(40, recent=3)
    serve(fake, credly(stored, narrow=lambda items, _since: [items[0], *items[-3:]]))
    result = read_changed_badges(client(fake), SINCE)
    assert isinstance(result, FullReadNeeded)
    assert result.verdict == "not_honoured"
    assert "badge-0" in result.reason and "2026-03-02" in result.reason


def test_a_badge_without_updated_at_means_not_honoured(fake: FakeServer) -> None:
    stored = badges(40, recent=3)
    del stored[-1]["updated_at"]
    serve(fake, credly(stored, narrow=lambda items, _since: items[-3:]))
    result = read_changed_badges(client(fake), SINCE)
    assert isinstance(result, FullReadNeeded)
    assert result.verdict == "not_honoured"
    assert "badge-39 without updated_at" in result.reason


def test_a_credly_day_in_another_time_zone_is_still_inside(fake: FakeServer) -> None:
    # 20:00 UTC on the day before is already `since` east of UTC+4: Credly may return it.
    stored = badges(40, recent=3)
    stored[-1]["updated_at"] = "2026-11-29T20:00:00.000Z"
    serve(fake, credly(stored, narrow=lambda items, _since: items[-3:]))
    result = read_changed_badges(client(fake), SINCE)
    assert isinstance(result, ChangedBadges)
    assert len(result.badges) == 3
    # Two days before `since` no time zone explains: not honoured.
    stored[-1]["updated_at"] = "2026-11-28T20:00:00.000Z"
    assert isinstance(read_changed_badges(client(fake), SINCE), FullReadNeeded)


def test_too_many_changes_are_not_worth_a_filtered_read(fake: FakeServer) -> None:
    serve(fake, credly(badges(40, recent=8)))
    result = read_changed_badges(client(fake), SINCE)
    assert isinstance(result, FullReadNeeded)
    assert result.verdict == "not_worth_it"
    assert (result.total, result.changed_total) == (40, 8)
    assert "8 of 40 badges (20%)" in result.reason
    assert len(filtered_requests(fake)) == 1  # the count alone decided
    fake.seen.clear()
    generous = read_changed_badges(client(fake), SINCE, max_share=0.25)
    assert isinstance(generous, ChangedBadges) and len(generous.badges) == 8


def test_an_empty_organization_is_not_worth_a_filtered_read(fake: FakeServer) -> None:
    serve(fake, credly([]))
    result = read_changed_badges(client(fake), SINCE)
    assert isinstance(result, FullReadNeeded)
    assert (result.verdict, result.total) == ("not_worth_it", 0)
    assert filtered_requests(fake) == []


def test_no_total_count_means_the_filter_cannot_be_checked(fake: FakeServer) -> None:
    serve(fake, credly(badges(40, recent=3), total_count=False))
    result = read_changed_badges(client(fake), SINCE)
    assert isinstance(result, FullReadNeeded)
    assert result.verdict == "not_honoured" and result.total is None


@pytest.mark.parametrize(("status", "error"), [(401, CredlyAuthError), (403, CredlyAuthError)])
def test_refused_credentials_on_the_filtered_read_still_raise(
    fake: FakeServer, status: int, error: type[Exception]
) -> None:
    plain = credly(badges(40, recent=3))

    def handler(request: httpx.Request) -> httpx.Response:
        if day_filter(request) is not None:
            return httpx.Response(status, json={"data": {"message": "no"}})
        return plain(request)

    serve(fake, handler)
    with pytest.raises(error):
        read_changed_badges(client(fake), SINCE)


def test_server_errors_after_retries_still_raise(fake: FakeServer) -> None:
    plain = credly(badges(40, recent=3))

    def handler(request: httpx.Request) -> httpx.Response:
        if day_filter(request) is not None:
            return httpx.Response(503, json={"data": {"message": "down"}})
        return plain(request)

    serve(fake, handler)
    with pytest.raises(CredlyUnavailable) as caught:
        read_changed_badges(client(fake), SINCE)
    assert caught.value.kind == "server"


def test_badge_total_reads_page_one_only(fake: FakeServer) -> None:
    serve(fake, credly(badges(40, recent=3)))
    reader = client(fake)
    assert reader.badge_total() == 40
    assert reader.badge_total(changed_since_filter(SINCE)) == 3
    assert [r.url.params.get("page") for r in fake.seen if r.method == "GET"] == [None, None]


def test_window_start_is_the_utc_day_before_the_last_full_read() -> None:
    assert window_start(datetime(2026, 12, 2, 0, 30, tzinfo=UTC)) == date(2026, 12, 1)
    assert window_start(datetime(2026, 12, 2, 23, 59)) == date(2026, 12, 1)  # naive is UTC
    # 03:00 at UTC+5 is still 1 December in UTC.
    east = datetime(2026, 12, 2, 3, 0, tzinfo=timezone(timedelta(hours=5)))
    assert window_start(east) == date(2026, 11, 30)
    assert changed_since_filter(date(2026, 11, 30)) == {"updated_at_min": "2026-11-30"}
