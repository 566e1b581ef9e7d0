"""Whatever a client sends, the simulated Graph answers in Graph's shape and never crashes."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.simulator.graph_support import GraphHarness, harness

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
_PATHS = st.sampled_from(
    [
        "/users",
        "/users/delta",
        "/users/user1@contoso.com",
        "/external/connections",
        "/external/connections/credlybadges",
        "/external/connections/credlybadges/schema",
        "/external/connections/credlybadges/items/u1",
        "/external/connections/credlybadges/items",
        "/external/connections/credlybadges/operations/x",
        "/admin/people/profileSources",
        "/admin/people/profileSources(sourceId='credlybadges')",
        "/admin/people/profilePropertySettings",
        "/admin/people/profilePropertySettings/sim-profile-property-setting-0",
        "/applications(appId='x')",
        "/$batch",
        "/nothing/here",
    ]
)
_METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"])
_OPTIONS = st.dictionaries(
    st.sampled_from(["$select", "$top", "$filter", "$count", "$skiptoken", "$deltatoken"]),
    st.text(max_size=30),
    max_size=3,
)

_SHARED: dict[str, GraphHarness] = {}


def _harness() -> GraphHarness:
    # One connection in the ready state, shared: every answer is checked, not the state.
    if "h" not in _SHARED:
        made = harness()
        made.ready_connection()
        _SHARED["h"] = made
    return _SHARED["h"]


def _assert_graph_shaped(status: int, body: bytes) -> None:
    assert 200 <= status < 600
    if status >= 400:
        error = json.loads(body)["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=_METHODS, path=_PATHS, options=_OPTIONS, body=_JSON)
def test_arbitrary_requests_get_graph_shaped_answers(
    method: str, path: str, options: dict[str, str], body: Any
) -> None:
    h = _harness()
    query = "&".join(f"{k}={v}" for k, v in options.items()).replace("#", "%23")
    reply = h.call(method, f"{path}?{query}" if query else path, body)
    _assert_graph_shaped(reply.status, reply.body)


@settings(max_examples=200, deadline=None)
@given(expression=st.text(alphabet="()', eqornadiulmsxy:/$0123456789", max_size=60))
def test_arbitrary_filters_never_crash(expression: str) -> None:
    reply = _harness().call("GET", f"/users?$filter={quote(expression)}")
    _assert_graph_shaped(reply.status, reply.body)


@settings(max_examples=80, deadline=None)
@given(state=st.dictionaries(st.sampled_from(["seq", "to", "select", "filter", "mode",
                                               "after", "epoch", "issued"]), _JSON))  # fmt: skip
def test_forged_delta_tokens_are_refused_not_crashes(state: dict[str, Any]) -> None:
    token = base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")
    for option in ("$deltatoken", "$skiptoken"):
        reply = _harness().call("GET", f"/users/delta?{option}={token}")
        _assert_graph_shaped(reply.status, reply.body)


@settings(max_examples=100, deadline=None)
@given(entries=st.lists(st.dictionaries(st.sampled_from(["id", "method", "url", "headers",
                                                           "body", "dependsOn"]), _JSON),
                        max_size=4))  # fmt: skip
def test_arbitrary_batches_never_crash(entries: list[dict[str, Any]]) -> None:
    reply = _harness().call("POST", "/$batch", {"requests": entries})
    _assert_graph_shaped(reply.status, reply.body)
