"""The simulated Entra ID through real msal and httpx over HTTPS."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import msal
import pytest
import requests

from credly_connector.simulator.runner import Simulator
from tests.sim_fixtures import sim_http, sim_ssl_context

pytestmark = pytest.mark.integration

TENANT = "8f3c2a1e-5b7d-4c9e-a0f1-2d3e4f5a6b7c"
MAIN_APP = "6f1d7a52-3c4b-4e8a-9b1c-0d2e3f4a5b6c"
MAIN_SECRET = "Qv8~sim.MainSecret-2027-7f3e9c1a5b"
OLD_SECRET = "Hp2~sim.OldSecret-2026-0a9b8c7d6e"


def app_id(sim: Simulator, display_name: str) -> str:
    return next(
        str(a["app_id"]) for a in sim.directory.all_apps() if a["display_name"] == display_name
    )


def main_app(sim: Simulator) -> dict[str, Any]:
    found = sim.directory.app(MAIN_APP)
    assert found is not None
    return found


def app_secret(sim: Simulator, app: str) -> str:
    found = sim.directory.app(app)
    assert found is not None
    return str(found["secrets"][0]["value"])


def msal_app(
    sim: Simulator,
    client_id: str,
    credential: Any,
    tenant: str = TENANT,
    *,
    use_requests: bool = False,
) -> msal.ConfidentialClientApplication:
    transport: Any
    if use_requests:
        # REQUESTS_CA_BUNDLE would override `verify` unless the session ignores the environment.
        transport = requests.Session()
        transport.trust_env = False
        transport.verify = str(sim.ca_path)
    else:
        transport = httpx.Client(verify=sim_ssl_context(sim), trust_env=False)
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=f"{sim.urls.entra}/{tenant}",
        instance_discovery=False,
        azure_region=False,
        http_client=transport,
    )


def acquire(
    sim: Simulator, client_id: str, credential: Any, scope: str | None = None, **options: Any
) -> Any:
    app = msal_app(sim, client_id, credential, **options)
    return app.acquire_token_for_client(scopes=[scope or f"{sim.urls.graph}/.default"])


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def post_token(http: httpx.Client, sim: Simulator, tenant: str = TENANT, **form: str) -> Any:
    body = {
        "grant_type": "client_credentials",
        "client_id": MAIN_APP,
        "client_secret": MAIN_SECRET,
        "scope": f"{sim.urls.graph}/.default",
    }
    body.update(form)
    return http.post(f"{sim.urls.entra}/{tenant}/oauth2/v2.0/token", data=body)


# -- discovery -------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", [TENANT, "contoso.com", "CONTOSO.onmicrosoft.com"])
def test_discovery_for_tenant_id_and_domains(
    http: httpx.Client, sim: Simulator, tenant: str
) -> None:
    answer = http.get(f"{sim.urls.entra}/{tenant}/v2.0/.well-known/openid-configuration")
    document = answer.json()
    assert answer.status_code == 200
    assert document["token_endpoint"] == f"{sim.urls.entra}/{TENANT}/oauth2/v2.0/token"
    assert document["authorization_endpoint"].startswith(sim.urls.entra + "/")
    assert document["issuer"] == f"{sim.urls.entra}/{TENANT}/v2.0"


def test_discovery_of_unknown_tenant_is_90002(http: httpx.Client, sim: Simulator) -> None:
    answer = http.get(f"{sim.urls.entra}/fabrikam.com/v2.0/.well-known/openid-configuration")
    assert answer.status_code == 400
    assert answer.json()["error_codes"] == [90002]


def test_instance_discovery_is_served(http: httpx.Client, sim: Simulator) -> None:
    answer = http.get(
        f"{sim.urls.entra}/common/discovery/instance",
        params={
            "api-version": "1.1",
            "authorization_endpoint": f"{sim.urls.entra}/{TENANT}/oauth2/v2.0/authorize",
        },
    )
    assert answer.status_code == 200
    assert TENANT in answer.json()["tenant_discovery_endpoint"]


# -- msal success paths ----------------------------------------------------------------------


@pytest.mark.parametrize("use_requests", [False, True])
def test_msal_secret_gets_token_with_roles(sim: Simulator, use_requests: bool) -> None:
    result = acquire(sim, MAIN_APP, MAIN_SECRET, use_requests=use_requests)
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    token_claims = claims(result["access_token"])
    assert token_claims["aud"] == sim.urls.graph
    assert token_claims["tid"] == TENANT
    assert token_claims["appid"] == MAIN_APP
    assert token_claims["idtyp"] == "app"
    assert "User.Read.All" in token_claims["roles"]
    assert "Application.Read.All" in token_claims["roles"]


def test_token_has_no_roles_claim_without_consent(sim: Simulator) -> None:
    client = app_id(sim, "credlyctl (no admin consent)")
    result = acquire(sim, client, app_secret(sim, client))
    assert "roles" not in claims(result["access_token"])


@pytest.mark.parametrize("scope_host", ["graph_app_id", "global_graph"])
def test_graph_resource_aliases_are_accepted(sim: Simulator, scope_host: str) -> None:
    resource = {
        "graph_app_id": "00000003-0000-0000-c000-000000000000",
        "global_graph": "https://graph.microsoft.com",
    }[scope_host]
    result = acquire(sim, MAIN_APP, MAIN_SECRET, f"{resource}/.default")
    assert "access_token" in result, result


def test_msal_certificate_with_sha1_thumbprint(sim: Simulator) -> None:
    pem = sim.certificate_path(MAIN_APP, "main").read_text()
    record = next(c for c in main_app(sim)["certificates"] if c["name"] == "main")
    credential = {"private_key": pem, "thumbprint": record["thumbprint"]}
    # msal hands this assertion over as bytes, which only requests form-encodes correctly.
    result = acquire(sim, MAIN_APP, credential, use_requests=True)
    assert "access_token" in result, result


def test_msal_certificate_with_public_certificate(sim: Simulator) -> None:
    pem = sim.certificate_path(MAIN_APP, "main").read_text()
    cert = pem[pem.index("-----BEGIN CERTIFICATE-----") :]
    result = acquire(
        sim, MAIN_APP, {"private_key": pem, "public_certificate": cert}, use_requests=True
    )
    assert "access_token" in result, result


def test_entra_token_lifetime_fault(fresh_sim: Simulator) -> None:
    fresh_sim.set_faults(entra_token_lifetime_seconds=30)
    with sim_http(fresh_sim) as http:
        answer = post_token(http, fresh_sim)
    assert answer.json()["expires_in"] == 30
    check = fresh_sim.tokens.verify(answer.json()["access_token"])
    assert check.reason == "ok"


# -- AADSTS errors ---------------------------------------------------------------------------


def assert_aadsts(result: dict[str, Any], code: int, error: str | None = None) -> None:
    assert result.get("error_codes") == [code], result
    assert result["error_description"].startswith(f"AADSTS{code}: ")
    for key in ("timestamp", "trace_id", "correlation_id", "error_uri"):
        assert result[key]
    if error is not None:
        assert result["error"] == error


def test_msal_wrong_tenant_fails_in_constructor_with_90002(sim: Simulator) -> None:
    with pytest.raises(ValueError) as caught:
        msal_app(sim, MAIN_APP, MAIN_SECRET, tenant="fabrikam.onmicrosoft.com")
    text = f"{caught.value} {caught.value.__context__}"
    assert "AADSTS90002" in text


def test_other_cloud_tenant_is_90038(http: httpx.Client, sim: Simulator) -> None:
    answer = http.get(
        f"{sim.urls.entra}/contosogov.onmicrosoft.us/v2.0/.well-known/openid-configuration"
    )
    assert answer.status_code == 400
    assert_aadsts(answer.json(), 90038)
    assert_aadsts(post_token(http, sim, tenant="contosogov.onmicrosoft.us").json(), 90038)


def test_unknown_app_is_700016(sim: Simulator) -> None:
    assert_aadsts(acquire(sim, str(uuid.uuid4()), MAIN_SECRET), 700016, "unauthorized_client")


def test_disabled_app_is_7000112(sim: Simulator) -> None:
    client = app_id(sim, "credlyctl (disabled)")
    assert_aadsts(acquire(sim, client, app_secret(sim, client)), 7000112)


def test_wrong_secret_is_7000215_with_401(http: httpx.Client, sim: Simulator) -> None:
    answer = post_token(http, sim, client_secret="not-the-secret")
    assert answer.status_code == 401
    assert_aadsts(answer.json(), 7000215, "invalid_client")
    assert_aadsts(acquire(sim, MAIN_APP, "not-the-secret"), 7000215)


def test_secret_id_pasted_instead_of_value_is_7000215(sim: Simulator) -> None:
    key_id = main_app(sim)["secrets"][0]["key_id"]
    result = acquire(sim, MAIN_APP, key_id)
    assert_aadsts(result, 7000215)
    assert "secret ID" in result["error_description"]


def test_expired_secret_is_7000222(sim: Simulator) -> None:
    assert_aadsts(acquire(sim, MAIN_APP, OLD_SECRET), 7000222, "invalid_client")


def test_no_credential_is_7000218(http: httpx.Client, sim: Simulator) -> None:
    answer = post_token(http, sim, client_secret="")
    assert answer.status_code == 401
    assert_aadsts(answer.json(), 7000218)


def test_unregistered_certificate_is_700027(sim: Simulator) -> None:
    pem = sim.certificate_path(MAIN_APP, "unregistered").read_text()
    cert = pem[pem.index("-----BEGIN CERTIFICATE-----") :]
    result = acquire(
        sim, MAIN_APP, {"private_key": pem, "public_certificate": cert}, use_requests=True
    )
    assert_aadsts(result, 700027)


def test_wrong_private_key_is_700027(sim: Simulator) -> None:
    pem = sim.certificate_path(MAIN_APP, "wrong-key").read_text()
    cert = pem[pem.index("-----BEGIN CERTIFICATE-----") :]
    result = acquire(
        sim, MAIN_APP, {"private_key": pem, "public_certificate": cert}, use_requests=True
    )
    assert_aadsts(result, 700027)
    assert "signature" in result["error_description"]


@pytest.mark.parametrize(
    "resource", ["https://graph.microsoft.us", "https://dod-graph.microsoft.us", "https://graf"]
)
def test_wrong_resource_is_500011(sim: Simulator, resource: str) -> None:
    assert_aadsts(acquire(sim, MAIN_APP, MAIN_SECRET, f"{resource}/.default"), 500011)


def test_scope_without_default_is_1002012(http: httpx.Client, sim: Simulator) -> None:
    answer = post_token(http, sim, scope="User.Read.All")
    assert answer.status_code == 400
    assert_aadsts(answer.json(), 1002012, "invalid_scope")


def test_correlation_id_echoes_client_request_id(http: httpx.Client, sim: Simulator) -> None:
    request_id = str(uuid.uuid4())
    answer = http.post(
        f"{sim.urls.entra}/{TENANT}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": MAIN_APP,
            "client_secret": "wrong",
            "scope": f"{sim.urls.graph}/.default",
        },
        headers={"client-request-id": request_id},
    )
    document = answer.json()
    assert document["correlation_id"] == request_id
    assert f"Correlation ID: {request_id}" in document["error_description"]


def test_disabling_an_app_while_running(fresh_sim: Simulator) -> None:
    assert "access_token" in acquire(fresh_sim, MAIN_APP, MAIN_SECRET)
    fresh_sim.update_app(MAIN_APP, enabled=False)
    with sim_http(fresh_sim) as http:
        assert_aadsts(post_token(http, fresh_sim).json(), 7000112)


def test_malformed_assertion_is_rejected(sim: Simulator) -> None:
    # msal passes certificate assertions as bytes; httpx form-encodes them as "b'...'", which
    # Entra cannot parse. Clients using certificates must hand msal a requests.Session.
    pem = sim.certificate_path(MAIN_APP, "main").read_text()
    cert = pem[pem.index("-----BEGIN CERTIFICATE-----") :]
    result = acquire(sim, MAIN_APP, {"private_key": pem, "public_certificate": cert})
    assert_aadsts(result, 50027, "invalid_request")


def test_client_secret_basic(http: httpx.Client, sim: Simulator) -> None:
    answer = http.post(
        f"{sim.urls.entra}/{TENANT}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": f"{sim.urls.graph}/.default"},
        auth=(MAIN_APP, MAIN_SECRET),
    )
    assert answer.status_code == 200, answer.text
    wrong = http.post(
        f"{sim.urls.entra}/{TENANT}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": f"{sim.urls.graph}/.default"},
        auth=(MAIN_APP, "wrong"),
    )
    assert_aadsts(wrong.json(), 7000215)
