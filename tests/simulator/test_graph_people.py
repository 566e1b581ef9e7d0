"""The simulated Graph: profile sources, the nameless profile property setting, applications."""

from __future__ import annotations

from typing import Any

from credly_connector.simulator.graph_people import DEFAULT_ENTRA_SOURCE_ID
from tests.simulator.graph_support import BASE, GraphHarness, harness

ENTRA = "4ce763dd-9214-4eff-af7c-da491cc3782d"
SOURCE = {"sourceId": "credlybadges", "displayName": "Credly", "webUrl": "https://www.credly.com"}


def _source_url(source_id: str, version: str = "v1.0") -> str:
    return f"{BASE}/{version}/admin/people/profileSources(sourceId='{source_id}')"


def _setting(h: GraphHarness) -> dict[str, Any]:
    settings = h.call("GET", "/admin/people/profilePropertySettings").json["value"]
    assert len(settings) == 1
    return dict(settings[0])


def test_default_tenant_has_the_entra_source_first() -> None:
    h = harness()
    sources = h.call("GET", "/admin/people/profileSources").json["value"]
    assert [(s["sourceId"], s["kind"]) for s in sources] == [(ENTRA, "MSEntra")]
    setting = _setting(h)
    assert setting["name"] is None
    assert setting["prioritizedSourceUrls"] == [_source_url(ENTRA)]


def test_create_get_and_delete_a_profile_source() -> None:
    h = harness()
    created = h.call("POST", "/admin/people/profileSources", {**SOURCE, "kind": "Connector"})
    assert created.status == 201
    assert created.json["sourceId"] == "credlybadges"
    by_key = h.call("GET", "/admin/people/profileSources(sourceId='credlybadges')")
    assert by_key.status == 200
    by_id = h.call("GET", f"/admin/people/profileSources/{created.json['id']}")
    assert by_id.json["sourceId"] == "credlybadges"
    assert [s["sourceId"] for s in h.service.profile_sources()] == [ENTRA, "credlybadges"]
    deleted = h.call("DELETE", "/admin/people/profileSources(sourceId='credlybadges')")
    assert deleted.status == 204
    missing = h.call("GET", "/admin/people/profileSources(sourceId='credlybadges')")
    assert missing.status == 404


def test_duplicate_source_id_is_409() -> None:
    h = harness()
    assert h.call("POST", "/admin/people/profileSources", SOURCE).status == 201
    assert h.call("POST", "/admin/people/profileSources", SOURCE).status == 409


def test_source_needs_source_id_display_name_and_web_url() -> None:
    h = harness()
    for missing in SOURCE:
        body = {k: v for k, v in SOURCE.items() if k != missing}
        assert h.call("POST", "/admin/people/profileSources", body).status == 400, missing


def test_patch_prioritized_sources_keeps_the_new_order() -> None:
    h = harness()
    h.call("POST", "/admin/people/profileSources", SOURCE)
    setting = _setting(h)
    urls = [_source_url("credlybadges"), *setting["prioritizedSourceUrls"]]
    reply = h.call(
        "PATCH",
        f"/admin/people/profilePropertySettings/{setting['id']}",
        {"prioritizedSourceUrls": urls},
    )
    assert reply.status == 200
    assert _setting(h)["prioritizedSourceUrls"] == urls
    assert h.service.profile_property_settings()[0]["prioritizedSourceUrls"] == urls


def test_patch_accepts_the_beta_form_of_a_source_url() -> None:
    h = harness()
    h.call("POST", "/admin/people/profileSources", SOURCE)
    setting = _setting(h)
    urls = [_source_url("credlybadges", "beta"), _source_url(ENTRA)]
    url = f"/admin/people/profilePropertySettings/{setting['id']}"
    assert h.call("PATCH", url, {"prioritizedSourceUrls": urls}).status == 200


def test_patch_with_an_unknown_source_is_400() -> None:
    h = harness()
    setting = _setting(h)
    urls = [_source_url("notregistered"), _source_url(ENTRA)]
    url = f"/admin/people/profilePropertySettings/{setting['id']}"
    assert h.call("PATCH", url, {"prioritizedSourceUrls": urls}).status == 400
    assert _setting(h)["prioritizedSourceUrls"] == [_source_url(ENTRA)]


