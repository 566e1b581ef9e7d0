"""How fast the simulated Graph answers the calls a large sync makes (in-process, no TLS).

Builds a directory of N generated users (credly_connector.simulator.generator) and times,
through `GraphService.handle`: listing every user with $top=999, a full /users/delta, one
incremental delta after 1% of users changed, single-user lookups by `$filter`, and item PUTs
in $batch requests of 20. Prints one line per figure; there is no pass/fail.

    python benchmarks/sim_graph_throughput.py [--users 50000] [--lookups 200] [--items 2000]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from credly_connector.simulator.core import SimRequest, SimResponse, TokenStore
from credly_connector.simulator.directory import Directory
from credly_connector.simulator.generator import generate
from credly_connector.simulator.graph import GraphService

BASE = "https://127.0.0.1:1"
SCHEMA = {
    "baseType": "microsoft.graph.externalItem",
    "properties": [
        {"name": "account", "type": "string", "labels": ["personAccount"]},
        {"name": "awards", "type": "stringCollection", "labels": ["personAwards"]},
    ],
}


def _caller(service: GraphService, token: str) -> Callable[..., SimResponse]:
    def call(method: str, url: str, body: Any = None) -> SimResponse:
        parts = urlsplit(url)
        raw = json.dumps(body).encode() if body is not None else b""
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        request = SimRequest(
            method,
            unquote(parts.path),
            parse_qs(parts.query, keep_blank_values=True),
            headers,
            raw,
            BASE,
        )
        response = service.handle(request)
        assert response.status < 400, response.body[:300]
        return response

    return call


def _drain(call: Callable[..., SimResponse], url: str) -> tuple[int, int, str]:
    pages = entries = 0
    while True:
        document = json.loads(call("GET", url).body)
        pages += 1
        entries += len(document["value"])
        url = document.get("@odata.nextLink", "")
        if not url:
            return pages, entries, str(document.get("@odata.deltaLink", ""))


def _timed(label: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = action()
    print(f"{label:<44} {time.perf_counter() - started:8.3f} s   {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--items", type=int, default=2_000)
    options = parser.parse_args()

    scenario = generate(users=options.users, badges=0)
    entra = scenario["entra"]
    directory = _timed(
        f"load a directory of {options.users} users",
        lambda: Directory(entra["tenant_id"], entra["users"], []),
    )
    tokens = TokenStore()
    service = GraphService(directory, tokens, {"schema_delay_seconds": 0})
    roles = ["User.Read.All", "ExternalConnection.ReadWrite.All", "ExternalItem.ReadWrite.All"]
    token = tokens.issue({"aud": BASE, "tid": entra["tenant_id"], "roles": roles}, 3600)
    call = _caller(service, token)
    select = "id,userPrincipalName,mail,proxyAddresses,accountEnabled,assignedLicenses,userType"

    _timed(
        "list all users ($top=999): pages, users",
        lambda: _drain(call, f"/v1.0/users?$select={select}&$top=999")[:2],
    )
    links: list[str] = []

    def full_delta() -> tuple[int, int]:
        pages, users, link = _drain(call, f"/v1.0/users/delta?$select={select}")
        links.append(link)
        return pages, users

    _timed("full /users/delta: pages, users", full_delta)
    delta_link = links[0]
    users = directory.all_users()
    for user in users[: max(1, len(users) // 100)]:
        directory.update(user["id"], accountEnabled=not user.get("accountEnabled", True))
    _timed("incremental delta after 1% changed: pages, users", lambda: _drain(call, delta_link)[:2])

    def lookups() -> str:
        for user in users[: options.lookups]:
            expression = quote(f"proxyAddresses/any(x:x eq 'smtp:{user['mail']}')")
            call("GET", f"/v1.0/users?$select=id&$filter={expression}")
        return f"{options.lookups} lookups"

    first = quote(f"mail eq '{users[-1]['mail']}'")
    _timed(
        "first lookup after a change (index rebuilt)",
        lambda: call("GET", f"/v1.0/users?$select=id&$filter={first}").status,
    )
    seconds = time.perf_counter()
    _timed("$filter lookups by proxy address", lookups)
    per = (time.perf_counter() - seconds) / max(1, options.lookups) * 1000
    print(f"{'  per lookup':<44} {per:8.2f} ms")

    call(
        "POST",
        "/v1.0/external/connections",
        {"id": "bench", "name": "bench", "contentCategory": "people"},
    )
    call("PATCH", "/v1.0/external/connections/bench/schema", SCHEMA)

    def ingest() -> str:
        for start in range(0, options.items, 20):
            requests = [
                {
                    "id": str(n),
                    "method": "PUT",
                    "url": f"/external/connections/bench/items/i{n}",
                    "headers": {"Content-Type": "application/json"},
                    "body": {
                        "acl": [{"type": "everyone", "value": "everyone", "accessType": "grant"}],
                        "properties": {
                            "account": json.dumps({"userPrincipalName": f"u{n}@contoso.com"}),
                            "awards": [json.dumps({"displayName": "Badge"})],
                        },
                    },
                }
                for n in range(start, min(start + 20, options.items))
            ]
            call("POST", "/v1.0/$batch", {"requests": requests})
        return f"{options.items} items"

    _timed("item PUTs in $batch of 20", ingest)


if __name__ == "__main__":
    main()
