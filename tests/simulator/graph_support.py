"""Helpers for the simulated Graph's unit tests: a directory, tokens and a `call()` shortcut."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from credly_connector.simulator.core import SimRequest, TokenStore
from credly_connector.simulator.directory import Directory
from credly_connector.simulator.graph import GraphService

BASE = "https://127.0.0.1:4443"
TENANT = "11111111-2222-3333-4444-555555555555"
APP_ID = "aaaaaaaa-0000-0000-0000-000000000001"
ALL_ROLES = (
    "User.Read.All",
    "ExternalConnection.ReadWrite.OwnedBy",
    "ExternalItem.ReadWrite.OwnedBy",
    "PeopleSettings.ReadWrite.All",
    "Application.Read.All",
)
# Graph's opt-in for evolvable enum members such as the person labels (graph_enums).
PREFER_UNKNOWN = {"Prefer": "include-unknown-enum-members"}
PEOPLE_SCHEMA = {
    "baseType": "microsoft.graph.externalItem",
    "properties": [
        {"name": "account", "type": "string", "labels": ["personAccount"]},
        {"name": "awards", "type": "stringCollection", "labels": ["personAwards"]},
        {"name": "certifications", "type": "stringCollection", "labels": ["personCertifications"]},
    ],
}


def user(number: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"00000000-0000-0000-0000-{number:012d}",
        "userPrincipalName": f"user{number}@contoso.com",
        "displayName": f"User {number}",
        "mail": f"user{number}@contoso.com",
        "proxyAddresses": [f"SMTP:user{number}@contoso.com", f"smtp:alias{number}@contoso.com"],
        "accountEnabled": True,
        "assignedLicenses": [{"skuId": "sku-e3", "disabledPlans": []}],
        "userType": "Member",
        "hasMailbox": True,
    }
    record.update(fields)
    return record


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        return str(self.json["error"]["code"])


@dataclass
class GraphHarness:
    service: GraphService
    directory: Directory
    tokens: TokenStore
    clock: FakeClock
    token: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def token_for(
        self, roles: tuple[str, ...] | None = ALL_ROLES, lifetime: float = 3600, **claims: Any
    ) -> str:
        body: dict[str, Any] = {"aud": BASE, "tid": TENANT, "appid": APP_ID, **claims}
        if roles is not None:
            body["roles"] = list(roles)
        return self.tokens.issue(body, lifetime)

    def call(
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> Reply:
        parts = urlsplit(url)
        if parts.scheme:
            assert f"{parts.scheme}://{parts.netloc}" == BASE, url
        path = unquote(parts.path)
        if not path.startswith("/v1.0"):
            path = "/v1.0" + path
        sent = {k.lower(): v for k, v in (headers or {}).items()}
        chosen = self.token if token is None else token
        if chosen:
            sent["authorization"] = f"Bearer {chosen}"
        raw = (
            body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        )
        if raw:
            sent.setdefault("content-type", "application/json")
        response = self.service.handle(
            SimRequest(
                method=method,
                path=path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers=sent,
                body=raw,
                base_url=BASE,
            )
        )
        return Reply(response.status, response.headers, response.body)

    def ready_connection(self, connection_id: str = "credlybadges") -> None:
        created = self.call(
            "POST",
            "/external/connections",
            {
                "id": connection_id,
                "name": "Credly badges",
                "description": "Credly badges",
                "contentCategory": "people",
            },
        )
        assert created.status == 201, created.body
        schema = self.call(
            "PATCH",
            f"/external/connections/{connection_id}/schema",
            PEOPLE_SCHEMA,
            headers=PREFER_UNKNOWN,
        )
        assert schema.status == 202, schema.body
        self.clock.advance(3600)
        assert self.call("GET", f"/external/connections/{connection_id}").json["state"] == "ready"


def harness(
    users: list[dict[str, Any]] | None = None,
    scenario: dict[str, Any] | None = None,
    apps: list[dict[str, Any]] | None = None,
) -> GraphHarness:
    directory = Directory(
        TENANT, users if users is not None else [user(n) for n in range(1, 6)], apps
    )
    tokens = TokenStore()
    clock = FakeClock()
    service = GraphService(directory, tokens, scenario or {}, clock=clock)
    made = GraphHarness(service, directory, tokens, clock)
    made.token = made.token_for()
    return made


def account(upn: str) -> str:
    return json.dumps({"userPrincipalName": upn})


def award(name: str) -> str:
    return json.dumps({"displayName": name, "issuingAuthority": "Credly"})


def item_body(upn: str = "user1@contoso.com", awards: list[str] | None = None) -> dict[str, Any]:
    return {
        "acl": [{"type": "everyone", "value": TENANT, "accessType": "grant"}],
        "properties": {
            "account": account(upn),
            "awards@odata.type": "Collection(String)",
            "awards": awards if awards is not None else [award("Cloud Practitioner")],
        },
    }
