"""The front end with stand-in services: request translation, crashes, chunked bodies."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from credly_connector.simulator.core import SimRequest, SimResponse
from credly_connector.simulator.server import Faults, RequestLog, SimServer, server_context


class Echo:
    name = "echo"

    def handle(self, request: SimRequest) -> SimResponse:
        if request.path == "/crash":
            raise RuntimeError("a bug in a service")
        return SimResponse.json(
            200,
            {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "body": request.body.decode(),
                "base_url": request.base_url,
                "has_lower_header": "x-custom" in request.headers,
            },
        )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[SimServer, httpx.Client]]:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    context = server_context(
        leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes(), tmp_path
    )
    instance = SimServer("echo", context, Faults(), RequestLog())
    instance.service = Echo()
    instance.start()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    try:
        with httpx.Client(verify=client_context, trust_env=False) as http:
            yield instance, http
    finally:
        instance.stop()


def test_request_is_translated(server: tuple[SimServer, httpx.Client]) -> None:
    instance, http = server
    answer = http.put(
        f"{instance.base_url}/a%20b/c",
        params={"x": ["1", "2"], "$top": "5"},
        content=b"payload",
        headers={"X-Custom": "yes"},
    ).json()
    assert answer == {
        "method": "PUT",
        "path": "/a b/c",
        "query": {"x": ["1", "2"], "$top": ["5"]},
        "body": "payload",
        "base_url": instance.base_url,
        "has_lower_header": True,
    }
    (entry,) = instance.log.entries()
    assert entry.query == {"$top": "5"}


def test_chunked_bodies_are_read(server: tuple[SimServer, httpx.Client]) -> None:
    instance, http = server

    def parts() -> Iterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    answer = http.post(f"{instance.base_url}/x", content=parts())
    assert json.loads(answer.json()["body"]) == {"a": 1}


def test_a_crashing_service_answers_500_and_keeps_serving(
    server: tuple[SimServer, httpx.Client],
) -> None:
    instance, http = server
    crashed = http.get(f"{instance.base_url}/crash")
    assert crashed.status_code == 500
    assert "a bug in a service" not in crashed.text  # no internals leak to clients
    assert http.get(f"{instance.base_url}/fine").status_code == 200


def test_no_service_yet_is_503(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    context = server_context(
        leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes(), tmp_path
    )
    instance = SimServer("idle", context, Faults(), RequestLog())
    instance.start()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    try:
        with httpx.Client(verify=client_context, trust_env=False) as http:
            answer = http.get(instance.base_url + "/")
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    finally:
        instance.stop()
