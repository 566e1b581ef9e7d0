"""The profile oracle: which badges a user's profile would show, and why not."""

from __future__ import annotations

import json
from typing import Any

from tests.simulator.graph_support import BASE, GraphHarness, award, harness, item_body, user

CERT = json.dumps({"displayName": "Azure Administrator", "issuingAuthority": "Microsoft"})


def _registered(h: GraphHarness, prioritize: bool = True) -> None:
    h.ready_connection()
    source = {"sourceId": "credlybadges", "displayName": "Credly", "webUrl": "https://c.example"}
    assert h.call("POST", "/admin/people/profileSources", source).status == 201
    if prioritize:
        setting = h.call("GET", "/admin/people/profilePropertySettings").json["value"][0]
        ours = f"{BASE}/v1.0/admin/people/profileSources(sourceId='credlybadges')"
        body = {"prioritizedSourceUrls": [ours, *setting["prioritizedSourceUrls"]]}
        url = f"/admin/people/profilePropertySettings/{setting['id']}"
        assert h.call("PATCH", url, body).status == 200


def _put(h: GraphHarness, item_id: str, body: dict[str, Any]) -> None:
    reply = h.call("PUT", f"/external/connections/credlybadges/items/{item_id}", body)
    assert reply.status == 200, reply.body


def test_registered_prioritized_item_shows_on_the_profile() -> None:
    h = harness()
    _registered(h)
    body = item_body("USER1@contoso.com", [award("Cloud Practitioner")])
    body["properties"]["certifications"] = [CERT, "not json"]
    _put(h, "u1", body)
    view = h.service.profile_view("user1@contoso.com")
    assert [a["displayName"] for a in view["awards"]] == ["Cloud Practitioner"]
    assert [c["displayName"] for c in view["certifications"]] == ["Azure Administrator"]
    assert view["sources"] == ["credlybadges"]
    assert view["problems"] == []
    assert h.service.profile_view("user2@contoso.com")["awards"] == []


def test_account_by_object_id_matches() -> None:
    h = harness()
    _registered(h)
    body = item_body()
    body["properties"]["account"] = json.dumps({"externalDirectoryObjectId": user(3)["id"]})
    _put(h, "u3", body)
    assert len(h.service.profile_view("user3@contoso.com")["awards"]) == 1


def test_source_not_in_the_prioritized_list_shows_nothing() -> None:
    h = harness()
    _registered(h, prioritize=False)
    _put(h, "u1", item_body())
    view = h.service.profile_view("user1@contoso.com")
    assert view["awards"] == []
    assert view["problems"] == ["credlybadges: the connection is not a prioritized profile source"]


def test_inactive_unlicensed_or_mailboxless_users_show_nothing() -> None:
    users = [
        user(1, accountEnabled=False),
        user(2, assignedLicenses=[]),
        user(3, hasMailbox=False),
    ]
    h = harness(users)
    _registered(h)
    expected = {
        1: "the account is disabled",
        2: "the user has no license",
        3: "the user has no Exchange Online mailbox",
    }
    for number, problem in expected.items():
        _put(h, f"u{number}", item_body(f"user{number}@contoso.com"))
        view = h.service.profile_view(f"user{number}@contoso.com")
        assert view["awards"] == []
        assert view["problems"] == [f"credlybadges: {problem}"]


def test_connection_no_longer_ready_shows_nothing() -> None:
    h = harness()
    _registered(h)
    _put(h, "u1", item_body())
    h.service.set_connection_state("credlybadges", "obsolete")
    assert h.service.profile_view("user1@contoso.com")["awards"] == []


def test_unknown_user() -> None:
    h = harness()
    assert h.service.profile_view("ghost@contoso.com")["problems"] == [
        "no directory user ghost@contoso.com"
    ]
