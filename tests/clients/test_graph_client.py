"""GraphClient over httpx.MockTransport: paging, delta, lookups, writes, batch, errors."""

from __future__ import annotations

import json
from typing import Any, cast
from urllib.parse import unquote

import httpx
import pytest

from credly_connector.errors import ForbiddenHostError
from credly_connector.graph.auth import EntraTokenProvider
from credly_connector.graph.batch import BatchRequest, build_batch_body, match_responses
from credly_connector.graph.client import GraphClient
from credly_connector.graph.errors import (
    DeltaExpiredError,
    GraphError,
    GraphPermissionError,
    GraphUnavailable,
)
from credly_connector.net import build_http_client
from tests.clients.helpers import GRAPH, FakeServer, json_response, make_settings

V1 = "/v1.0"


class StubTokens:
    def __init__(self) -> None:
        self.issued = 0
        self.refreshes = 0

    def get_token(self) -> str:
        self.issued += 1
        return f"graph-token-{self.refreshes}"

    def force_refresh(self) -> None:
        self.refreshes += 1


def graph(fake: FakeServer, tokens: StubTokens | None = None, **kw: Any) -> GraphClient:
    settings = make_settings()
    http = build_http_client(settings, "microsoft", transport=fake.transport())
    kw.setdefault("sleep", lambda _s: None)
    return GraphClient(settings, http, cast(EntraTokenProvider, tokens or StubTokens()), **kw)


def user(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-0000-0000-{n:012d}",
        "userPrincipalName": f"u{n}@contoso.com",
    } | fields


def error(status: int, code: str, message: str = "nope", **headers: str) -> Any:
    body = {"error": {"code": code, "message": message, "innerError": {"request-id": "req-1"}}}
    return json_response(status, body, headers=headers or None)


def test_iter_users_selects_tops_and_follows_next_links(fake: FakeServer) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("$skiptoken") == "2":
            return httpx.Response(200, json={"value": [user(3)]})
        return httpx.Response(
            200,
            json={"value": [user(1), user(2)], "@odata.nextLink": f"{GRAPH}/users?$skiptoken=2"},
        )

    fake.on("GET", f"{V1}/users", handler)
    users = list(graph(fake).iter_users())
    assert [u.user_principal_name for u in users] == [f"u{n}@contoso.com" for n in (1, 2, 3)]
    first = fake.seen[0]
    assert first.url.params["$top"] == "999"
    assert "proxyAddresses" in first.url.params["$select"]
    assert first.headers["Authorization"] == "Bearer graph-token-0"


def test_next_link_to_another_host_is_refused(fake: FakeServer) -> None:
    fake.on(
        "GET",
        f"{V1}/users",
        json_response(200, {"value": [], "@odata.nextLink": "https://evil.example.net/users"}),
    )
    with pytest.raises(ForbiddenHostError):
        list(graph(fake).iter_users())
    assert len(fake.seen) == 1


def test_delta_collects_changes_removals_and_the_delta_link(fake: FakeServer) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "token=page2" in str(request.url):
            return httpx.Response(
                200,
                json={
                    "value": [{"id": "gone-1", "@removed": {"reason": "deleted"}}, user(2)],
                    "@odata.deltaLink": f"{GRAPH}/users/delta?$deltatoken=next",
                },
            )
        return httpx.Response(
            200, json={"value": [user(1)], "@odata.nextLink": f"{GRAPH}/users/delta?token=page2"}
        )

    fake.on("GET", f"{V1}/users/delta", handler)
    client = graph(fake)
    result = client.users_delta(None)
    assert [u.id for u in result.users] == [user(1)["id"], user(2)["id"]]
    assert result.removed == [("gone-1", "deleted")]
    assert result.delta_link.endswith("$deltatoken=next")
    assert "$select" in fake.seen[0].url.params
    client.users_delta(result.delta_link)
    resumed = fake.seen[2]
    assert "$deltatoken=next" in str(resumed.url) and "$select" not in resumed.url.params


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (410, "resyncRequired"),
        (400, "syncStateNotFound"),
        (400, "SyncStateNotFound"),  # Outlook's spelling; codes are compared in any case
        (400, "SYNCSTATEINVALID"),
        (410, "other"),
    ],
)
def test_expired_delta_link(fake: FakeServer, status: int, code: str) -> None:
    fake.on("GET", f"{V1}/users/delta", error(status, code))
    with pytest.raises(DeltaExpiredError):
        graph(fake).users_delta(f"{GRAPH}/users/delta?$deltatoken=old")


