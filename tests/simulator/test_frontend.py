"""The HTTPS front end: TLS, injected faults, the request log and its secrecy."""

from __future__ import annotations

import json
import socket
import ssl

import httpx
import pytest

from credly_connector.simulator.runner import Simulator
from tests.sim_fixtures import sim_http

pytestmark = pytest.mark.integration

ORG1 = "5e2c8a41-9d3b-4f6e-8a7c-1b2d3e4f5a60"
CREDLY_CLIENT = ("contoso-credly-sync-1f4e7a", "cs_sim_4Jt8pQ2vX6nB9mK3wR7yL1aZ5")
MAIN_APP = "6f1d7a52-3c4b-4e8a-9b1c-0d2e3f4a5b6c"
MAIN_SECRET = "Qv8~sim.MainSecret-2027-7f3e9c1a5b"


def credly_token(http: httpx.Client, sim: Simulator) -> httpx.Response:
    client_id, secret = CREDLY_CLIENT
    return http.post(
        f"{sim.urls.credly_web}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )


def test_every_service_speaks_tls_with_the_generated_ca(sim: Simulator) -> None:
    assert sim.ca_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    with sim_http(sim) as http:
        for url in (sim.urls.credly_web, sim.urls.credly_api, sim.urls.entra, sim.urls.graph):
            assert url.startswith("https://127.0.0.1:")
            http.get(url + "/")  # any answer proves the handshake succeeded
    with httpx.Client(trust_env=False) as untrusting, pytest.raises(httpx.ConnectError):
        untrusting.get(sim.urls.credly_web + "/")


def test_failed_handshakes_do_not_break_the_server(sim: Simulator) -> None:
    port = int(sim.urls.credly_web.rsplit(":", 1)[1])
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP on a TLS port
    with sim_http(sim) as http:
        assert http.get(sim.urls.credly_web + "/").status_code == 200


def test_http_client_over_plain_socket_context(sim: Simulator) -> None:
    context = ssl.create_default_context(cafile=str(sim.ca_path))
    port = int(sim.urls.entra.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}


def test_error_503_next_answers_with_retry_after(fresh_sim: Simulator) -> None:
    fresh_sim.set_faults(error_503_next=2)
    with sim_http(fresh_sim) as http:
        first = credly_token(http, fresh_sim)
        second = credly_token(http, fresh_sim)
        third = credly_token(http, fresh_sim)
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.headers["retry-after"] == "1"
    faults = [entry.fault for entry in fresh_sim.request_log()]
    assert faults == ["503", "503", None]


def test_error_503_rate_is_deterministic(fresh_sim: Simulator) -> None:
    fresh_sim.set_faults(error_503_rate=0.25)
    with sim_http(fresh_sim) as http:
        statuses = [credly_token(http, fresh_sim).status_code for _ in range(8)]
    assert statuses.count(503) == 2
    assert statuses[3] == 503 and statuses[7] == 503


def test_error_503_can_target_one_service(fresh_sim: Simulator) -> None:
    fresh_sim.set_faults(error_503_rate=1.0, error_503_services=["entra"])
    with sim_http(fresh_sim) as http:
        assert credly_token(http, fresh_sim).status_code == 200
        discovery = http.get(
            f"{fresh_sim.urls.entra}/{fresh_sim.tenant_id}/v2.0/.well-known/openid-configuration"
        )
        assert discovery.status_code == 503
    fresh_sim.set_faults(error_503_rate=0.0)
    with sim_http(fresh_sim) as http:
        assert http.get(f"{fresh_sim.urls.entra}/common/discovery/instance").status_code == 200


def test_bad_fault_values_are_refused(sim: Simulator) -> None:
    with pytest.raises(ValueError):
        sim.set_faults(error_503_rate=2)
    with pytest.raises(KeyError):
        sim.set_faults(no_such_fault=1)


def test_malformed_json_for_a_path_n_times(fresh_sim: Simulator) -> None:
    fresh_sim.set_faults(
        malformed_json=[{"path": r"/badges$", "service": "credly-api", "times": 1}]
    )
    with sim_http(fresh_sim) as http:
        token = credly_token(http, fresh_sim).json()["access_token"]  # token path: untouched
        url = f"{fresh_sim.urls.credly_api}/organizations/{ORG1}/badges"
        headers = {"Authorization": f"Bearer {token}"}
        broken = http.get(url, headers=headers)
        assert broken.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(broken.text)
        assert http.get(url, headers=headers).json()["data"]
    assert [e.fault for e in fresh_sim.request_log()] == [None, "malformed_json", None]


def test_latency_is_added_and_recorded(fresh_sim: Simulator) -> None:
    fresh_sim.set_faults(latency_seconds=0.05)
    with sim_http(fresh_sim) as http:
        credly_token(http, fresh_sim)
    (entry,) = fresh_sim.request_log()
    assert entry.duration >= 0.05  # a lower bound only: the sleep guarantees it


def test_request_log_records_service_method_path_status(fresh_sim: Simulator) -> None:
    with sim_http(fresh_sim) as http:
        token = credly_token(http, fresh_sim).json()["access_token"]
        http.get(
            f"{fresh_sim.urls.credly_api}/organizations/{ORG1}/badges",
            params={"page": "1", "filter": "recipient_email::alex.wilber@contoso.com"},
            headers={"Authorization": f"Bearer {token}"},
        )
    token_entry, badges_entry = fresh_sim.request_log()
    assert (token_entry.service, token_entry.method, token_entry.path, token_entry.status) == (
        "credly-web",
        "POST",
        "/oauth/token",
        200,
    )
    assert badges_entry.service == "credly-api" and badges_entry.method == "GET"
    assert badges_entry.query == {"page": "1"}  # the filter (an email) is not recorded
    fresh_sim.clear_request_log()
    assert fresh_sim.request_log() == []


def test_request_log_never_holds_a_secret(fresh_sim: Simulator) -> None:
    secrets = [CREDLY_CLIENT[1], MAIN_SECRET, "at_sim_contoso_valid_6Gf2Hj8Kl4Zx0Cv"]
    with sim_http(fresh_sim) as http:
        credly = credly_token(http, fresh_sim).json()["access_token"]
        http.get(
            f"{fresh_sim.urls.credly_api}/organizations/{ORG1}",
            headers={"Authorization": f"Bearer {credly}"},
            params={"access_token": credly},  # even a client misplacing a token in the URL
        )
        entra = http.post(
            f"{fresh_sim.urls.entra}/{fresh_sim.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": MAIN_APP,
                "client_secret": MAIN_SECRET,
                "scope": f"{fresh_sim.urls.graph}/.default",
            },
        ).json()["access_token"]
        http.get(f"{fresh_sim.urls.graph}/v1.0/users", headers={"Authorization": f"Bearer {entra}"})
    text = repr(fresh_sim.request_log())
    for secret in [*secrets, credly, entra]:
        assert secret not in text
    assert len(fresh_sim.request_log()) == 4


