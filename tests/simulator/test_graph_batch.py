"""The simulated Graph's JSON batching: limits, per-entry answers, throttling, dependsOn."""

from __future__ import annotations

import time
from typing import Any

from credly_connector.simulator.core import SimRequest
from tests.simulator.graph_support import GraphHarness, harness, item_body


def _put(entry_id: str, item_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": entry_id,
        "method": "PUT",
        "url": f"/external/connections/credlybadges/items/{item_id}",
        "headers": {"Content-Type": "application/json"},
        "body": item_body(),
        **extra,
    }


def _batch(h: GraphHarness, requests: list[dict[str, Any]], token: str | None = None) -> Any:
    return h.call("POST", "/$batch", {"requests": requests}, token=token)


def test_batch_runs_each_entry_and_answers_per_entry() -> None:
    h = harness()
    h.ready_connection()
    reply = _batch(
        h,
        [
            _put("1", "u1"),
            {"id": "2", "method": "GET", "url": "/users/user2@contoso.com?$select=id,mail"},
            {"id": "3", "method": "GET", "url": "/users/ghost@contoso.com"},
        ],
    )
    assert reply.status == 200
    answers = {a["id"]: a for a in reply.json["responses"]}
    assert answers["1"]["status"] == 200
    assert set(answers["2"]["body"]) >= {"id", "mail"}
    assert answers["3"]["status"] == 404
    assert answers["3"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert all(isinstance(a["headers"], dict) for a in answers.values())
    assert set(h.service.items("credlybadges")) == {"u1"}


def test_more_than_20_requests_is_400() -> None:
    h = harness()
    h.ready_connection()
    assert _batch(h, [_put(str(n), f"u{n}") for n in range(21)]).status == 400
    assert _batch(h, [_put(str(n), f"u{n}") for n in range(20)]).status == 200


def test_duplicate_ids_are_400_case_insensitively() -> None:
    h = harness()
    h.ready_connection()
    assert _batch(h, [_put("a", "u1"), _put("A", "u2")]).status == 400
    assert h.service.items("credlybadges") == {}


def test_body_without_content_type_is_400() -> None:
    h = harness()
    h.ready_connection()
    entry = _put("1", "u1")
    entry.pop("headers")
    assert _batch(h, [entry]).status == 400


def test_malformed_batch_is_400() -> None:
    h = harness()
    assert h.call("POST", "/$batch", b"[1,2]").status == 400
    assert h.call("POST", "/$batch", {"requests": [{"id": "1"}]}).status == 400


def test_absolute_urls_are_refused_per_entry() -> None:
    h = harness()
    reply = _batch(
        h, [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}]
    )
    assert reply.json["responses"][0]["status"] == 400


def test_throttled_entries_carry_their_own_retry_after() -> None:
    h = harness(scenario={"ingestion_limit_per_second": 2})
    h.ready_connection()
    reply = _batch(h, [_put(str(n), f"u{n}") for n in range(5)])
    answers = {a["id"]: a for a in reply.json["responses"]}
    assert [answers[str(n)]["status"] for n in range(5)] == [200, 200, 429, 429, 429]
    assert answers["3"]["headers"]["Retry-After"] == "1"
    assert set(h.service.items("credlybadges")) == {"u0", "u1"}


def test_depends_on_is_honoured_and_failures_give_424() -> None:
    h = harness()
    h.ready_connection()
    reply = _batch(
        h,
        [
            _put("2", "u2", dependsOn=["1"]),
            _put("1", "bad.id"),
            _put("3", "u3"),
            _put("4", "u4", dependsOn=["3"]),
        ],
    )
    answers = {a["id"]: a["status"] for a in reply.json["responses"]}
    assert answers == {"1": 400, "2": 424, "3": 200, "4": 200}
    assert set(h.service.items("credlybadges")) == {"u3", "u4"}


def test_depends_on_unknown_id_is_400() -> None:
    h = harness()
    h.ready_connection()
    assert _batch(h, [_put("1", "u1", dependsOn=["9"])]).status == 400


def test_entries_use_the_outer_token() -> None:
    h = harness()
    h.ready_connection()
    weak = h.token_for(roles=("User.Read.All",))
    reply = _batch(h, [_put("1", "u1")], token=weak)
    assert reply.json["responses"][0]["status"] == 403
    assert _batch(h, [_put("1", "u1")], token="").status == 401


def test_advanced_query_headers_go_in_the_entry() -> None:
    h = harness()
    url = "/users?$count=true&$filter=endsWith(mail,'@contoso.com')"
    plain = _batch(h, [{"id": "1", "method": "GET", "url": url}])
    assert plain.json["responses"][0]["status"] == 400
    advanced = _batch(
        h, [{"id": "1", "method": "GET", "url": url, "headers": {"ConsistencyLevel": "eventual"}}]
    )
    assert advanced.json["responses"][0]["status"] == 200


def test_nested_batch_is_refused() -> None:
    h = harness()
    reply = _batch(
        h,
        [
            {
                "id": "1",
                "method": "POST",
                "url": "/$batch",
                "headers": {"Content-Type": "application/json"},
                "body": {"requests": []},
            }
        ],
    )
    assert reply.json["responses"][0]["status"] == 400


def test_response_order_can_be_reversed_by_switch() -> None:
    h = harness(scenario={"batch_response_order": "reversed"})
    requests = [
        {"id": str(n), "method": "GET", "url": f"/users/user{n}@contoso.com"} for n in (1, 2)
    ]
    assert [a["id"] for a in _batch(h, requests).json["responses"]] == ["2", "1"]


def test_more_than_25_concurrent_item_operations_on_a_connection_get_429() -> None:
    """Graph: at most 25 concurrent operations against a connection, $batch entries included."""
    h = harness()
    h.ready_connection()
    operations = h.service.external.operations
    # A request that arrived earlier still holds 10 operations: its answer has not left yet.
    earlier = SimRequest("PUT", "/v1.0/x", {}, {}, received=time.monotonic() - 1)
    for _ in range(10):
        assert operations.admit("credlybadges", earlier)
    reply = _batch(h, [_put(str(n), f"u{n}") for n in range(20)])
    answers = {a["id"]: a for a in reply.json["responses"]}
    assert [answers[str(n)]["status"] for n in range(20)] == [200] * 15 + [429] * 5
    assert answers["19"]["headers"]["Retry-After"] == "1"
    assert [t["reason"] for t in h.service.throttled_operations()] == ["concurrency"] * 5
    operations.answered(earlier.serial)
    again = _batch(h, [_put(str(n), f"u{n}") for n in range(20)])
    assert {a["status"] for a in again.json["responses"]} == {200}  # the earlier one is over


def test_requests_answered_before_another_arrived_do_not_count() -> None:
    h = harness()
    h.ready_connection()
    for _ in range(3):  # one after the other: never more than 20 at once
        reply = _batch(h, [_put(str(n), f"u{n}") for n in range(20)])
        assert {a["status"] for a in reply.json["responses"]} == {200}
    assert h.service.throttled_operations() == []


def test_the_concurrency_limit_can_be_switched_off() -> None:
    h = harness(scenario={"concurrent_operations_limit": None})
    h.ready_connection()
    earlier = SimRequest("PUT", "/v1.0/x", {}, {}, received=time.monotonic() - 1)
    for _ in range(100):
        assert h.service.external.operations.admit("credlybadges", earlier)
    reply = _batch(h, [_put(str(n), f"u{n}") for n in range(20)])
    assert {a["status"] for a in reply.json["responses"]} == {200}