def test_people_settings_need_people_settings_permission() -> None:
    h = harness()
    read_only = h.token_for(roles=("PeopleSettings.Read.All",))
    assert h.call("GET", "/admin/people/profileSources", token=read_only).status == 200
    assert h.call("POST", "/admin/people/profileSources", SOURCE, token=read_only).status == 403
    nothing = h.token_for(roles=("User.Read.All",))
    assert h.call("GET", "/admin/people/profilePropertySettings", token=nothing).status == 403


def test_scenario_sources_and_urls_with_graph_placeholder() -> None:
    scenario = {
        "profile_sources": [
            {"sourceId": ENTRA, "displayName": "Entra", "kind": "MSEntra", "webUrl": "x"},
            {"sourceId": "CredlyMicrosoft", "displayName": "Credly", "webUrl": "https://c"},
        ],
        "prioritized_source_urls": [
            "{graph}/v1.0/admin/people/profileSources(sourceId='CredlyMicrosoft')",
            "{graph}/v1.0/admin/people/profileSources(sourceId='" + ENTRA + "')",
        ],
    }
    h = harness(scenario=scenario)
    assert _setting(h)["prioritizedSourceUrls"] == [
        _source_url("CredlyMicrosoft"),
        _source_url(ENTRA),
    ]


APPS = [
    {
        "app_id": "bbbbbbbb-0000-0000-0000-000000000002",
        "display_name": "credlyctl",
        "secrets": [
            {
                "key_id": "k-1",
                "display_name": "ci",
                "end_date": "2026-12-01T00:00:00Z",
                "value": "sup3r-S3CRET-value-never-shown",
            }
        ],
        "roles": ["Application.Read.All"],
    }
]


def test_application_shows_password_credentials_without_secret_text() -> None:
    h = harness(apps=APPS)
    reply = h.call("GET", "/applications(appId='bbbbbbbb-0000-0000-0000-000000000002')")
    assert reply.status == 200
    credential = reply.json["passwordCredentials"][0]
    assert credential["endDateTime"] == "2026-12-01T00:00:00Z"
    assert credential["keyId"] == "k-1"
    assert credential["secretText"] is None
    # passwordCredential: `hint` holds the first three characters of the secret, no more.
    assert credential["hint"] == "sup"
    assert b"sup3r" not in reply.body


def test_application_needs_application_read_all() -> None:
    h = harness(apps=APPS)
    token = h.token_for(roles=("User.Read.All",))
    url = "/applications(appId='bbbbbbbb-0000-0000-0000-000000000002')"
    reply = h.call("GET", url, token=token)
    assert (reply.status, reply.code) == (403, "Authorization_RequestDenied")


def test_unknown_application_is_404() -> None:
    h = harness(apps=APPS)
    assert h.call("GET", "/applications(appId='nope')").status == 404


def test_a_tenant_can_start_without_a_default_profile_setting() -> None:
    h = harness(scenario={"default_profile_setting": False})
    assert h.call("GET", "/admin/people/profilePropertySettings").json["value"] == []
    entra = f"{BASE}/v1.0/admin/people/profileSources(sourceId='{DEFAULT_ENTRA_SOURCE_ID}')"
    created = h.call(
        "POST", "/admin/people/profilePropertySettings", {"prioritizedSourceUrls": [entra]}
    )
    assert created.status == 201, created.body
    assert created.json["prioritizedSourceUrls"] == [entra]
    listed = h.call("GET", "/admin/people/profilePropertySettings").json["value"]
    assert [(s["name"], s["id"]) for s in listed] == [(None, created.json["id"])]
    again = h.call(
        "POST", "/admin/people/profilePropertySettings", {"prioritizedSourceUrls": [entra]}
    )
    assert again.status == 409
    unknown = {"prioritizedSourceUrls": [f"{BASE}/v1.0/admin/people/profileSources(sourceId='x')"]}
    named = {**unknown, "name": "skills"}
    assert h.call("POST", "/admin/people/profilePropertySettings", named).status == 400
    patched = h.call(
        "PATCH", f"/admin/people/profilePropertySettings/{created.json['id']}", {"displayName": "d"}
    )
    assert patched.status == 200