def test_an_unrelated_400_on_delta_is_not_an_expiry(fake: FakeServer) -> None:
    fake.on("GET", f"{V1}/users/delta", error(400, "Request_BadRequest"))
    with pytest.raises(GraphError) as caught:
        graph(fake).users_delta(f"{GRAPH}/users/delta?$deltatoken=old")
    assert not isinstance(caught.value, DeltaExpiredError)


def test_get_user_quotes_the_key_and_returns_none_when_absent(fake: FakeServer) -> None:
    fake.on("GET", f"{V1}/users/", error(404, "Request_ResourceNotFound"))
    assert graph(fake).get_user("guest_x.com#EXT#@contoso.onmicrosoft.com") is None
    assert "%23EXT%23" in str(fake.seen[0].url.raw_path)


def test_find_by_addresses_uses_one_filter_for_few_addresses(fake: FakeServer) -> None:
    fake.on("GET", f"{V1}/users", json_response(200, {"value": [user(1)]}))
    found = graph(fake).find_users_by_addresses(["O'Neil@Contoso.com", "o'neil@contoso.com"])
    assert [u.id for u in found] == [user(1)["id"]]
    (request,) = fake.seen
    odata = request.url.params["$filter"]
    assert "userPrincipalName in ('o''neil@contoso.com')" in odata
    assert "mail eq 'o''neil@contoso.com'" in odata
    assert "proxyAddresses/any(x:x eq 'smtp:o''neil@contoso.com')" in odata


def test_find_by_many_addresses_batches_and_falls_back_per_entry(fake: FakeServer) -> None:
    addresses = [f"p{n}@contoso.com" for n in range(12)]  # 3 filter chunks

    def batch(request: httpx.Request) -> httpx.Response:
        entries = json.loads(request.content)["requests"]
        responses = []
        for entry in entries:
            if entry["id"] == "1":
                responses.append({"id": "1", "status": 429, "headers": {"Retry-After": "1"}})
            else:
                n = int(entry["id"])
                responses.append({"id": entry["id"], "status": 200, "body": {"value": [user(n)]}})
        return httpx.Response(200, json={"responses": list(reversed(responses))})

    fake.on("POST", f"{V1}/$batch", batch)
    fake.on("GET", f"{V1}/users", json_response(200, {"value": [user(99)]}))
    client = graph(fake)
    found = client.find_users_by_addresses(addresses)
    assert sorted(u.id for u in found) == sorted(user(n)["id"] for n in (0, 2, 99))
    assert [r.method for r in fake.seen] == ["POST", "GET"]  # never one request per address
    entry_urls = [e["url"] for e in json.loads(fake.seen[0].content)["requests"]]
    assert all(u.startswith("/users?") for u in entry_urls)
    assert "p0@contoso.com" in unquote(entry_urls[0])


def test_search_by_name(fake: FakeServer) -> None:
    fake.on("GET", f"{V1}/users", json_response(200, {"value": [user(1, displayName="Ada")]}))
    assert graph(fake).search_users_by_name("Ada O'Hara")[0].display_name == "Ada"
    assert fake.seen[0].url.params["$filter"] == "startswith(displayName,'Ada O''Hara')"


def test_expired_token_gets_one_refresh(fake: FakeServer) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"].endswith("-0"):
            return httpx.Response(
                401,
                json={"error": {"code": "InvalidAuthenticationToken", "message": "token expired"}},
            )
        return httpx.Response(200, json={"id": "credlybadges", "state": "ready"})

    fake.on("GET", f"{V1}/external/connections/credlybadges", handler)
    tokens = StubTokens()
    assert graph(fake, tokens).get_connection("credlybadges") == {
        "id": "credlybadges",
        "state": "ready",
    }
    assert tokens.refreshes == 1 and len(fake.seen) == 2


def test_missing_permission_names_it(fake: FakeServer) -> None:
    fake.on(
        "GET",
        f"{V1}/users",
        error(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        ),
    )
    with pytest.raises(GraphPermissionError) as caught:
        list(graph(fake).iter_users())
    exc = caught.value
    assert exc.permission == "User.Read.All"
    assert "admin consent" in exc.hint
    assert exc.request_id == "req-1"
    assert exc.exit_code == 2
    assert "graph-token" not in str(exc) + repr(exc) + exc.hint