def test_servers_are_quiet_on_stderr(
    fresh_sim: Simulator, capfd: pytest.CaptureFixture[str]
) -> None:
    with sim_http(fresh_sim) as http:
        credly_token(http, fresh_sim)
        http.get(fresh_sim.urls.credly_web + "/nowhere")
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_stop_removes_the_workdir_and_frees_ports() -> None:
    from credly_connector.simulator.runner import start_simulator

    simulator = start_simulator("demo")
    workdir, url = simulator.workdir, simulator.urls.credly_web
    # Trusting only this run's CA: should another simulator reuse the port, TLS fails too.
    context = ssl.create_default_context(cadata=simulator.ca_path.read_text())
    simulator.stop()
    assert not workdir.exists()
    with httpx.Client(trust_env=False, verify=context) as http, pytest.raises(httpx.ConnectError):
        http.get(url + "/")


def test_stop_cuts_kept_alive_connections() -> None:
    from credly_connector.simulator.runner import start_simulator

    simulator = start_simulator("demo")
    context = ssl.create_default_context(cadata=simulator.ca_path.read_text())
    with httpx.Client(trust_env=False, verify=context) as http:
        assert http.get(simulator.urls.credly_web + "/").status_code == 200  # pooled now
        simulator.stop()
        with pytest.raises(httpx.TransportError):
            http.get(simulator.urls.credly_web + "/")
