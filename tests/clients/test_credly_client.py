"""Credly client over httpx.MockTransport: auth, renewal, pages, errors, read-only, secrets."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from credly_connector.credly.client import CredlyClient
from credly_connector.credly.errors import CredlyAuthError, CredlyUnavailable
from credly_connector.errors import ConfigError, ForbiddenHostError
from credly_connector.net import build_http_client
from tests.clients.helpers import (
    API,
    CREDLY_AUTH_TOKEN,
    CREDLY_SECRET,
    ORG_ID,
    FakeServer,
    json_response,
    make_settings,
)

BADGES = f"/v1/organizations/{ORG_ID}/badges"
TOKEN_JSON = {"access_token": "credly-access-abc123", "token_type": "Bearer", "expires_in": 7200}


def client(fake: FakeServer, *, oauth: bool = True, **kwargs: Any) -> CredlyClient:
    settings = make_settings(oauth=oauth)
    http = build_http_client(settings, "credly", transport=fake.transport())
    kwargs.setdefault("sleep", lambda _s: None)
    return CredlyClient(settings.credly, http, **kwargs)


def badge(n: int, **fields: Any) -> dict[str, Any]:
    return {"id": f"badge-{n}", "state": "accepted", "public": True, **fields}


def paged(total: int, per: int = 2) -> Any:
    """A badge list of `total` badges, `per` a page, with Credly's metadata."""
    pages = max(1, -(-total // per))

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        items = [badge(n) for n in range((page - 1) * per, min(total, page * per))]
        nxt = f"{API}/organizations/{ORG_ID}/badges?page={page + 1}" if page < pages else None
        meta: dict[str, Any] = {"count": len(items), "current_page": page}
        meta |= {"total_count": total, "total_pages": pages, "per": per, "next_page_url": nxt}
        return httpx.Response(200, json={"data": items, "metadata": meta})

    return handler


def token_ok(fake: FakeServer) -> None:
    fake.on("POST", "/oauth/token", json_response(200, TOKEN_JSON))


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def assert_no_secret(exc: BaseException) -> None:
    text = str(exc) + repr(exc) + getattr(exc, "hint", "")
    for secret in (CREDLY_SECRET, CREDLY_AUTH_TOKEN, "credly-access-abc123"):
        assert secret not in text


def test_oauth_token_request_and_bearer_use(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", f"/v1/organizations/{ORG_ID}", json_response(200, {"data": {"id": ORG_ID}}))
    org = client(fake).get_organization()
    assert org.id == ORG_ID
    token_request, get = fake.seen
    assert str(token_request.url) == "https://www.credly.com/oauth/token"
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(token_request) == {
        "grant_type": "client_credentials",
        "client_id": "credly-client-1",
        "client_secret": CREDLY_SECRET,
        "scope": "issued_badges",
    }
    assert get.headers["Authorization"] == "Bearer credly-access-abc123"


def test_invalid_scope_falls_back_to_the_default_scopes(fake: FakeServer) -> None:
    def token(request: httpx.Request) -> httpx.Response:
        if "scope" in form(request):
            return httpx.Response(400, json={"error": "invalid_scope"})
        return httpx.Response(200, json=TOKEN_JSON)

    fake.on("POST", "/oauth/token", token)
    fake.on("GET", f"/v1/organizations/{ORG_ID}", json_response(200, {"data": {"id": ORG_ID}}))
    credly = client(fake)
    credly.get_organization()
    credly.get_organization()
    assert fake.paths("POST") == ["/oauth/token", "/oauth/token"]  # no third token request


def test_token_reused_then_renewed_before_expiry(fake: FakeServer) -> None:
    now = [0.0]
    fake.on("POST", "/oauth/token", json_response(200, {**TOKEN_JSON, "expires_in": 600}))
    fake.on("GET", f"/v1/organizations/{ORG_ID}", json_response(200, {"data": {"id": ORG_ID}}))
    credly = client(fake, clock=lambda: now[0])
    credly.get_organization()
    now[0] = 500.0
    credly.get_organization()
    assert len(fake.paths("POST")) == 1
    now[0] = 545.0  # within the renewal margin (10% of the lifetime) of the 600 s expiry
    credly.get_organization()
    assert len(fake.paths("POST")) == 2


def test_a_401_gets_one_fresh_token_and_one_retry(fake: FakeServer) -> None:
    issued = iter(["first-token-111", "second-token-222"])

    def token(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": next(issued), "expires_in": 7200})

    def org(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer first-token-111":
            return httpx.Response(401, json={"error": "invalid_token"})
        return httpx.Response(200, json={"data": {"id": ORG_ID, "name": "Contoso"}})

    fake.on("POST", "/oauth/token", token)
    fake.on("GET", f"/v1/organizations/{ORG_ID}", org)
    assert client(fake).get_organization().name == "Contoso"
    assert [r.method for r in fake.seen] == ["POST", "GET", "POST", "GET"]


def test_a_second_401_is_reported_not_looped(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", f"/v1/organizations/{ORG_ID}", json_response(401, {"error": "x"}))
    with pytest.raises(CredlyAuthError) as caught:
        client(fake).get_organization()
    assert caught.value.kind == "token_rejected"
    assert len(fake.seen) == 4
    assert_no_secret(caught.value)


def test_authorization_token_uses_basic_with_empty_password(fake: FakeServer) -> None:
    fake.on("GET", f"/v1/organizations/{ORG_ID}", json_response(200, {"data": {"id": ORG_ID}}))
    client(fake, oauth=False).get_organization()
    (request,) = fake.seen
    scheme, _, value = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(value).decode() == f"{CREDLY_AUTH_TOKEN}:"


def test_expired_authorization_token(fake: FakeServer) -> None:
    fake.on("GET", f"/v1/organizations/{ORG_ID}", json_response(401, {"message": "expired"}))
    with pytest.raises(CredlyAuthError) as caught:
        client(fake, oauth=False).get_organization()
    assert caught.value.kind == "token_rejected"
    assert "180 days" in caught.value.hint
    assert caught.value.exit_code == 2
    assert len(fake.seen) == 1  # nothing to refresh for a static token
    assert_no_secret(caught.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": "invalid_client", "error_description": "Client authentication failed"}),
        (400, {"error": "invalid_client"}),
        (400, {"error": "invalid_grant"}),
    ],
)
def test_wrong_client_id_or_secret(fake: FakeServer, status: int, body: Any) -> None:
    fake.on("POST", "/oauth/token", json_response(status, body))
    with pytest.raises(CredlyAuthError) as caught:
        client(fake).get_organization()
    error = caught.value
    assert error.kind == "invalid_client"
    assert error.status == status
    assert "cannot be read back" in error.hint
    assert isinstance(error.body_shape, dict)
    assert fake.paths("GET") == []
    assert_no_secret(error)


def test_forbidden_and_not_found_organizations(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", f"/v1/organizations/{ORG_ID}", json_response(403, {"errors": []}))
    with pytest.raises(CredlyAuthError) as caught:
        client(fake).get_organization()
    assert caught.value.kind == "forbidden"
    fake.on("GET", f"/v1/organizations/{ORG_ID}", json_response(404, {"errors": []}))
    with pytest.raises(CredlyAuthError) as caught:
        client(fake).get_organization()
    assert caught.value.kind == "not_found"
    assert ORG_ID in caught.value.message


def test_missing_oauth_secret_is_a_config_error(fake: FakeServer) -> None:
    from dataclasses import replace

    settings = make_settings()
    credly = CredlyClient(
        replace(settings.credly, client_secret=None),
        build_http_client(settings, "credly", transport=fake.transport()),
    )
    with pytest.raises(ConfigError):
        credly.get_organization()
    assert fake.seen == []


def test_iter_badges_follows_every_page_with_filters(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, paged(5))
    found = list(
        client(fake).iter_badges(recipient_email="Ada@Contoso.com", filters={"state": "accepted"})
    )
    assert [b.id for b in found] == [f"badge-{n}" for n in range(5)]
    first = next(r for r in fake.seen if r.method == "GET")
    assert first.url.params["filter"] == "recipient_email::Ada@Contoso.com|state::accepted"
    assert len(fake.paths("GET")) == 3


def test_list_badges_reads_remaining_pages_in_parallel_and_in_order(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, paged(21, per=2))
    credly = client(fake, page_concurrency=4)
    found = credly.list_badges()
    assert [b.id for b in found] == [f"badge-{n}" for n in range(21)]
    pages = sorted(int(r.url.params.get("page", "1")) for r in fake.seen if r.method == "GET")
    assert pages == list(range(1, 12))
    assert credly.request_counts.as_dict() == {"credly.badges": 11, "credly.token": 1}


def test_list_badges_follows_a_page_that_appeared_while_reading(fake: FakeServer) -> None:
    token_ok(fake)

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        nxt = f"{API}/organizations/{ORG_ID}/badges?page={page + 1}" if page < 3 else None
        meta = {"total_pages": 2 if page == 1 else 3, "next_page_url": nxt}
        return httpx.Response(200, json={"data": [badge(page)], "metadata": meta})

    fake.on("GET", BADGES, handler)
    assert [b.id for b in client(fake).list_badges()] == ["badge-1", "badge-2", "badge-3"]


def test_next_page_on_another_origin_is_never_requested(fake: FakeServer) -> None:
    token_ok(fake)
    meta = {"next_page_url": "https://evil.example.net/v1/organizations/x/badges?page=2"}
    fake.on("GET", BADGES, json_response(200, {"data": [badge(1)], "metadata": meta}))
    with pytest.raises(ForbiddenHostError):
        list(client(fake).iter_badges())
    assert all(r.url.host != "evil.example.net" for r in fake.seen)
    assert len(fake.paths("GET")) == 1


def test_unknown_fields_ignored_unknown_states_kept(fake: FakeServer) -> None:
    token_ok(fake)
    items = [badge(1, state="Quarantined", brand_new_field={"x": 1}), "junk", badge(2)]
    fake.on("GET", BADGES, json_response(200, {"data": items, "metadata": {}}))
    found = client(fake).list_badges()
    assert [(b.id, b.state, b.state_known) for b in found] == [
        ("badge-1", "quarantined", False),
        ("badge-2", "accepted", True),
    ]


def test_malformed_json_is_retried_then_succeeds(fake: FakeServer) -> None:
    token_ok(fake)
    bodies = iter([b"{not json", b"<html>oops</html>"])

    def handler(request: httpx.Request) -> httpx.Response:
        body = next(bodies, None)
        if body is not None:
            return httpx.Response(200, content=body)
        return httpx.Response(200, json={"data": [badge(1)], "metadata": {}})

    fake.on("GET", BADGES, handler)
    sleeps: list[float] = []
    assert len(client(fake, sleep=sleeps.append).list_badges()) == 1
    assert len(sleeps) == 2


def test_malformed_json_forever_is_reported(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", BADGES, lambda r: httpx.Response(200, content=b"[1, 2"))
    with pytest.raises(CredlyUnavailable) as caught:
        client(fake).list_badges()
    assert caught.value.kind == "malformed"
    assert caught.value.exit_code == 3
    assert caught.value.body_shape == "not-json"


def test_throttling_and_server_errors_are_retried_then_reported(fake: FakeServer) -> None:
    token_ok(fake)
    answers = iter([httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(503)])
    fake.on(
        "GET",
        BADGES,
        lambda r: next(answers, None) or httpx.Response(200, json={"data": [], "metadata": {}}),
    )
    sleeps: list[float] = []
    credly = client(fake, sleep=sleeps.append)
    assert credly.list_badges() == []
    assert sleeps[0] == 2.0 and len(sleeps) == 2
    assert credly.stats()["throttle_waits"] == 2
    fake.on("GET", BADGES, lambda r: httpx.Response(500, text="boom"))
    with pytest.raises(CredlyUnavailable) as caught:
        credly.list_badges()
    assert caught.value.kind == "server"


def test_network_failure_is_reported_as_unavailable(fake: FakeServer) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Name or service not known")

    fake.on("POST", "/oauth/token", down)
    with pytest.raises(CredlyUnavailable) as caught:
        client(fake).get_organization()
    assert caught.value.kind == "network"
    assert "www.credly.com" in caught.value.message
    assert_no_secret(caught.value)


def test_list_organizations_pages(fake: FakeServer) -> None:
    token_ok(fake)

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        nxt = f"{API}/organizations?page=2" if page == 1 else None
        data = [{"id": f"org-{page}", "name": f"Org {page}"}]
        return httpx.Response(200, json={"data": data, "metadata": {"next_page_url": nxt}})

    fake.on("GET", "/v1/organizations", handler)
    assert [o.id for o in client(fake).list_organizations()] == ["org-1", "org-2"]


def test_the_client_only_ever_gets_or_asks_for_a_token(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", "/v1/organizations", json_response(200, {"data": [], "metadata": {}}))
    fake.on("GET", f"/v1/organizations/{ORG_ID}", json_response(200, {"data": {"id": ORG_ID}}))
    fake.on("GET", BADGES, paged(7))
    credly = client(fake)
    credly.get_organization()
    credly.list_organizations()
    credly.list_badges()
    list(credly.iter_badges(recipient_email="a@b.c"))
    methods = {(r.method, r.url.path) for r in fake.seen if r.method != "GET"}
    assert methods == {("POST", "/oauth/token")}


def test_messages_never_contain_secrets_even_if_echoed(fake: FakeServer) -> None:
    body = json.dumps({"error": "invalid_client", "error_description": f"bad {CREDLY_SECRET}"})
    fake.on("POST", "/oauth/token", lambda r: httpx.Response(401, content=body.encode()))
    with pytest.raises(CredlyAuthError) as caught:
        client(fake).get_organization()
    assert_no_secret(caught.value)
    assert caught.value.body_shape == {"error": "string", "error_description": "string"}


def test_a_misconfigured_token_host_never_receives_the_secret(fake: FakeServer) -> None:
    from dataclasses import replace

    settings = make_settings()
    credly_settings = replace(settings.credly, web_base="https://www.credly.com.evil.example")
    http = build_http_client(settings, "credly", transport=fake.transport())
    with pytest.raises(ForbiddenHostError) as caught:
        CredlyClient(credly_settings, http).get_organization()
    assert fake.seen == []
    assert_no_secret(caught.value)


def test_listing_organizations_may_be_forbidden(fake: FakeServer) -> None:
    token_ok(fake)
    fake.on("GET", "/v1/organizations", json_response(403, {"errors": []}))
    with pytest.raises(CredlyAuthError) as caught:
        client(fake).list_organizations()
    assert caught.value.kind == "forbidden"
    assert "list organizations" in caught.value.message