def test_token_without_roles_is_a_permission_error(fake: FakeServer) -> None:
    fake.on(
        "GET",
        f"{V1}/admin/people/profileSources",
        error(401, "InvalidAuthenticationToken", "Either scp or roles claim need to be present"),
    )
    with pytest.raises(GraphPermissionError) as caught:
        graph(fake).list_profile_sources()
    assert caught.value.permission == "PeopleSettings.ReadWrite.All"


def test_throttling_is_waited_out_then_reported(fake: FakeServer) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "4"})])
    fake.on(
        "PUT",
        f"{V1}/external/connections/c1/items/",
        lambda r: next(answers, None) or httpx.Response(200, json={}),
    )
    sleeps: list[float] = []
    client = graph(fake, sleep=sleeps.append)
    client.put_item("c1", "abc", {"acl": [], "properties": {}})
    assert sleeps == [4.0]
    assert client.stats()["throttle_waits"] == 1
    fake.on("PUT", f"{V1}/external/connections/c1/items/", error(503, "serviceNotAvailable"))
    with pytest.raises(GraphUnavailable) as caught:
        client.put_item("c1", "abc", {"acl": [], "properties": {}})
    assert caught.value.kind == "server"


def test_malformed_json_on_a_read_is_retried_then_reported(fake: FakeServer) -> None:
    fake.on("GET", f"{V1}/external/connections", lambda r: httpx.Response(200, content=b"{oops"))
    with pytest.raises(GraphUnavailable) as caught:
        graph(fake).list_connections()
    assert caught.value.kind == "malformed"
    assert len(fake.seen) == 3


def test_create_connection_409_reads_it_back(fake: FakeServer) -> None:
    fake.on("POST", f"{V1}/external/connections", error(409, "Conflict"))
    fake.on(
        "GET",
        f"{V1}/external/connections/credlybadges",
        json_response(200, {"id": "credlybadges", "contentCategory": "people"}),
    )
    created = graph(fake).create_connection("credlybadges", "Credly badges", "Credly awards")
    assert created["contentCategory"] == "people"
    sent = json.loads(fake.seen[0].content)
    assert sent == {
        "id": "credlybadges",
        "name": "Credly badges",
        "description": "Credly awards",
        "contentCategory": "people",
    }


def test_register_schema_returns_the_operation_url(fake: FakeServer) -> None:
    location = f"{GRAPH}/external/connections/credlybadges/operations/op-1"
    fake.on(
        "PATCH",
        f"{V1}/external/connections/credlybadges/schema",
        json_response(202, {}, headers={"Location": location}),
    )
    fake.on(
        "GET",
        f"{V1}/external/connections/credlybadges/operations/op-1",
        json_response(200, {"id": "op-1", "status": "inprogress"}),
    )
    client = graph(fake)
    url = client.register_schema("credlybadges", [{"name": "account", "type": "string"}])
    assert url == location
    assert client.get_operation(url)["status"] == "inprogress"
    # The person labels are evolvable enum members: the PATCH must opt in to them.
    assert fake.seen[0].headers["Prefer"] == "respond-async, include-unknown-enum-members"
    assert json.loads(fake.seen[0].content)["baseType"] == "microsoft.graph.externalItem"


def test_items_get_and_delete_report_absence(fake: FakeServer) -> None:
    fake.on("GET", f"{V1}/external/connections/c1/items/", error(404, "itemNotFound"))
    fake.on("DELETE", f"{V1}/external/connections/c1/items/", error(404, "itemNotFound"))
    client = graph(fake)
    assert client.get_item("c1", "abc") is None
    assert client.delete_item("c1", "abc") is False
    fake.on("DELETE", f"{V1}/external/connections/c1/items/", lambda r: httpx.Response(204))
    assert client.delete_item("c1", "abc") is True


def test_people_admin_calls(fake: FakeServer) -> None:
    fake.on("POST", f"{V1}/admin/people/profileSources", error(409, "conflict"))
    fake.on(
        "GET",
        f"{V1}/admin/people/profileSources(sourceId='credlybadges')",
        json_response(200, {"sourceId": "credlybadges"}),
    )
    fake.on("PATCH", f"{V1}/admin/people/profilePropertySettings/s1", json_response(200, {}))
    client = graph(fake)
    assert (
        client.create_profile_source("credlybadges", "Credly", "https://www.credly.com/org/x")[
            "sourceId"
        ]
        == "credlybadges"
    )
    client.update_prioritized_sources("s1", ["a", "b"])
    assert json.loads(fake.seen[-1].content) == {"prioritizedSourceUrls": ["a", "b"]}
    assert client.profile_source_url("credlybadges") == (
        f"{GRAPH}/admin/people/profileSources(sourceId='credlybadges')"
    )


