"""The clients over real HTTPS (httpx + msal) against the simulator on 127.0.0.1."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from credly_connector.config.load import load_instance
from credly_connector.config.resolved import InstanceSettings
from credly_connector.credly.client import CredlyClient
from credly_connector.credly.errors import CredlyAuthError, CredlyUnavailable
from credly_connector.graph.auth import EntraTokenProvider
from credly_connector.graph.client import GraphClient
from credly_connector.graph.errors import DeltaExpiredError, EntraAuthError, GraphPermissionError
from credly_connector.net import Retrier, build_http_client
from credly_connector.secrets import Secret
from credly_connector.simulator.runner import Simulator

pytestmark = pytest.mark.integration

ORG = "5e2c8a41-9d3b-4f6e-8a7c-1b2d3e4f5a60"
SECOND_ORG = "a7b9c1d3-2e4f-4a6b-9c8d-0e1f2a3b4c5d"
MAIN_APP = "6f1d7a52-3c4b-4e8a-9b1c-0d2e3f4a5b6c"


def no_sleep(_seconds: float) -> None:
    """Simulator Retry-After values are real seconds; tests never wait for them."""


def settings_for(sim: Simulator, tmp_path: Path, **options: Any) -> InstanceSettings:
    path = sim.write_config(tmp_path / "credlyctl.toml", **options)
    return load_instance(path, "demo")


def credly(settings: InstanceSettings, **kw: Any) -> CredlyClient:
    kw.setdefault("sleep", lambda _s: None)
    return CredlyClient(settings.credly, build_http_client(settings, "credly"), **kw)


def tokens(settings: InstanceSettings) -> EntraTokenProvider:
    http = build_http_client(settings, "microsoft")
    return EntraTokenProvider(settings.entra, http, retrier=Retrier(sleep=no_sleep))


def graph(settings: InstanceSettings) -> GraphClient:
    http = build_http_client(settings, "microsoft")
    provider = EntraTokenProvider(settings.entra, http, retrier=Retrier(sleep=no_sleep))
    return GraphClient(settings, http, provider, sleep=no_sleep)


def test_credly_oauth_organization_and_badges(sim: Simulator, tmp_path: Path) -> None:
    client = credly(settings_for(sim, tmp_path))
    org = client.get_organization()
    assert org.id == ORG and org.name == "Contoso Ltd"
    badges = client.list_badges()
    assert {b.id for b in badges} == {b["id"] for b in sim.badges(ORG)}
    assert any(org.id == ORG for org in client.list_organizations())


def test_credly_pagination_sequential_and_parallel_agree(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    for n in range(120):
        fresh_sim.add_badge(ORG, recipient_email=f"bulk{n}@contoso.com", state="accepted")
    client = credly(settings_for(fresh_sim, tmp_path), page_concurrency=3)
    fresh_sim.clear_request_log()
    listed = client.list_badges()
    walked = list(client.iter_badges())
    expected = {b["id"] for b in fresh_sim.badges(ORG)}
    assert len(expected) > 100
    assert [b.id for b in listed] == [b.id for b in walked]
    assert {b.id for b in listed} == expected
    credly_requests = [e for e in fresh_sim.request_log() if e.service.startswith("credly")]
    assert {(e.method, e.path) for e in credly_requests if e.method != "GET"} == {
        ("POST", "/oauth/token")
    }
    assert len([e for e in credly_requests if e.path.endswith("/badges")]) == 6  # 3 pages x 2


def test_credly_recipient_filter(sim: Simulator, tmp_path: Path) -> None:
    some = next(b for b in sim.badges(ORG) if b.get("recipient_email"))
    found = list(
        credly(settings_for(sim, tmp_path)).iter_badges(recipient_email=some["recipient_email"])
    )
    assert some["id"] in {b.id for b in found}
    assert all(b.recipient_email == some["recipient_email"] for b in found)


def test_credly_authorization_token_valid_and_expired(sim: Simulator, tmp_path: Path) -> None:
    valid = credly(settings_for(sim, tmp_path, credly_auth="token"))
    assert valid.get_organization().id == ORG
    base = settings_for(sim, tmp_path, credly_auth="token")
    # The configuration refuses a token it knows has expired; the server must say it too.
    stale = Secret("at_sim_contoso_expired_3Nb7Mq1Wr5Ty9", "inline")
    expired = credly(
        dataclasses.replace(
            base,
            credly=dataclasses.replace(
                base.credly, authorization_token=stale, authorization_token_created=None
            ),
        )
    )
    with pytest.raises(CredlyAuthError) as caught:
        expired.get_organization()
    assert caught.value.kind == "token_rejected"
    assert "at_sim_contoso_expired" not in str(caught.value) + caught.value.hint


def test_credly_wrong_secret_and_foreign_org(fresh_sim: Simulator, tmp_path: Path) -> None:
    wrong = credly(settings_for(fresh_sim, tmp_path, credly_client_secret="cs_sim_WRONG_value_123"))
    with pytest.raises(CredlyAuthError) as caught:
        wrong.get_organization()
    assert caught.value.kind == "invalid_client"
    assert "cs_sim_WRONG" not in str(caught.value) + caught.value.hint
    foreign = credly(settings_for(fresh_sim, tmp_path, org_id=SECOND_ORG))
    with pytest.raises(CredlyAuthError) as caught:
        foreign.get_organization()
    assert caught.value.kind == "forbidden"
    fresh_sim.set_switches(foreign_org_status=404)
    with pytest.raises(CredlyAuthError) as caught:
        credly(settings_for(fresh_sim, tmp_path, org_id=SECOND_ORG)).get_organization()
    assert caught.value.kind == "not_found"
    with pytest.raises(CredlyAuthError) as caught:
        credly(
            settings_for(fresh_sim, tmp_path, org_id="00000000-0000-4000-8000-000000000000")
        ).get_organization()
    assert caught.value.kind == "not_found"


def test_credly_client_without_the_read_scope(fresh_sim: Simulator, tmp_path: Path) -> None:
    for mode in ("token", "api"):
        fresh_sim.set_switches(scope_error=mode)
        client = credly(
            settings_for(fresh_sim, tmp_path, credly_client_id="contoso-templates-only-3c9e1d")
        )
        with pytest.raises(CredlyAuthError) as caught:
            client.list_badges()
        assert caught.value.kind in {"forbidden", "invalid_client"}


def test_credly_faults_503_and_malformed_are_survived(fresh_sim: Simulator, tmp_path: Path) -> None:
    client = credly(settings_for(fresh_sim, tmp_path))
    client.get_organization()
    fresh_sim.set_faults(error_503_next=2, malformed_json=[{"path": "/badges", "times": 1}])
    assert {b.id for b in client.list_badges()} == {b["id"] for b in fresh_sim.badges(ORG)}
    assert client.stats()["throttle_waits"] == 2


def test_credly_unknown_states_are_kept(fresh_sim: Simulator, tmp_path: Path) -> None:
    badge_id = fresh_sim.badges(ORG)[0]["id"]
    fresh_sim.set_faults(unknown_badge_states={badge_id: "Archived"})
    found = {b.id: b for b in credly(settings_for(fresh_sim, tmp_path)).list_badges()}
    assert found[badge_id].state == "archived" and not found[badge_id].state_known


def test_tls_without_the_simulator_ca_fails_cleanly(sim: Simulator, tmp_path: Path) -> None:
    settings = settings_for(sim, tmp_path)
    untrusting = dataclasses.replace(
        settings, network=dataclasses.replace(settings.network, ca_bundle=None)
    )
    with pytest.raises(CredlyUnavailable) as caught:
        credly(untrusting).get_organization()
    assert caught.value.kind == "tls"


def test_entra_secret_token_and_roles(sim: Simulator, tmp_path: Path) -> None:
    provider = tokens(settings_for(sim, tmp_path))
    assert provider.get_token()
    roles = provider.granted_roles()
    assert roles is not None and "User.Read.All" in roles
    claims = provider.token_claims()
    assert claims is not None and claims.get("tid") == sim.tenant_id


def test_entra_certificate_token(sim: Simulator, tmp_path: Path) -> None:
    provider = tokens(settings_for(sim, tmp_path, certificate="main"))
    assert provider.get_token()


@pytest.mark.parametrize("certificate", ["unregistered", "wrong-key"])
def test_entra_bad_certificates(sim: Simulator, tmp_path: Path, certificate: str) -> None:
    with pytest.raises(EntraAuthError) as caught:
        tokens(settings_for(sim, tmp_path, certificate=certificate)).get_token()
    assert 700027 in caught.value.codes


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"entra_secret": "wrong-secret-value-000"}, 7000215),
        ({"entra_secret": "1da060c2-3e2f-5f9a-8ee3-69ad65d780b7"}, 7000215),  # the secret ID
        ({"entra_app_id": "7fce0525-1198-54ed-b2c6-85b694238a1c"}, 7000112),
        ({"entra_app_id": "78136455-69bd-57e6-b910-39ce8a7e7ba8"}, 7000222),
        ({"client_id": "00000000-1111-2222-3333-444444444444"}, 700016),
        ({"tenant_id": "99999999-8888-7777-6666-555555555555"}, 90002),
        ({"tenant_id": "3b5d7f9a-1c2e-4a6b-8d0f-2e4a6c8e0b1d"}, 90038),
    ],
)
def test_entra_errors_over_https(
    sim: Simulator, tmp_path: Path, options: dict[str, Any], code: int
) -> None:
    client_id = options.pop("client_id", None)
    settings = settings_for(sim, tmp_path, **options)
    if client_id:  # an app id no registration has (the config helper only knows real apps)
        settings = dataclasses.replace(
            settings, entra=dataclasses.replace(settings.entra, client_id=client_id)
        )
    with pytest.raises(EntraAuthError) as caught:
        tokens(settings).get_token()
    exc = caught.value
    assert code in exc.codes
    assert exc.correlation_id and exc.trace_id and exc.timestamp
    secret = options.get("entra_secret")
    if secret:
        assert secret not in str(exc) + repr(exc) + exc.hint + str(exc.summary)


def test_entra_empty_secret(sim: Simulator, tmp_path: Path) -> None:
    settings = settings_for(sim, tmp_path)
    empty = dataclasses.replace(
        settings, entra=dataclasses.replace(settings.entra, client_secret=Secret("", "inline"))
    )
    with pytest.raises(EntraAuthError) as caught:
        tokens(empty).get_token()
    assert 7000218 in caught.value.codes


def test_graph_users_and_lookups(sim: Simulator, tmp_path: Path) -> None:
    client = graph(settings_for(sim, tmp_path))
    users = list(client.iter_users())
    assert users and all(u.id for u in users)
    someone = next(u for u in users if u.mail)
    found = client.find_users_by_addresses([someone.mail.upper()] if someone.mail else [])
    assert someone.id in {u.id for u in found}
    many = [*(u.user_principal_name for u in users[:12]), "nobody@contoso.com"]
    assert {u.id for u in client.find_users_by_addresses(many)} >= {u.id for u in users[:12]}
    assert client.get_user(someone.user_principal_name) is not None
    assert client.get_user("nobody-at-all@contoso.com") is None
    delta = client.users_delta(None)
    assert delta.delta_link and len(delta.users) == len(users)


def test_graph_missing_permission_names_it(sim: Simulator, tmp_path: Path) -> None:
    client = graph(
        settings_for(
            sim,
            tmp_path,
            entra_app_id="613d025a-96de-5a1e-820f-5db98b64f910",
        )
    )
    assert list(client.iter_users())
    with pytest.raises(GraphPermissionError) as caught:
        client.list_connections()
    assert caught.value.permission == "ExternalConnection.ReadWrite.OwnedBy"


def test_graph_connection_lifecycle_and_batch(fresh_sim: Simulator, tmp_path: Path) -> None:
    from credly_connector.graph.batch import BatchRequest

    client = graph(settings_for(fresh_sim, tmp_path))
    fresh_sim.set_faults(graph_schema_delay_seconds=0)
    created = client.create_connection("credlyitest", "Credly test", "integration test")
    assert created["id"] == "credlyitest"
    again = client.create_connection("credlyitest", "Credly test", "integration test")
    assert again["id"] == "credlyitest"
    properties = [
        {"name": "account", "type": "string", "labels": ["personAccount"]},
        {"name": "awards", "type": "stringCollection", "labels": ["personAwards"]},
    ]
    operation = client.register_schema("credlyitest", properties)
    assert client.get_operation(operation)["status"] in {"inprogress", "completed"}
    assert client.get_item("credlyitest", "nothere") is None
    assert client.delete_item("credlyitest", "nothere") is False
    answers = client.batch(
        [
            BatchRequest("1", "GET", "/external/connections/credlyitest"),
            BatchRequest("2", "GET", "/external/connections/missing1"),
        ]
    )
    assert [a.status for a in answers] == [200, 404]
    assert client.delete_connection("credlyitest") is True
    assert client.get_connection("credlyitest") is None


def test_graph_delta_link_round_trip_and_expiry(fresh_sim: Simulator, tmp_path: Path) -> None:
    client = graph(settings_for(fresh_sim, tmp_path))
    first = client.users_delta(None)
    someone = first.users[0]
    fresh_sim.update_user(someone.id, displayName="Renamed In Test")
    second = client.users_delta(first.delta_link)
    assert [u.display_name for u in second.users if u.id == someone.id] == ["Renamed In Test"]
    fresh_sim.expire_delta_tokens()
    with pytest.raises(DeltaExpiredError):
        client.users_delta(second.delta_link)


def test_credly_token_expiring_mid_run_is_renewed_once(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    import time

    fresh_sim.set_faults(credly_token_lifetime_seconds=1)
    # A frozen clock: the client believes its token is fresh, so only the server's 401 can
    # trigger the renewal.
    client = credly(settings_for(fresh_sim, tmp_path), clock=lambda: 0.0)
    client.get_organization()
    # Tokens issued from now on live long, so a slow machine cannot expire the renewed one too.
    fresh_sim.set_faults(credly_token_lifetime_seconds=3600)
    time.sleep(1.2)
    fresh_sim.clear_request_log()
    assert client.get_organization().id == ORG
    log = [(e.method, e.path, e.status) for e in fresh_sim.request_log()]
    assert log == [
        ("GET", f"/v1/organizations/{ORG}", 401),
        ("POST", "/oauth/token", 200),
        ("GET", f"/v1/organizations/{ORG}", 200),
    ]
