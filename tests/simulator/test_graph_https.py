"""The simulated Graph over real HTTPS: msal gets the token, httpx makes the calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import msal
import pytest

from credly_connector.simulator.runner import Simulator, start_simulator
from tests.sim_fixtures import sim_http, sim_ssl_context
from tests.simulator.graph_support import PEOPLE_SCHEMA, PREFER_UNKNOWN, award, item_body, user

pytestmark = pytest.mark.integration

TENANT = "11111111-2222-3333-4444-555555555555"
SYNC_APP = "aaaaaaaa-0000-4000-8000-000000000001"
WEAK_APP = "aaaaaaaa-0000-4000-8000-000000000002"
SYNC_SECRET = "sync~S3cret-graph-tests-0001"
WEAK_SECRET = "weak~S3cret-graph-tests-0002"
ROLES = [
    "User.Read.All",
    "ExternalConnection.ReadWrite.OwnedBy",
    "ExternalItem.ReadWrite.OwnedBy",
    "PeopleSettings.ReadWrite.All",
    "Application.Read.All",
]
SCENARIO: dict[str, Any] = {
    "name": "graph-https",
    "entra": {
        "tenant_id": TENANT,
        "domains": ["contoso.com"],
        "apps": [
            {
                "app_id": SYNC_APP,
                "display_name": "sync",
                "roles": ROLES,
                "secrets": [
                    {
                        "key_id": "0c0c0c0c-0000-4000-8000-000000000001",
                        "display_name": "ci",
                        "value": SYNC_SECRET,
                        "end_date": "2099-01-01T00:00:00Z",
                    }
                ],
            },
            {
                "app_id": WEAK_APP,
                "display_name": "weak",
                "roles": ["User.Read.All"],
                "secrets": [
                    {"key_id": "k2", "value": WEAK_SECRET, "end_date": "2099-01-01T00:00:00Z"}
                ],
            },
        ],
        "users": [user(n) for n in range(1, 8)],
    },
    "graph": {"schema_delay_seconds": 0},
}


@pytest.fixture(scope="module")
def graph_sim() -> Iterator[Simulator]:
    with start_simulator(SCENARIO) as simulator:
        yield simulator


def _token(sim: Simulator, app_id: str = SYNC_APP, secret: str = SYNC_SECRET) -> str:
    app = msal.ConfidentialClientApplication(
        app_id,
        client_credential=secret,
        authority=f"{sim.urls.entra}/{TENANT}",
        instance_discovery=False,
        azure_region=False,
        http_client=httpx.Client(verify=sim_ssl_context(sim), trust_env=False),
    )
    result = app.acquire_token_for_client(scopes=[f"{sim.urls.graph}/.default"])
    assert "access_token" in result, result
    return str(result["access_token"])


@pytest.fixture(scope="module")
def graph(graph_sim: Simulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {_token(graph_sim)}"}
    with sim_http(graph_sim, base_url=f"{graph_sim.urls.graph}/v1.0", headers=headers) as client:
        yield client


def test_users_paging_over_https(graph: httpx.Client) -> None:
    url: str | None = "/users?$top=3&$select=id,userPrincipalName,proxyAddresses"
    seen: list[dict[str, Any]] = []
    while url:
        page = graph.get(url)
        assert page.status_code == 200
        seen += page.json()["value"]
        url = page.json().get("@odata.nextLink")
    assert len(seen) == 7
    assert all(set(u) == {"id", "userPrincipalName", "proxyAddresses"} for u in seen)


def test_filter_by_proxy_address_over_https(graph: httpx.Client) -> None:
    reply = graph.get(
        "/users",
        params={"$filter": "proxyAddresses/any(x:x eq 'smtp:ALIAS3@contoso.com')", "$select": "id"},
    )
    assert [u["id"] for u in reply.json()["value"]] == [user(3)["id"]]


def test_errors_over_https_have_graphs_shape(graph_sim: Simulator) -> None:
    with sim_http(graph_sim) as client:
        anonymous = client.get(f"{graph_sim.urls.graph}/v1.0/users")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"
        weak = {"Authorization": f"Bearer {_token(graph_sim, WEAK_APP, WEAK_SECRET)}"}
        denied = client.get(f"{graph_sim.urls.graph}/v1.0/external/connections", headers=weak)
    assert denied.status_code == 403
    assert set(denied.json()["error"]["innerError"]) >= {"request-id", "date"}


def test_people_connector_setup_and_ingestion_over_https(
    graph_sim: Simulator, graph: httpx.Client
) -> None:
    created = graph.post(
        "/external/connections",
        json={
            "id": "credlyhttps",
            "name": "Credly",
            "description": "Credly badges",
            "contentCategory": "people",
        },
    )
    assert created.status_code == 201
    registered = graph.patch(
        "/external/connections/credlyhttps/schema", json=PEOPLE_SCHEMA, headers=PREFER_UNKNOWN
    )
    assert registered.status_code == 202
    operation = graph.get(registered.headers["Location"]).json()
    assert operation["status"] == "completed"
    assert graph.get("/external/connections/credlyhttps").json()["state"] == "ready"

    source = {"sourceId": "credlyhttps", "displayName": "Credly", "webUrl": "https://x.example"}
    assert graph.post("/admin/people/profileSources", json=source).status_code == 201
    setting = graph.get("/admin/people/profilePropertySettings").json()["value"][0]
    ours = f"{graph_sim.urls.graph}/v1.0/admin/people/profileSources(sourceId='credlyhttps')"
    patched = graph.patch(
        f"/admin/people/profilePropertySettings/{setting['id']}",
        json={"prioritizedSourceUrls": [ours, *setting["prioritizedSourceUrls"]]},
    )
    assert patched.status_code == 200
    assert graph_sim.profile_property_settings()[0]["prioritizedSourceUrls"][0] == ours

    graph_sim.set_faults(graph_ingestion_limit_per_second=2)
    try:
        requests = [
            {
                "id": str(n),
                "method": "PUT",
                "url": f"/external/connections/credlyhttps/items/u{n}",
                "headers": {"Content-Type": "application/json"},
                "body": item_body(f"user{n}@contoso.com", [award(f"Badge {n}")]),
            }
            for n in range(1, 5)
        ]
        answers = graph.post("/$batch", json={"requests": requests}).json()["responses"]
        statuses = [a["status"] for a in answers]
        # A bucket of 2 refills at 2/s on the wall clock: four PUTs cannot all pass.
        assert set(statuses) == {200, 429}
        throttled = [a for a in answers if a["status"] == 429]
        assert all(a["headers"]["Retry-After"] == "1" for a in throttled)
    finally:
        graph_sim.set_faults(graph_ingestion_limit_per_second=None)
    assert len(graph_sim.graph_items("credlyhttps")) == statuses.count(200)
    assert graph_sim.graph_invalid_values() == []


def test_delta_over_https(graph_sim: Simulator, graph: httpx.Client) -> None:
    url = "/users/delta?$select=id,accountEnabled"
    while True:
        page = graph.get(url).json()
        if "@odata.deltaLink" in page:
            delta_link = page["@odata.deltaLink"]
            break
        url = page["@odata.nextLink"]
    graph_sim.update_user(user(5)["id"], accountEnabled=False)
    changes = graph.get(delta_link).json()
    assert changes["value"] == [{"id": user(5)["id"], "accountEnabled": False}]
    graph_sim.update_user(user(5)["id"], accountEnabled=True)
    graph_sim.expire_delta_tokens()
    expired = graph.get(changes["@odata.deltaLink"])
    assert expired.status_code == 400
    assert expired.json()["error"]["code"] == "syncStateNotFound"


def test_application_secret_end_dates_over_https(graph: httpx.Client) -> None:
    reply = graph.get(f"/applications(appId='{SYNC_APP}')")
    assert reply.status_code == 200
    credential = reply.json()["passwordCredentials"][0]
    assert credential["endDateTime"] == "2099-01-01T00:00:00Z"
    assert SYNC_SECRET not in reply.text
    assert SYNC_SECRET not in json.dumps(reply.json())


def test_demo_scenario_graph_section_is_served(sim: Simulator) -> None:
    demo_tenant = sim.tenant_id
    app = next(a for a in sim.directory.all_apps() if "User.Read.All" in a.get("roles", []))
    client = msal.ConfidentialClientApplication(
        app["app_id"],
        client_credential=str(max(app["secrets"], key=lambda x: str(x["end_date"]))["value"]),
        authority=f"{sim.urls.entra}/{demo_tenant}",
        instance_discovery=False,
        azure_region=False,
        http_client=httpx.Client(verify=sim_ssl_context(sim), trust_env=False),
    )
    result = client.acquire_token_for_client(scopes=[f"{sim.urls.graph}/.default"])
    assert "access_token" in result, result
    headers = {"Authorization": f"Bearer {result['access_token']}"}
    with sim_http(sim, base_url=f"{sim.urls.graph}/v1.0", headers=headers) as http:
        connections = http.get("/external/connections").json()["value"]
        settings = http.get("/admin/people/profilePropertySettings").json()["value"]
        sources = http.get("/admin/people/profileSources").json()["value"]
    # The app holds only the OwnedBy permissions: Microsoft's Credly connector is not its own,
    # so only the profile sources show it.
    assert connections == []
    assert any(s["sourceId"] == "MicrosoftCredly" for s in sources)
    assert any(c["contentCategory"] == "people" for c in sim.graph_connections())
    urls = settings[0]["prioritizedSourceUrls"]
    assert urls and all(url.startswith(f"{sim.urls.graph}/v1.0/") for url in urls)


def test_concurrent_writes_and_reads_are_consistent(graph_sim: Simulator) -> None:
    from concurrent.futures import ThreadPoolExecutor

    token = _token(graph_sim)
    headers = {"Authorization": f"Bearer {token}"}
    with sim_http(graph_sim, base_url=f"{graph_sim.urls.graph}/v1.0", headers=headers) as http:
        body = {
            "id": "credlyconc",
            "name": "Concurrent",
            "description": "Concurrent",
            "contentCategory": "people",
        }
        assert http.post("/external/connections", json=body).status_code == 201
        schema = http.patch(
            "/external/connections/credlyconc/schema", json=PEOPLE_SCHEMA, headers=PREFER_UNKNOWN
        )
        assert schema.status_code == 202
        assert http.get("/external/connections/credlyconc").json()["state"] == "ready"

        def work(n: int) -> tuple[int, int]:
            put = http.put(f"/external/connections/credlyconc/items/c{n}", json=item_body())
            listed = http.get("/users?$select=id&$top=2")
            return put.status_code, listed.status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(work, range(40)))
    assert results == [(200, 200)] * 40
    assert len(graph_sim.graph_items("credlyconc")) == 40
