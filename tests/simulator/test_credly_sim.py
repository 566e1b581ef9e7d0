"""The simulated Credly over real HTTPS: token endpoint, API auth, organizations, badges."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from credly_connector.simulator.runner import Simulator
from tests.sim_fixtures import sim_http

pytestmark = pytest.mark.integration

CLIENT_ID = "contoso-credly-sync-1f4e7a"
CLIENT_SECRET = "cs_sim_4Jt8pQ2vX6nB9mK3wR7yL1aZ5"
TEMPLATES_ONLY = ("contoso-templates-only-3c9e1d", "cs_sim_2Wq6eR8tY4uI1oP9aS3dF7gH5")
ORG1 = "5e2c8a41-9d3b-4f6e-8a7c-1b2d3e4f5a60"
ORG2 = "a7b9c1d3-2e4f-4a6b-9c8d-0e1f2a3b4c5d"
VALID_ORG_TOKEN = "at_sim_contoso_valid_6Gf2Hj8Kl4Zx0Cv"
EXPIRED_ORG_TOKEN = "at_sim_contoso_expired_3Nb7Mq1Wr5Ty9"


def token(http: httpx.Client, sim: Simulator, **form: str) -> httpx.Response:
    body = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    body["client_secret"] = CLIENT_SECRET
    body.update(form)
    return http.post(f"{sim.urls.credly_web}/oauth/token", data=body)


def bearer(http: httpx.Client, sim: Simulator, **form: str) -> dict[str, str]:
    answer = token(http, sim, **form)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def basic(value: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(value.encode()).decode()}


def badges(http: httpx.Client, sim: Simulator, headers: dict[str, str], **params: Any) -> Any:
    answer = http.get(
        f"{sim.urls.credly_api}/organizations/{ORG1}/badges", headers=headers, params=params
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


# -- token endpoint --------------------------------------------------------------------------


def test_token_has_bearer_type_expiry_and_scope(http: httpx.Client, sim: Simulator) -> None:
    answer = token(http, sim, scope="issued_badges")
    document = answer.json()
    assert answer.status_code == 200
    assert document["token_type"] == "Bearer"
    assert document["expires_in"] == 7200
    assert document["scope"] == "issued_badges"
    assert isinstance(document["created_at"], int)


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("no-such-client", CLIENT_SECRET), (CLIENT_ID, "wrong"), (CLIENT_ID, "")],
)
def test_wrong_id_or_secret_are_both_invalid_client(
    http: httpx.Client, sim: Simulator, client_id: str, secret: str
) -> None:
    answer = token(http, sim, client_id=client_id, client_secret=secret)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_wrong_id_and_wrong_secret_answer_identically(http: httpx.Client, sim: Simulator) -> None:
    unknown = token(http, sim, client_id="no-such-client").json()
    wrong = token(http, sim, client_secret="wrong").json()
    assert unknown == wrong


def test_grant_type_errors(http: httpx.Client, sim: Simulator) -> None:
    assert token(http, sim, grant_type="password").json()["error"] == "unsupported_grant_type"
    assert token(http, sim, grant_type="").json()["error"] == "invalid_request"


def test_client_credentials_in_basic_header_and_json_body(
    http: httpx.Client, sim: Simulator
) -> None:
    url = f"{sim.urls.credly_web}/oauth/token"
    via_basic = http.post(
        url,
        data={"grant_type": "client_credentials"},
        headers=basic(f"{CLIENT_ID}:{CLIENT_SECRET}"),
    )
    assert via_basic.status_code == 200
    via_json = http.post(
        url,
        json={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert via_json.status_code == 200


def test_token_endpoint_only_on_web_host(http: httpx.Client, sim: Simulator) -> None:
    assert http.get(f"{sim.urls.credly_web}/oauth/token").status_code == 404
    on_api_host = http.post(
        sim.urls.credly_api.removesuffix("/v1") + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert on_api_host.status_code == 404


def test_scope_error_switch_token(fresh_sim: Simulator) -> None:
    client_id, secret = TEMPLATES_ONLY
    with sim_http(fresh_sim) as http:
        answer = token(
            http, fresh_sim, client_id=client_id, client_secret=secret, scope="issued_badges"
        )
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_scope"
        # Without a scope the client gets what it has, and the badge list says 403.
        headers = bearer(http, fresh_sim, client_id=client_id, client_secret=secret)
        listing = http.get(
            f"{fresh_sim.urls.credly_api}/organizations/{ORG1}/badges", headers=headers
        )
        assert listing.status_code == 403
        assert (
            http.get(
                f"{fresh_sim.urls.credly_api}/organizations/{ORG1}", headers=headers
            ).status_code
            == 200
        )


def test_scope_error_switch_api(fresh_sim: Simulator) -> None:
    fresh_sim.set_switches(scope_error="api")
    client_id, secret = TEMPLATES_ONLY
    with sim_http(fresh_sim) as http:
        answer = token(
            http, fresh_sim, client_id=client_id, client_secret=secret, scope="issued_badges"
        )
        assert answer.status_code == 200
        assert "issued_badges" not in answer.json()["scope"]
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        listing = http.get(
            f"{fresh_sim.urls.credly_api}/organizations/{ORG1}/badges", headers=headers
        )
        assert listing.status_code == 403


def test_token_lifetime_fault_expires_tokens(fresh_sim: Simulator) -> None:
    fresh_sim.set_faults(credly_token_lifetime_seconds=0)
    with sim_http(fresh_sim) as http:
        answer = token(http, fresh_sim)
        assert answer.json()["expires_in"] == 0
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        assert (
            http.get(
                f"{fresh_sim.urls.credly_api}/organizations/{ORG1}", headers=headers
            ).status_code
            == 401
        )


# -- API authentication ----------------------------------------------------------------------


def test_api_requires_credentials(http: httpx.Client, sim: Simulator) -> None:
    url = f"{sim.urls.credly_api}/organizations/{ORG1}"
    assert http.get(url).status_code == 401
    assert http.get(url, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    assert http.get(url, headers=basic("nonsense:")).status_code == 401


def test_basic_auth_with_organization_token(http: httpx.Client, sim: Simulator) -> None:
    url = f"{sim.urls.credly_api}/organizations/{ORG1}"
    answer = http.get(url, headers=basic(f"{VALID_ORG_TOKEN}:"))
    assert answer.status_code == 200
    assert answer.json()["data"]["id"] == ORG1
    assert http.get(url, headers=basic(f"{EXPIRED_ORG_TOKEN}:")).status_code == 401
    assert http.get(url, headers=basic(f"{VALID_ORG_TOKEN}:pw")).status_code == 401


@pytest.mark.parametrize("accepted", [True, False])
def test_bare_token_switch(fresh_sim: Simulator, accepted: bool) -> None:
    fresh_sim.set_switches(basic_auth_bare_token=accepted)
    with sim_http(fresh_sim) as http:
        answer = http.get(
            f"{fresh_sim.urls.credly_api}/organizations/{ORG1}", headers=basic(VALID_ORG_TOKEN)
        )
    assert answer.status_code == (200 if accepted else 401)


def test_api_allows_only_get(http: httpx.Client, sim: Simulator) -> None:
    headers = bearer(http, sim)
    url = f"{sim.urls.credly_api}/organizations/{ORG1}/badges"
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        answer = http.request(method, url, headers=headers, json={})
        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET"


# -- organizations ---------------------------------------------------------------------------


def test_organization_and_listing(http: httpx.Client, sim: Simulator) -> None:
    headers = bearer(http, sim)
    org = http.get(f"{sim.urls.credly_api}/organizations/{ORG1}", headers=headers).json()
    assert org["data"]["name"] == "Contoso Ltd"
    assert "badges" not in org["data"]
    listing = http.get(f"{sim.urls.credly_api}/organizations", headers=headers).json()
    assert [o["id"] for o in listing["data"]] == [ORG1]
    assert listing["metadata"]["total_count"] == 1


def test_unknown_organization_is_404(http: httpx.Client, sim: Simulator) -> None:
    headers = bearer(http, sim)
    unknown = "0d9e8f7a-6b5c-4d3e-9f2a-1b0c9d8e7f6a"
    assert (
        http.get(f"{sim.urls.credly_api}/organizations/{unknown}", headers=headers).status_code
        == 404
    )
    assert (
        http.get(f"{sim.urls.credly_api}/organizations/contoso", headers=headers).status_code == 404
    )


@pytest.mark.parametrize("status", [403, 404])
def test_foreign_organization_status_switch(fresh_sim: Simulator, status: int) -> None:
    fresh_sim.set_switches(foreign_org_status=status)
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        for suffix in ("", "/badges"):
            answer = http.get(
                f"{fresh_sim.urls.credly_api}/organizations/{ORG2}{suffix}", headers=headers
            )
            assert answer.status_code == status
        with_token = http.get(
            f"{fresh_sim.urls.credly_api}/organizations/{ORG2}",
            headers=basic(f"{VALID_ORG_TOKEN}:"),
        )
        assert with_token.status_code == status


def test_invalid_switch_values_are_refused(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="foreign_org_status"):
        sim.set_switches(foreign_org_status=500)
    with pytest.raises(KeyError):
        sim.set_switches(no_such_switch=True)


# -- badges ----------------------------------------------------------------------------------


def test_badge_shape(http: httpx.Client, sim: Simulator) -> None:
    document = badges(http, sim, bearer(http, sim))
    badge = next(b for b in document["data"] if b["recipient_email"] == "alex.wilber@contoso.com")
    for key in (
        "id",
        "state",
        "public",
        "issued_to",
        "issued_at",
        "accepted_at",
        "updated_at",
        "expires_at",
        "badge_url",
        "image_url",
        "badge_template",
        "issuer",
        "user",
    ):
        assert key in badge
    assert {"id", "name", "type_category", "image_url"} <= set(badge["badge_template"])
    assert badge["issuer"]["entities"][0]["entity"]["name"] == "Contoso Ltd"


def test_pagination_fifty_per_page_with_absolute_next_url(fresh_sim: Simulator) -> None:
    for number in range(60):
        fresh_sim.add_badge(
            ORG1, recipient_email=f"bulk{number}@contoso.com", state="accepted", public=True
        )
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        first = badges(http, fresh_sim, headers)
        meta = first["metadata"]
        assert meta["per"] == 50 and meta["count"] == 50 and meta["current_page"] == 1
        assert meta["total_count"] == 77 and meta["total_pages"] == 2
        assert meta["previous_page_url"] is None
        assert meta["next_page_url"].startswith(fresh_sim.urls.credly_api + "/organizations/")
        second = http.get(meta["next_page_url"], headers=headers).json()
        assert second["metadata"]["count"] == 27
        assert second["metadata"]["next_page_url"] is None
        assert second["metadata"]["previous_page_url"].endswith("page=1")
        ids = [b["id"] for b in first["data"] + second["data"]]
        assert len(set(ids)) == 77
        beyond = badges(http, fresh_sim, headers, page=3)
        assert beyond["data"] == [] and beyond["metadata"]["next_page_url"] is None


def test_next_page_url_keeps_the_filter(fresh_sim: Simulator) -> None:
    for number in range(55):
        fresh_sim.add_badge(ORG1, recipient_email=f"p{number}@contoso.com", state="pending")
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        first = badges(http, fresh_sim, headers, filter="state::pending")
        second = http.get(first["metadata"]["next_page_url"], headers=headers).json()
        assert all(b["state"] == "pending" for b in first["data"] + second["data"])
        assert first["metadata"]["total_count"] == 57


def test_filters_state_public_and_lists(http: httpx.Client, sim: Simulator) -> None:
    headers = bearer(http, sim)
    pending = badges(http, sim, headers, filter="state::pending")["data"]
    assert {b["state"] for b in pending} == {"pending"} and len(pending) == 2
    both = badges(http, sim, headers, filter="state::rejected,revoked")["data"]
    assert {b["state"] for b in both} == {"rejected", "revoked"}
    public = badges(http, sim, headers, filter="state::accepted|public::true")["data"]
    assert public and all(b["public"] and b["state"] == "accepted" for b in public)
    private = badges(http, sim, headers, filter="state::accepted|public::false")["data"]
    assert [b["recipient_email"] for b in private] == ["isaiah.langer@contoso.com"]


def test_unknown_filter_keys_are_ignored(http: httpx.Client, sim: Simulator) -> None:
    headers = bearer(http, sim)
    everything = badges(http, sim, headers)["metadata"]["total_count"]
    assert badges(http, sim, headers, filter="colour::blue")["metadata"]["total_count"] == (
        everything
    )
    narrowed = badges(http, sim, headers, filter="colour::blue|state::pending")
    assert narrowed["metadata"]["total_count"] == 2


def test_recipient_email_filter_list(http: httpx.Client, sim: Simulator) -> None:
    headers = bearer(http, sim)
    found = badges(
        http,
        sim,
        headers,
        filter="recipient_email::alex.wilber@contoso.com,lee.gu@contoso.com",
    )["data"]
    assert sorted(b["recipient_email"] for b in found) == [
        "alex.wilber@contoso.com",
        "alex.wilber@contoso.com",
        "lee.gu@contoso.com",
    ]


@pytest.mark.parametrize("case_sensitive", [True, False])
def test_recipient_email_case_switch(fresh_sim: Simulator, case_sensitive: bool) -> None:
    fresh_sim.set_switches(recipient_email_filter_case_sensitive=case_sensitive)
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        # Christie's badge was issued to "Christie.Cline@Contoso.com".
        lower = badges(
            http, fresh_sim, headers, filter="recipient_email::christie.cline@contoso.com"
        )["data"]
        exact = badges(
            http, fresh_sim, headers, filter="recipient_email::Christie.Cline@Contoso.com"
        )["data"]
    assert len(exact) == 1
    assert len(lower) == (0 if case_sensitive else 1)


def test_single_badge_and_other_org_badge(http: httpx.Client, sim: Simulator) -> None:
    headers = bearer(http, sim)
    some = badges(http, sim, headers)["data"][0]
    one = http.get(
        f"{sim.urls.credly_api}/organizations/{ORG1}/badges/{some['id']}", headers=headers
    )
    assert one.status_code == 200 and one.json()["data"]["id"] == some["id"]
    other = sim.badges(ORG2)[0]["id"]
    assert (
        http.get(
            f"{sim.urls.credly_api}/organizations/{ORG1}/badges/{other}", headers=headers
        ).status_code
        == 404
    )


def test_unknown_badge_state_fault(fresh_sim: Simulator) -> None:
    target = fresh_sim.badges(ORG1)[0]["id"]
    fresh_sim.set_faults(unknown_badge_states={target: "replaced"})
    with sim_http(fresh_sim) as http:
        data = badges(http, fresh_sim, bearer(http, fresh_sim))["data"]
    assert next(b for b in data if b["id"] == target)["state"] == "replaced"
    assert fresh_sim.badges(ORG1)[0]["state"] != "replaced"  # the stored badge is unchanged


def test_update_badge_is_visible_and_bumps_updated_at(fresh_sim: Simulator) -> None:
    megan = next(
        b for b in fresh_sim.badges(ORG1) if b["recipient_email"] == "megan.bowen@contoso.com"
    )
    changed = fresh_sim.update_badge(megan["id"], state="accepted", public=True)
    assert changed["updated_at"] != megan["updated_at"]
    with sim_http(fresh_sim) as http:
        data = badges(
            http,
            fresh_sim,
            bearer(http, fresh_sim),
            filter="recipient_email::megan.bowen@contoso.com",
        )["data"]
    assert data[0]["state"] == "accepted"
