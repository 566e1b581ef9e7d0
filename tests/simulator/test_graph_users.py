"""The simulated Graph: authentication, permissions and the /users family, via handle()."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from credly_connector.simulator.core import SimRequest
from credly_connector.simulator.graph_filter import parse_user_filter
from credly_connector.simulator.graph_users import USER_PROPERTIES
from tests.simulator.graph_support import BASE, TENANT, GraphHarness, Reply, harness, user

# -- authentication and permissions ---------------------------------------------------------


def test_missing_token_is_401_in_graphs_error_shape() -> None:
    h = harness()
    reply = h.call("GET", "/users", token="")
    assert reply.status == 401
    error = reply.json["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert set(error["innerError"]) >= {"request-id", "date", "client-request-id"}
    assert "WWW-Authenticate" in reply.headers


def test_forged_token_is_401() -> None:
    h = harness()
    forged = h.token[:-4] + ("AAAA" if not h.token.endswith("AAAA") else "BBBB")
    assert h.call("GET", "/users", token=forged).code == "InvalidAuthenticationToken"


def test_expired_token_says_lifetime_validation_failed() -> None:
    h = harness()
    reply = h.call("GET", "/users", token=h.token_for(lifetime=-5))
    assert reply.status == 401
    assert "Lifetime validation failed, the token is expired" in reply.json["error"]["message"]


def test_token_without_roles_claim_is_401() -> None:
    h = harness()
    reply = h.call("GET", "/users", token=h.token_for(roles=None))
    assert reply.status == 401
    assert "Either scp or roles claim need to be present" in reply.json["error"]["message"]


def test_token_for_another_tenant_is_401() -> None:
    h = harness()
    other = h.token_for(tid="99999999-2222-3333-4444-555555555555")
    assert h.call("GET", "/users", token=other).status == 401


def test_token_for_another_audience_is_401() -> None:
    h = harness()
    reply = h.call("GET", "/users", token=h.token_for(aud="https://api.credly.com"))
    assert reply.status == 401
    assert "audience" in reply.json["error"]["message"].lower()


def test_missing_user_read_all_is_directory_403() -> None:
    h = harness()
    reply = h.call("GET", "/users", token=h.token_for(roles=("ExternalItem.ReadWrite.OwnedBy",)))
    assert reply.status == 403
    assert reply.code == "Authorization_RequestDenied"


def test_client_request_id_is_echoed() -> None:
    h = harness()
    reply = h.call("GET", "/users/nobody@contoso.com", headers={"client-request-id": "abc-123"})
    assert reply.headers["client-request-id"] == "abc-123"
    assert reply.json["error"]["innerError"]["client-request-id"] == "abc-123"


def test_other_versions_are_refused() -> None:
    h = harness()
    request = SimRequest(
        "GET", "/beta/users", {}, {"authorization": f"Bearer {h.token}"}, b"", BASE
    )
    reply = h.service.handle(request)
    assert reply.status == 400


# -- GET /users -------------------------------------------------------------------------------


def test_select_returns_only_selected_properties_plus_id() -> None:
    h = harness()
    reply = h.call("GET", "/users?$select=userPrincipalName,proxyAddresses")
    assert reply.status == 200
    first = reply.json["value"][0]
    assert set(first) == {"id", "userPrincipalName", "proxyAddresses"}
    assert first["proxyAddresses"][0].startswith("SMTP:")


def test_default_properties_leave_out_proxy_addresses_and_simulator_fields() -> None:
    h = harness()
    first = h.call("GET", "/users").json["value"][0]
    assert "proxyAddresses" not in first
    assert "accountEnabled" not in first
    assert "hasMailbox" not in first
    assert {"id", "userPrincipalName", "mail", "displayName"} <= set(first)


def test_select_of_unknown_property_is_400() -> None:
    h = harness()
    assert h.call("GET", "/users?$select=hasMailbox").status == 400


@pytest.mark.parametrize("top", ["0", "1000", "abc", "-1"])
def test_page_size_out_of_range_is_unsupported_query(top: str) -> None:
    h = harness()
    reply = h.call("GET", f"/users?$top={top}")
    assert reply.status == 400
    assert reply.code == "Request_UnsupportedQuery"
    assert "Invalid page size" in reply.json["error"]["message"]


def test_paging_follows_absolute_next_links_until_absent() -> None:
    h = harness([user(n) for n in range(1, 8)])
    seen: list[str] = []
    url = "/users?$top=3&$select=id,mail"
    pages = 0
    while url:
        reply = h.call("GET", url)
        assert reply.status == 200
        seen += [u["id"] for u in reply.json["value"]]
        assert all(set(u) == {"id", "mail"} for u in reply.json["value"])
        url = reply.json.get("@odata.nextLink", "")
        if url:
            assert url.startswith(f"{BASE}/v1.0/users?")
        pages += 1
    assert pages == 3
    assert len(seen) == 7 == len(set(seen))


def test_default_page_size_is_100() -> None:
    h = harness([user(n) for n in range(1, 151)])
    first = h.call("GET", "/users?$select=id").json
    assert len(first["value"]) == 100
    assert len(h.call("GET", first["@odata.nextLink"]).json["value"]) == 50


def test_user_added_between_pages_does_not_make_others_skip() -> None:
    h = harness([user(n) for n in range(10, 16)])
    first = h.call("GET", "/users?$top=3&$select=id").json
    h.directory.add(user(1))  # sorts before everyone already listed
    h.directory.delete(first["value"][0]["id"])
    rest = h.call("GET", first["@odata.nextLink"]).json["value"]
    assert [u["id"] for u in first["value"] + rest][1:] == [user(n)["id"] for n in range(11, 16)]


# -- $filter ----------------------------------------------------------------------------------


def _filtered(h: GraphHarness, expression: str) -> Reply:
    return h.call("GET", f"/users?$select=id,mail&$filter={quote(expression)}")


def _ids(reply: Reply) -> list[str]:
    return sorted(u["id"][-2:] for u in reply.json["value"])


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("userPrincipalName eq 'USER2@contoso.com'", ["02"]),
        ("mail eq 'user3@CONTOSO.com'", ["03"]),
        ("proxyAddresses/any(x:x eq 'smtp:alias4@contoso.com')", ["04"]),
        ("proxyAddresses/any(x:x eq 'smtp:user4@contoso.com')", ["04"]),  # primary too
        ("mail eq 'user1@contoso.com' or mail eq 'user5@contoso.com'", ["01", "05"]),
        ("userPrincipalName in ('user1@contoso.com','USER3@contoso.com')", ["01", "03"]),
        ("startswith(displayName,'user 1')", ["01"]),
        ("id in ('00000000-0000-0000-0000-000000000002')", ["02"]),
        ("accountEnabled eq true and (mail eq 'user2@contoso.com')", ["02"]),
        ("mail eq 'nobody@contoso.com'", []),
    ],
)
def test_default_filters(expression: str, expected: list[str]) -> None:
    h = harness()
    reply = _filtered(h, expression)
    assert reply.status == 200, reply.body
    assert _ids(reply) == expected


def test_odata_quote_doubling() -> None:
    h = harness([user(1, userPrincipalName="o'neil@contoso.com"), user(2)])
    assert _ids(_filtered(h, "userPrincipalName eq 'o''neil@contoso.com'")) == ["01"]


@pytest.mark.parametrize(
    "expression",
    [
        "endsWith(mail,'@contoso.com')",
        "mail ne 'user1@contoso.com'",
        "assignedLicenses/$count ne 0",
        "not(accountEnabled eq true)",
    ],
)
def test_advanced_filters_need_consistency_level_and_count(expression: str) -> None:
    h = harness(
        [user(1), user(2, assignedLicenses=[], mail="x@fabrikam.com", accountEnabled=False)]
    )
    plain = _filtered(h, expression)
    assert plain.status == 400
    assert plain.code == "Request_UnsupportedQuery"
    advanced = h.call(
        "GET",
        f"/users?$count=true&$select=id&$filter={quote(expression)}",
        headers={"ConsistencyLevel": "eventual"},
    )
    assert advanced.status == 200, advanced.body
    assert advanced.json["@odata.count"] == len(advanced.json["value"]) == 1


def test_unknown_filter_property_is_bad_request() -> None:
    h = harness()
    reply = _filtered(h, "favouriteColour eq 'blue'")
    assert reply.status == 400


def test_malformed_filter_is_400_not_a_crash() -> None:
    h = harness()
    for expression in ("mail eq", "mail eq 'a' or", "((mail eq 'a')", "mail eq 'unterminated"):
        assert _filtered(h, expression).status == 400


# -- GET /users/{id or UPN} --------------------------------------------------------------------


def test_get_user_by_id_and_by_upn() -> None:
    h = harness()
    by_upn = h.call("GET", "/users/USER2@contoso.com?$select=id,accountEnabled")
    assert by_upn.status == 200
    assert set(by_upn.json) - {"@odata.context"} == {"id", "accountEnabled"}
    by_id = h.call("GET", f"/users/{by_upn.json['id']}")
    assert by_id.json["userPrincipalName"] == "user2@contoso.com"


def test_guest_upn_with_encoded_hash() -> None:
    guest = user(7, userPrincipalName="ann_fabrikam.com#EXT#@contoso.onmicrosoft.com")
    h = harness([guest])
    assert h.call("GET", "/users/ann_fabrikam.com%23EXT%23@contoso.onmicrosoft.com").status == 200


def test_unknown_user_is_404_resource_not_found() -> None:
    h = harness()
    reply = h.call("GET", "/users/ghost@contoso.com")
    assert reply.status == 404
    assert reply.code == "Request_ResourceNotFound"


# -- /users/delta -----------------------------------------------------------------------------


def _drain(h: GraphHarness, url: str) -> tuple[list[dict[str, object]], str]:
    entries: list[dict[str, object]] = []
    while True:
        reply = h.call("GET", url)
        assert reply.status == 200, reply.body
        entries += reply.json["value"]
        if "@odata.deltaLink" in reply.json:
            return entries, reply.json["@odata.deltaLink"]
        url = reply.json["@odata.nextLink"]


def test_delta_full_sync_pages_then_returns_only_changes() -> None:
    h = harness([user(n) for n in range(1, 151)])
    entries, delta_link = _drain(h, "/users/delta?$select=id,mail,accountEnabled")
    assert len(entries) == 150
    assert set(entries[0]) == {"id", "mail", "accountEnabled"}
    assert delta_link.startswith(f"{BASE}/v1.0/users/delta?$deltatoken=")
    h.directory.update("user3@contoso.com", accountEnabled=False)
    h.directory.delete("user4@contoso.com")
    h.directory.add(user(500))
    changes, next_link = _drain(h, delta_link)
    by_id = {entry["id"]: entry for entry in changes}
    assert by_id[user(3)["id"]]["accountEnabled"] is False
    assert set(by_id[user(3)["id"]]) == {"id", "mail", "accountEnabled"}  # select kept
    assert by_id[user(4)["id"]] == {"id": user(4)["id"], "@removed": {"reason": "deleted"}}
    assert user(500)["id"] in by_id
    assert len(changes) == 3
    assert _drain(h, next_link)[0] == []


def test_delta_does_not_support_top() -> None:
    h = harness()
    assert h.call("GET", "/users/delta?$top=5").code == "Request_UnsupportedQuery"


def test_delta_filter_only_by_id() -> None:
    h = harness()
    by_id = quote(f"id eq '{user(2)['id']}'")
    ok = h.call("GET", f"/users/delta?$filter={by_id}")
    assert ok.status == 200
    assert [u["id"] for u in ok.json["value"]] == [user(2)["id"]]
    by_mail = quote("mail eq 'a@b.c'")
    assert h.call("GET", f"/users/delta?$filter={by_mail}").status == 400


def test_delta_token_latest_returns_just_a_delta_link() -> None:
    h = harness()
    reply = h.call("GET", "/users/delta?$deltatoken=latest")
    assert reply.json["value"] == []
    h.directory.update("user1@contoso.com", displayName="Renamed")
    changes, _ = _drain(h, reply.json["@odata.deltaLink"])
    assert [c["id"] for c in changes] == [user(1)["id"]]


def test_expired_delta_token_is_400_sync_state_not_found_by_default() -> None:
    # Directory resources: 400 syncStateNotFound (Microsoft 365 Dev blog on token lifetimes).
    h = harness()
    _, delta_link = _drain(h, "/users/delta?$select=id,mail")
    h.service.expire_delta_tokens()
    reply = h.call("GET", delta_link)
    assert (reply.status, reply.code) == (400, "syncStateNotFound")
    assert "Location" not in reply.headers


def test_expired_delta_token_can_be_410_with_restart_location() -> None:
    h = harness(scenario={"delta_expired_status": 410})
    _, delta_link = _drain(h, "/users/delta?$select=id,mail")
    h.service.expire_delta_tokens()
    reply = h.call("GET", delta_link)
    assert reply.status == 410
    assert reply.code == "syncStateNotFound"
    assert reply.headers["Location"].startswith(f"{BASE}/v1.0/users/delta")
    assert "select=id%2Cmail" in reply.headers["Location"] or "id,mail" in reply.headers["Location"]


def test_delta_token_expires_with_age_and_code_is_a_switch() -> None:
    h = harness(
        scenario={
            "delta_token_max_age_seconds": 60,
            "delta_expired_code": "resyncRequired",
            "delta_expired_status": 410,
        }
    )
    _, delta_link = _drain(h, "/users/delta")
    h.clock.advance(30)
    assert h.call("GET", delta_link).status == 200
    h.clock.advance(31)
    reply = h.call("GET", delta_link)
    assert (reply.status, reply.code) == (410, "resyncRequired")


def test_garbage_delta_token_is_400() -> None:
    h = harness()
    assert h.call("GET", "/users/delta?$deltatoken=%%%notatoken").status == 400


def test_tenant_constant_matches_directory() -> None:
    assert harness().directory.tenant_id == TENANT


# -- index-backed lookups agree with a full scan ----------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "mail eq 'USER2@contoso.com'",
        "proxyAddresses/any(x:x eq 'SMTP:alias3@contoso.com')",
        "userPrincipalName in ('user1@contoso.com','nobody@x.com') or mail eq 'user4@contoso.com'",
        "mail eq 'user1@contoso.com' and accountEnabled eq false",
        "mail eq 'user1@contoso.com' or startswith(displayName,'User 5')",
        "(id eq '00000000-0000-0000-0000-000000000002') and (mail eq 'user2@contoso.com')",
    ],
)
def test_indexed_filters_match_a_full_scan(expression: str) -> None:
    users = [user(n) for n in range(1, 7)]
    users[0]["accountEnabled"] = False
    h = harness(users)
    parsed = parse_user_filter(expression, USER_PROPERTIES)
    expected = sorted(u["id"][-2:] for u in users if parsed.predicate(u))
    assert _ids(_filtered(h, expression)) == expected


def test_lookups_follow_directory_changes() -> None:
    h = harness()
    assert _ids(_filtered(h, "mail eq 'user2@contoso.com'")) == ["02"]
    h.directory.update("user2@contoso.com", mail="renamed@contoso.com")
    assert _ids(_filtered(h, "mail eq 'user2@contoso.com'")) == []
    assert _ids(_filtered(h, "mail eq 'renamed@contoso.com'")) == ["02"]
    h.directory.delete(user(2)["id"])
    assert _ids(_filtered(h, "mail eq 'renamed@contoso.com'")) == []
    h.directory.add(user(9, mail="renamed@contoso.com"))
    assert _ids(_filtered(h, "mail eq 'renamed@contoso.com'")) == ["09"]


def test_which_filters_can_use_the_index() -> None:
    def keys(expression: str) -> object:
        return parse_user_filter(expression, USER_PROPERTIES).keys

    assert keys("mail eq 'A@x.com'") == {("mail", "a@x.com")}
    assert keys("proxyAddresses/any(x:x eq 'SMTP:a@x.com')") == {("proxyAddresses", "smtp:a@x.com")}
    assert keys("mail eq 'a@x.com' or userPrincipalName in ('b@x.com')") == {
        ("mail", "a@x.com"),
        ("userPrincipalName", "b@x.com"),
    }
    assert keys("mail eq 'a@x.com' and accountEnabled eq true") == {("mail", "a@x.com")}
    assert keys("mail eq 'a@x.com' or startswith(displayName,'a')") is None
    assert keys("displayName eq 'A'") is None


def test_delta_with_select_reports_only_changes_to_selected_properties() -> None:
    h = harness()
    _, selected_link = _drain(h, "/users/delta?$select=id,mail,accountEnabled")
    _, default_link = _drain(h, "/users/delta")
    h.directory.update("user1@contoso.com", assignedLicenses=[])  # not selected
    h.directory.update("user2@contoso.com", mail="moved@contoso.com")  # selected
    h.directory.add(user(9))
    h.directory.delete("user3@contoso.com")
    changes, _ = _drain(h, selected_link)
    assert sorted(str(c["id"])[-2:] for c in changes) == ["02", "03", "09"]
    everything, _ = _drain(h, default_link)
    assert sorted(str(c["id"])[-2:] for c in everything) == ["01", "02", "03", "09"]


def test_delta_with_select_after_a_full_reload_replays_rather_than_skips() -> None:
    h = harness([user(n) for n in range(1, 4)])
    latest = h.call("GET", "/users/delta?$deltatoken=latest&$select=id,mail").json
    h.directory.update("user1@contoso.com", displayName="Renamed")  # before any snapshot
    changes, _ = _drain(h, latest["@odata.deltaLink"])
    assert [c["id"] for c in changes] == [user(1)["id"]]


def test_delta_reports_a_change_of_a_derived_property() -> None:
    h = harness()
    _, link = _drain(h, "/users/delta?$select=id,assignedPlans")
    h.directory.update("user4@contoso.com", hasMailbox=False)
    changes, _ = _drain(h, link)
    assert changes == [{"id": user(4)["id"], "assignedPlans": []}]