def test_batch_matches_answers_by_id(fake: FakeServer) -> None:
    requests = [
        BatchRequest(id=str(n), method="PUT", url=f"/external/connections/c1/items/i{n}", body={})
        for n in range(3)
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "responses": [
                    {"id": "2", "status": 429, "headers": {"Retry-After": "7"}, "body": {}},
                    {"id": "0", "status": 200, "headers": {}, "body": {}},
                ]
            },
        )

    fake.on("POST", f"{V1}/$batch", handler)
    client = graph(fake)
    answers = client.batch(requests)
    assert [(a.id, a.status) for a in answers] == [("0", 200), ("1", 0), ("2", 429)]
    assert answers[2].retry_after == 7.0 and answers[2].retryable
    assert answers[1].retryable and not answers[1].ok
    sent = json.loads(fake.seen[0].content)["requests"]
    assert sent[0]["headers"]["Content-Type"] == "application/json"
    assert client.request_counts.as_dict() == {"graph.batch": 1, "graph.batch.entries": 3}


def test_batch_limits() -> None:
    with pytest.raises(ValueError):
        build_batch_body([BatchRequest(id=str(n), method="GET", url="/users") for n in range(21)])
    with pytest.raises(ValueError):
        build_batch_body(
            [BatchRequest(id="a", method="GET", url="/u"), BatchRequest("A", "GET", "/u")]
        )
    assert match_responses([BatchRequest("1", "GET", "/u")], {"responses": "junk"})[0].status == 0


def test_a_token_echoed_by_graph_is_scrubbed(fake: FakeServer) -> None:
    from credly_connector.secrets import register_secret_value

    register_secret_value("graph-token-0")
    fake.on("GET", f"{V1}/external/connections", error(400, "BadRequest", "bad graph-token-0 x"))
    with pytest.raises(GraphError) as caught:
        graph(fake).list_connections()
    text = str(caught.value) + repr(caught.value) + caught.value.hint
    assert "graph-token-0" not in text + str(caught.value.graph_message)
    assert "BadRequest" in text


def test_connection_and_schema_reads_opt_in_to_evolvable_enum_members(fake: FakeServer) -> None:
    # The person labels sit after unknownFutureValue in Graph's label enum: without the opt-in
    # Graph answers unknownFutureValue in their place.
    fake.on("GET", f"{V1}/external/connections", json_response(200, {"value": []}))
    fake.on("GET", f"{V1}/external/connections/credlybadges", json_response(200, {"id": "c"}))
    fake.on(
        "GET", f"{V1}/external/connections/credlybadges/schema", json_response(200, {"id": "s"})
    )
    client = graph(fake)
    client.list_connections()
    client.get_connection("credlybadges")
    client.get_schema("credlybadges")
    assert [r.headers.get("Prefer") for r in fake.seen] == ["include-unknown-enum-members"] * 3


def test_a_missing_default_profile_setting_is_created_with_our_source(fake: FakeServer) -> None:
    fake.on(
        "POST",
        f"{V1}/admin/people/profilePropertySettings",
        json_response(201, {"id": "new", "prioritizedSourceUrls": ["u"]}),
    )
    created = graph(fake).create_profile_property_setting(["u"])
    assert created["id"] == "new"
    assert json.loads(fake.seen[0].content) == {"prioritizedSourceUrls": ["u"]}


def test_batched_connection_reads_opt_in_too(fake: FakeServer) -> None:
    fake.on("POST", f"{V1}/$batch", json_response(200, {"responses": []}))
    graph(fake).batch(
        [
            BatchRequest(id="1", method="GET", url="/external/connections/credlybadges/schema"),
            BatchRequest(id="2", method="DELETE", url="/external/connections/c/items/abc"),
        ]
    )
    entries = json.loads(fake.seen[0].content)["requests"]
    assert entries[0]["headers"] == {"Prefer": "include-unknown-enum-members"}
    assert "headers" not in entries[1]
