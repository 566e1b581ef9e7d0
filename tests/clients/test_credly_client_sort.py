"""`CredlyClient.iter_badge_pages(sort=...)` over httpx.MockTransport: the sort goes with every
page, and a sort Credly refuses (400 or 422 to page 1) is read again without it
(docs/fidelity.md C-BADGE-12)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from credly_connector.credly.client import CredlyClient
from credly_connector.credly.errors import CredlyAuthError, CredlyUnavailable
from tests.clients.helpers import CREDLY_SECRET, ORG_ID, FakeServer
from tests.clients.test_credly_client import BADGES, assert_no_secret, client, paged, token_ok


def badge_gets(fake: FakeServer) -> list[httpx.Request]:
    return [r for r in fake.seen if r.method == "GET" and r.url.path == BADGES]


def read(credly: CredlyClient, **kwargs: Any) -> list[str]:
    """Every badge id of every page, in page order (duplicates kept, so a test sees them)."""
    pages = dict(credly.iter_badge_pages(**kwargs))
    return [b.id for n in sorted(pages) for b in pages[n]]


def refusing(status: int, total: int = 7) -> Any:
    """Credly that answers `status` to any sorted request and pages otherwise."""
    pages = paged(total)

    def handler(request: httpx.Request) -> httpx.Response:
        if "sort" in request.url.params:
            # Echoes the request, as some gateways do: the message must not carry it.
            return httpx.Response(status, json={"data": {"message": f"bad sort {request.url}"}})
        return pages(request)

    return handler


def test_sort_is_sent_with_every_page(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, paged(7))
    credly = client(fake)
    assert read(credly, sort="recipient_email", filters={"state": "accepted"}) == [
        f"badge-{n}" for n in range(7)
    ]
    gets = badge_gets(fake)
    assert len(gets) == 4
    assert all(r.url.params.get("sort") == "recipient_email" for r in gets)
    assert all(r.url.params.get("filter") == "state::accepted" for r in gets)
    assert sorted(r.url.params.get("page", "1") for r in gets) == ["1", "2", "3", "4"]
    assert credly.sort_refused is False


def test_descending_sort_is_sent_as_given(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, paged(3))
    read(client(fake), sort="-recipient_email")
    assert {r.url.params.get("sort") for r in badge_gets(fake)} == {"-recipient_email"}


def test_no_sort_parameter_without_a_sort(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, paged(5))
    credly = client(fake)
    assert len(read(credly)) == 5
    assert all("sort" not in r.url.params for r in badge_gets(fake))
    assert credly.sort_refused is False


@pytest.mark.parametrize("status", [400, 422])
def test_a_refused_sort_reads_every_page_again_without_it(fake: FakeServer, status: int) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, refusing(status))
    credly = client(fake)
    assert read(credly, sort="recipient_email") == [f"badge-{n}" for n in range(7)]
    assert credly.sort_refused is True
    gets = badge_gets(fake)
    assert gets[0].url.params.get("sort") == "recipient_email"
    assert all("sort" not in r.url.params for r in gets[1:])
    assert sorted(r.url.params.get("page", "1") for r in gets[1:]) == ["1", "2", "3", "4"]


def test_sort_refused_describes_the_latest_call(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, refusing(400))
    credly = client(fake)
    pages = credly.iter_badge_pages(sort="recipient_email")
    assert credly.sort_refused is False  # nothing read yet
    next(pages)
    assert credly.sort_refused is True  # final once page 1 came
    list(pages)
    assert credly.sort_refused is True
    read(credly)
    assert credly.sort_refused is False  # reset by a call without sort
    fake.on("GET", BADGES, paged(3))
    read(credly, sort="recipient_email")
    assert credly.sort_refused is False  # reset by a call whose sort was taken


@pytest.mark.parametrize("status", [400, 422])
def test_a_400_or_422_without_a_sort_raises_as_before(fake: FakeServer, status: int) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, lambda r: httpx.Response(status, json={"data": {"message": "no"}}))
    credly = client(fake)
    with pytest.raises(CredlyUnavailable) as caught:
        read(credly)
    assert (caught.value.kind, caught.value.status) == ("unexpected", status)
    assert credly.sort_refused is False
    assert len(badge_gets(fake)) == 1


def test_a_400_to_the_unsorted_read_too_is_an_error(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, lambda r: httpx.Response(400, text=f"{r.url} {CREDLY_SECRET}"))
    with pytest.raises(CredlyUnavailable) as caught:
        read(client(fake), sort="recipient_email")
    assert caught.value.status == 400
    assert_no_secret(caught.value)
    assert "recipient_email" not in str(caught.value)  # the query string never shows
    assert [r.url.params.get("sort") for r in badge_gets(fake)] == ["recipient_email", None]


@pytest.mark.parametrize(
    ("status", "error"), [(401, CredlyAuthError), (403, CredlyAuthError), (404, CredlyAuthError)]
)
def test_other_refusals_of_a_sorted_read_are_not_a_refused_sort(
    fake: FakeServer, status: int, error: type[Exception]
) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, lambda r: httpx.Response(status, json={"data": {"message": "x"}}))
    credly = client(fake)
    with pytest.raises(error):
        read(credly, sort="recipient_email")
    assert credly.sort_refused is False
    assert all(r.url.params.get("sort") == "recipient_email" for r in badge_gets(fake))


def test_server_errors_of_a_sorted_read_are_retried_not_read_without_sort(
    fake: FakeServer,
) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, lambda r: httpx.Response(503, json={"data": {"message": "busy"}}))
    credly = client(fake)
    with pytest.raises(CredlyUnavailable) as caught:
        read(credly, sort="recipient_email")
    assert caught.value.kind == "server"
    assert credly.sort_refused is False
    gets = badge_gets(fake)
    assert len(gets) > 1 and all(r.url.params.get("sort") == "recipient_email" for r in gets)


def test_a_refusal_after_page_one_is_an_error_as_before(fake: FakeServer) -> None:
    token_ok(fake)
    pages = paged(7)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "3":
            return httpx.Response(400, json={"data": {"message": "bad sort"}})
        return pages(request)

    fake.on("GET", BADGES, handler)
    credly = client(fake)
    with pytest.raises(CredlyUnavailable) as caught:
        read(credly, sort="recipient_email")
    assert caught.value.status == 400
    assert credly.sort_refused is False


def test_links_past_the_reported_total_keep_what_credly_put_in_them(fake: FakeServer) -> None:
    """No total_pages: pages come through next_page_url, which carries Credly's own query."""
    token_ok(fake)

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        items = [{"id": f"badge-{page}", "state": "accepted"}]
        nxt = (
            f"https://api.credly.com/v1/organizations/{ORG_ID}/badges?sort=recipient_email&page=2"
            if page == 1
            else None
        )
        return httpx.Response(200, json={"data": items, "metadata": {"next_page_url": nxt}})

    fake.on("GET", BADGES, handler)
    assert read(client(fake), sort="recipient_email") == ["badge-1", "badge-2"]
    assert {r.url.params.get("sort") for r in badge_gets(fake)} == {"recipient_email"}
