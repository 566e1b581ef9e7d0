"""The simulated Graph: external connections, schema operations, items and throttling."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.simulator.graph_support import (
    APP_ID,
    BASE,
    PEOPLE_SCHEMA,
    PREFER_UNKNOWN,
    TENANT,
    GraphHarness,
    account,
    award,
    harness,
    item_body,
)

# -- connections ------------------------------------------------------------------------------


def test_create_stores_content_category_and_starts_in_draft() -> None:
    h = harness()
    reply = h.call(
        "POST",
        "/external/connections",
        {"id": "credlybadges", "name": "Credly", "description": "d", "contentCategory": "people"},
    )
    assert reply.status == 201
    assert reply.json["contentCategory"] == "people"
    assert reply.json["state"] == "draft"
    got = h.call("GET", "/external/connections/credlybadges").json
    assert (got["contentCategory"], got["state"]) == ("people", "draft")
    listed = h.call("GET", "/external/connections").json["value"]
    assert [c["id"] for c in listed] == ["credlybadges"]


def test_create_twice_is_409() -> None:
    h = harness()
    body = {"id": "credlybadges", "name": "Credly", "description": "d"}
    assert h.call("POST", "/external/connections", body).status == 201
    assert h.call("POST", "/external/connections", body).status == 409


@pytest.mark.parametrize(
    "connection_id",
    [
        "ab",
        "a" * 33,
        "credly-badges",
        "credly badges",
        "MicrosoftCredly",
        "Teams",
        "sharepoint",
        "",
    ],
)
def test_connection_id_rules(connection_id: str) -> None:
    h = harness()
    reply = h.call("POST", "/external/connections", {"id": connection_id, "name": "x"})
    assert reply.status == 400, connection_id


def test_connection_needs_a_name_and_a_known_category() -> None:
    h = harness()
    assert h.call("POST", "/external/connections", {"id": "abc"}).status == 400
    bad = {"id": "abc", "name": "x", "contentCategory": "peoples"}
    assert h.call("POST", "/external/connections", bad).status == 400


def test_malformed_json_body_is_400() -> None:
    h = harness()
    assert h.call("POST", "/external/connections", b"{not json").status == 400


def test_delete_connection_then_404() -> None:
    h = harness()
    h.ready_connection()
    assert h.call("DELETE", "/external/connections/credlybadges").status == 204
    reply = h.call("GET", "/external/connections/credlybadges")
    assert reply.status == 404
    assert h.service.items("credlybadges") == {}


def test_connection_calls_need_external_connection_permission() -> None:
    h = harness()
    token = h.token_for(roles=("User.Read.All",))
    reply = h.call("POST", "/external/connections", {"id": "abc", "name": "x"}, token=token)
    assert reply.status == 403
    assert reply.code == "accessDenied"
    assert h.call("GET", "/external/connections", token=token).status == 403


def test_owned_by_permission_reaches_only_connections_the_app_is_authorized_to() -> None:
    # Permissions reference: OwnedBy "can only read and write external connections that it is
    # authorized to, or it can create new external connections".
    other_app = "bbbbbbbb-0000-0000-0000-000000000002"
    scenario = {
        "connections": [
            {
                "id": "CredlyMicrosoft",
                "name": "Credly",
                "description": "d",
                "contentCategory": "people",
            },
        ]
    }
    h = harness(scenario=scenario)
    assert h.call("GET", "/external/connections/CredlyMicrosoft").status == 403
    assert h.call("GET", "/external/connections/CredlyMicrosoft/schema").status == 403
    assert h.call("GET", "/external/connections").json["value"] == []
    assert h.call("DELETE", "/external/connections/CredlyMicrosoft").status == 403
    h.ready_connection()
    listed = h.call("GET", "/external/connections").json["value"]
    assert [c["id"] for c in listed] == ["credlybadges"]
    # Another OwnedBy app does not see ours; one named in authorizedAppIds would.
    stranger = h.token_for(appid=other_app)
    assert h.call("GET", "/external/connections/credlybadges", token=stranger).status == 403
    h.service.external.connections["credlybadges"].authorized_app_ids.append(other_app)
    assert h.call("GET", "/external/connections/credlybadges", token=stranger).status == 200
    read_all = h.token_for(roles=("ExternalConnection.Read.All",))
    listed = h.call("GET", "/external/connections", token=read_all).json["value"]
    assert {c["id"] for c in listed} == {"CredlyMicrosoft", "credlybadges"}
    all_token = h.token_for(roles=("ExternalConnection.ReadWrite.All",))
    assert h.call("DELETE", "/external/connections/CredlyMicrosoft", token=all_token).status == 204


def test_owned_by_can_be_lenient_with_the_switch() -> None:
    scenario = {
        "enforce_owned_by": False,
        "connections": [{"id": "CredlyMicrosoft", "name": "C", "contentCategory": "people"}],
    }
    h = harness(scenario=scenario)
    assert h.call("GET", "/external/connections/CredlyMicrosoft").status == 200


def test_description_is_required_on_create() -> None:
    # The create page lists description as required.
    h = harness()
    body = {"id": "credlybadges", "name": "Credly", "contentCategory": "people"}
    reply = h.call("POST", "/external/connections", body)
    assert reply.status == 400
    assert "description" in reply.json["error"]["message"]
    assert h.call("POST", "/external/connections", {**body, "description": ""}).status == 201


# -- evolvable enum members (person labels) --------------------------------------------------


def test_schema_patch_with_person_labels_needs_the_prefer_header() -> None:
    h = harness()
    _create(h)
    reply = h.call("PATCH", "/external/connections/credlybadges/schema", PEOPLE_SCHEMA)
    assert reply.status == 400
    assert reply.code == "BadRequest"
    assert "personAccount" in reply.json["error"]["message"]
    both = {"Prefer": "respond-async, include-unknown-enum-members"}
    reply = h.call(
        "PATCH", "/external/connections/credlybadges/schema", PEOPLE_SCHEMA, headers=both
    )
    assert reply.status == 202


def test_schema_read_without_the_header_answers_unknown_future_value() -> None:
    h = harness()
    h.ready_connection()
    plain = h.call("GET", "/external/connections/credlybadges/schema")
    assert plain.status == 200
    assert "Preference-Applied" not in plain.headers
    assert [p["labels"] for p in plain.json["properties"]] == [["unknownFutureValue"]] * 3
    opted = h.call("GET", "/external/connections/credlybadges/schema", headers=PREFER_UNKNOWN)
    assert opted.headers["Preference-Applied"] == "include-unknown-enum-members"
    assert [p["labels"] for p in opted.json["properties"]] == [
        ["personAccount"],
        ["personAwards"],
        ["personCertifications"],
    ]


def test_non_evolvable_labels_need_no_header() -> None:
    h = harness()
    _create(h, "uncategorized")
    schema = {
        "baseType": "microsoft.graph.externalItem",
        "properties": [{"name": "title", "type": "string", "labels": ["title"]}],
    }
    assert h.call("PATCH", "/external/connections/credlybadges/schema", schema).status == 202
    h.clock.advance(3600)
    got = h.call("GET", "/external/connections/credlybadges/schema").json
    assert got["properties"][0]["labels"] == ["title"]


def test_the_header_rule_applies_inside_batch() -> None:
    h = harness()
    h.ready_connection()
    url = "/external/connections/credlybadges/schema"
    requests = [
        {"id": "1", "method": "GET", "url": url},
        {"id": "2", "method": "GET", "url": url, "headers": PREFER_UNKNOWN},
    ]
    answers = {
        a["id"]: a for a in h.call("POST", "/$batch", {"requests": requests}).json["responses"]
    }
    assert answers["1"]["body"]["properties"][0]["labels"] == ["unknownFutureValue"]
    assert answers["2"]["body"]["properties"][0]["labels"] == ["personAccount"]


def test_lenient_switch_keeps_the_older_model() -> None:
    h = harness(scenario={"enforce_evolvable_enums": False})
    _create(h)
    assert h.call("PATCH", "/external/connections/credlybadges/schema", PEOPLE_SCHEMA).status == 202
    h.clock.advance(3600)
    got = h.call("GET", "/external/connections/credlybadges/schema").json
    assert got["properties"][0]["labels"] == ["personAccount"]
    h.service.set_evolvable_enums(True)
    got = h.call("GET", "/external/connections/credlybadges/schema").json
    assert got["properties"][0]["labels"] == ["unknownFutureValue"]


# -- US Government clouds ---------------------------------------------------------------------


@pytest.mark.parametrize("cloud", ["usgov", "usgovdod"])
def test_us_government_graph_has_no_content_category_or_person_labels(cloud: str) -> None:
    h = harness(scenario={"cloud": cloud})
    body = {"id": "credlybadges", "name": "Credly", "description": "d", "contentCategory": "people"}
    assert h.call("POST", "/external/connections", body).status == 400
    del body["contentCategory"]
    created = h.call("POST", "/external/connections", body)
    assert created.status == 201
    assert "contentCategory" not in created.json
    reply = h.call(
        "PATCH",
        "/external/connections/credlybadges/schema",
        PEOPLE_SCHEMA,
        headers=PREFER_UNKNOWN,
    )
    assert reply.status == 400
    assert "unknown label" in reply.json["error"]["message"]


# -- schema and operations -------------------------------------------------------------------


def _create(h: GraphHarness, category: str = "people") -> None:
    body = {"id": "credlybadges", "name": "Credly", "description": "d", "contentCategory": category}
    assert h.call("POST", "/external/connections", body).status == 201


def _register(h: GraphHarness, schema: dict[str, Any]) -> str:
    reply = h.call(
        "PATCH", "/external/connections/credlybadges/schema", schema, headers=PREFER_UNKNOWN
    )
    assert reply.status == 202, reply.body
    location = reply.headers["Location"]
    assert location.startswith(f"{BASE}/v1.0/external/connections/credlybadges/operations/")
    return location


def test_schema_operation_completes_after_the_configured_delay() -> None:
    h = harness(scenario={"schema_delay_seconds": 300})
    _create(h)
    assert (
        h.call("GET", "/external/connections/credlybadges/schema", headers=PREFER_UNKNOWN).status
        == 404
    )
    location = _register(h, PEOPLE_SCHEMA)
    operation = h.call("GET", location).json
    assert operation["status"] == "inprogress"
    assert operation["id"] == location.rsplit("/", 1)[1]
    assert h.call("GET", "/external/connections/credlybadges").json["state"] == "draft"
    assert (
        h.call("GET", "/external/connections/credlybadges/schema", headers=PREFER_UNKNOWN).status
        == 404
    )
    h.clock.advance(301)
    assert h.call("GET", location).json["status"] == "completed"
    assert h.call("GET", "/external/connections/credlybadges").json["state"] == "ready"
    schema = h.call("GET", "/external/connections/credlybadges/schema", headers=PREFER_UNKNOWN).json
    assert schema["baseType"] == "microsoft.graph.externalItem"
    assert [p["name"] for p in schema["properties"]] == ["account", "awards", "certifications"]


def test_schema_delay_can_change_while_running() -> None:
    h = harness(scenario={"schema_delay_seconds": 600})
    _create(h)
    location = _register(h, PEOPLE_SCHEMA)
    h.service.set_schema_delay(0)
    assert h.call("GET", location).json["status"] == "completed"


def _with(change: Any) -> dict[str, Any]:
    schema = copy.deepcopy(PEOPLE_SCHEMA)
    change(schema["properties"])
    return schema


@pytest.mark.parametrize(
    "schema",
    [
        _with(lambda p: p[1].update(name="award-list")),
        _with(lambda p: p[1].update(name="a" * 33)),
        _with(lambda p: p[1].update(labels=["personAccount"], type="string")),
        _with(lambda p: p[0].update(labels=[])),
        _with(lambda p: p[1].update(type="string")),
        _with(lambda p: p[2].update(name="awards")),
        _with(lambda p: p.append({"name": "boss", "type": "string", "labels": ["personManager"]})),
    ],
    ids=[
        "punctuation",
        "too-long",
        "two-accounts",
        "no-account",
        "awards-not-collection",
        "duplicate",
        "unsupported-label",
    ],
)
def test_invalid_people_schema_fails_its_operation(schema: dict[str, Any]) -> None:
    h = harness()
    _create(h)
    operation = h.call("GET", _register(h, schema)).json
    assert operation["status"] == "failed"
    assert operation["error"]["message"]
    assert h.call("GET", "/external/connections/credlybadges").json["state"] == "draft"


@pytest.mark.parametrize(
    "schema",
    [
        {"baseType": "microsoft.graph.item", "properties": PEOPLE_SCHEMA["properties"]},
        {"baseType": "microsoft.graph.externalItem", "properties": []},
        {
            "baseType": "microsoft.graph.externalItem",
            "properties": [{"name": f"p{n}", "type": "string"} for n in range(129)],
        },
        _with(lambda p: p[0].update(type="text")),
        _with(lambda p: p[0].update(labels=["personBadge"])),
    ],
    ids=["base-type", "empty", "too-many", "unknown-type", "unknown-label"],
)
def test_malformed_schema_is_400_at_once(schema: dict[str, Any]) -> None:
    h = harness()
    _create(h)
    assert h.call("PATCH", "/external/connections/credlybadges/schema", schema).status == 400


def test_unknown_operation_is_404() -> None:
    h = harness()
    _create(h)
    assert h.call("GET", "/external/connections/credlybadges/operations/nope").status == 404


# -- items ------------------------------------------------------------------------------------


def test_put_get_delete_item() -> None:
    h = harness()
    h.ready_connection()
    url = "/external/connections/credlybadges/items/user1"
    assert h.call("PUT", url, item_body()).status == 200
    got = h.call("GET", url)
    assert got.status == 200
    assert got.json["properties"]["account"] == account("user1@contoso.com")
    assert set(h.service.items("credlybadges")) == {"user1"}
    assert h.call("DELETE", url).status == 204
    assert h.call("GET", url).code == "itemNotFound"
    assert h.call("DELETE", url).status == 404


def test_put_replaces_the_whole_item() -> None:
    h = harness()
    h.ready_connection()
    url = "/external/connections/credlybadges/items/user1"
    h.call("PUT", url, item_body(awards=[award("A"), award("B")]))
    h.call("PUT", url, item_body(awards=[award("C")]))
    assert h.service.items("credlybadges")["user1"]["properties"]["awards"] == [award("C")]


def test_item_in_draft_connection_is_refused() -> None:
    h = harness()
    _create(h)
    url = "/external/connections/credlybadges/items/user1"
    assert h.call("PUT", url, item_body()).status == 400
    assert h.service.items("credlybadges") == {}


def test_limit_exceeded_blocks_new_items_but_not_deletes() -> None:
    h = harness()
    h.ready_connection()
    h.call("PUT", "/external/connections/credlybadges/items/user1", item_body())
    h.service.set_connection_state("credlybadges", "limitExceeded")
    state = h.call("GET", "/external/connections/credlybadges").json["state"]
    assert state == "limitExceeded"
    assert (
        h.call("PUT", "/external/connections/credlybadges/items/user2", item_body()).status == 507
    )
    assert h.call("DELETE", "/external/connections/credlybadges/items/user1").status == 204
    h.service.set_connection_state("credlybadges", None)
    assert h.call("GET", "/external/connections/credlybadges").json["state"] == "ready"


@pytest.mark.parametrize("item_id", ["a" * 129, "user.1", "user@1", "user 1"])
def test_bad_item_ids_are_400(item_id: str) -> None:
    h = harness()
    h.ready_connection()
    url = f"/external/connections/credlybadges/items/{item_id}"
    assert h.call("PUT", url, item_body()).status == 400


@pytest.mark.parametrize("item_id", ["user_at_contoso", "user-1", "a" * 128])
def test_item_ids_with_underscores_and_hyphens_pass_as_on_graph(item_id: str) -> None:
    # Microsoft's people-connector sample uses "_", a third-party ingester "-".
    h = harness()
    h.ready_connection()
    url = f"/external/connections/credlybadges/items/{item_id}"
    assert h.call("PUT", url, item_body()).status == 200


def test_strict_item_ids_switch_applies_the_pages_letter() -> None:
    h = harness(scenario={"strict_item_ids": True})
    h.ready_connection()
    for item_id, status in (("user_1", 400), ("user-1", 400), ("user1", 200)):
        url = f"/external/connections/credlybadges/items/{item_id}"
        assert h.call("PUT", url, item_body()).status == status, item_id


def _mutated(change: Any) -> dict[str, Any]:
    body = item_body()
    change(body)
    return body


@pytest.mark.parametrize(
    "body",
    [
        _mutated(lambda b: b.pop("acl")),
        _mutated(lambda b: b.update(acl=[])),
        _mutated(lambda b: b["acl"][0].update(type="everybody")),
        _mutated(lambda b: b["acl"][0].update(accessType="allow")),
        _mutated(lambda b: b["acl"][0].pop("value")),
        _mutated(lambda b: b.update(acl=[{"type": "user", "value": "u1", "accessType": "grant"}])),
        _mutated(lambda b: b["acl"][0].update(accessType="deny")),
        _mutated(lambda b: b.pop("properties")),
        _mutated(lambda b: b["properties"].update(badges=[award("x")])),
        _mutated(lambda b: b["properties"].update(awards=award("not a list"))),
        _mutated(lambda b: b["properties"].update({"awards@odata.type": "Collection(Int64)"})),
        _mutated(lambda b: b["properties"].update(account=["array is not a string"])),
    ],
    ids=[
        "no-acl",
        "empty-acl",
        "bad-acl-type",
        "bad-access-type",
        "no-acl-value",
        "people-without-everyone",
        "everyone-denied",
        "no-properties",
        "not-in-schema",
        "collection-as-string",
        "wrong-type-hint",
        "string-as-array",
    ],
)
def test_invalid_items_are_400(body: dict[str, Any]) -> None:
    h = harness()
    h.ready_connection()
    reply = h.call("PUT", "/external/connections/credlybadges/items/user1", body)
    assert reply.status == 400, body
    assert h.service.items("credlybadges") == {}


def test_property_not_in_schema_message() -> None:
    h = harness()
    h.ready_connection()
    body = _mutated(lambda b: b["properties"].update(badges=[award("x")]))
    reply = h.call("PUT", "/external/connections/credlybadges/items/user1", body)
    assert "badges" in reply.json["error"]["message"]
    assert "does not match schema" in reply.json["error"]["message"]


def test_collections_without_type_hint_are_accepted() -> None:
    h = harness()
    h.ready_connection()
    body = _mutated(lambda b: b["properties"].pop("awards@odata.type"))
    assert h.call("PUT", "/external/connections/credlybadges/items/user1", body).status == 200


def test_invalid_labelled_values_are_ignored_but_recorded() -> None:
    h = harness()
    h.ready_connection()
    body = item_body(awards=[award("Good"), "{'displayName': 'single quotes'}", json.dumps([1])])
    body["properties"]["account"] = json.dumps([{"userPrincipalName": "user1@contoso.com"}])
    reply = h.call("PUT", "/external/connections/credlybadges/items/user1", body)
    assert reply.status == 200
    invalid = h.service.invalid_values()
    assert {(v["property"], v["reason"].split()[0]) for v in invalid} == {
        ("awards", "not"),
        ("account", "not"),
    }
    assert len(invalid) == 3
    assert all(v["connection_id"] == "credlybadges" and v["item_id"] == "user1" for v in invalid)


def test_valid_items_record_no_invalid_values() -> None:
    h = harness()
    h.ready_connection()
    h.call("PUT", "/external/connections/credlybadges/items/user1", item_body())
    assert h.service.invalid_values() == []


def test_entities_without_identity_or_name_are_recorded() -> None:
    h = harness()
    h.ready_connection()
    body = item_body(awards=[json.dumps({"issuingAuthority": "Credly"})])
    body["properties"]["account"] = json.dumps({"mail": "user1@contoso.com"})
    assert h.call("PUT", "/external/connections/credlybadges/items/user1", body).status == 200
    reasons = sorted(v["reason"] for v in h.service.invalid_values())
    assert reasons == ["no displayName", "no userPrincipalName or externalDirectoryObjectId"]


def test_non_people_connections_take_any_string() -> None:
    h = harness()
    _create(h, category="uncategorized")
    schema = {
        "baseType": "microsoft.graph.externalItem",
        "properties": [{"name": "title", "type": "string", "labels": ["title"]}],
    }
    _register(h, schema)
    body = {
        "acl": [{"type": "user", "value": "u1", "accessType": "grant"}],
        "properties": {"title": "plain words"},
    }
    assert h.call("PUT", "/external/connections/credlybadges/items/a1", body).status == 200
    assert h.service.invalid_values() == []


def test_there_is_no_list_items_call() -> None:
    h = harness()
    h.ready_connection()
    assert h.call("GET", "/external/connections/credlybadges/items").status == 405


def test_item_calls_need_external_item_permission() -> None:
    h = harness()
    h.ready_connection()
    token = h.token_for(roles=("ExternalConnection.ReadWrite.OwnedBy",))
    url = "/external/connections/credlybadges/items/user1"
    assert h.call("PUT", url, item_body(), token=token).status == 403


def test_item_in_unknown_connection_is_404() -> None:
    h = harness()
    assert h.call("PUT", "/external/connections/nothere/items/u1", item_body()).status == 404


# -- ingestion limit --------------------------------------------------------------------------


def test_ingestion_limit_answers_429_with_retry_after_and_refills() -> None:
    h = harness(scenario={"ingestion_limit_per_second": 2})
    h.ready_connection()
    statuses = [
        h.call("PUT", f"/external/connections/credlybadges/items/u{n}", item_body()).status
        for n in range(4)
    ]
    assert statuses == [200, 200, 429, 429]
    throttled = h.call("PUT", "/external/connections/credlybadges/items/u9", item_body())
    assert throttled.headers["Retry-After"] == "1"
    assert set(h.service.items("credlybadges")) == {"u0", "u1"}
    h.clock.advance(1)
    assert h.call("PUT", "/external/connections/credlybadges/items/u2", item_body()).status == 200


def test_ingestion_limit_is_per_connection_and_can_be_lifted() -> None:
    h = harness()
    h.ready_connection("conna")
    h.ready_connection("connb")
    h.service.set_ingestion_limit(1)
    assert h.call("PUT", "/external/connections/conna/items/u1", item_body()).status == 200
    assert h.call("PUT", "/external/connections/connb/items/u1", item_body()).status == 200
    assert h.call("PUT", "/external/connections/conna/items/u2", item_body()).status == 429
    h.service.set_ingestion_limit(None)
    assert h.call("PUT", "/external/connections/conna/items/u2", item_body()).status == 200


def test_reads_are_not_throttled() -> None:
    h = harness(scenario={"ingestion_limit_per_second": 1})
    h.ready_connection()
    h.call("PUT", "/external/connections/credlybadges/items/u1", item_body())
    for _ in range(3):
        assert h.call("GET", "/external/connections/credlybadges/items/u1").status == 200


def test_scenario_connections_are_loaded() -> None:
    scenario = {
        "connections": [
            {
                "id": "CredlyMicrosoft",
                "name": "Credly",
                "contentCategory": "people",
                "state": "ready",
                "schema": PEOPLE_SCHEMA["properties"],
                "owner_app_id": APP_ID,
            }
        ]
    }
    h = harness(scenario=scenario)
    assert h.call("GET", "/external/connections/CredlyMicrosoft").json["state"] == "ready"
    url = "/external/connections/CredlyMicrosoft/items/u1"
    assert h.call("PUT", url, item_body()).status == 200
    assert h.service.connections()[0]["schema"]["properties"][0]["name"] == "account"
    assert TENANT in json.dumps(h.service.items("CredlyMicrosoft"))
