"""The tenant discovery document kept between runs (net.msal_adapter.DiscoveryCache).

A new EntraTokenProvider stands for a new process: it builds a new msal application, which
reads the tenant's OpenID configuration again unless the cache answers.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx
import pytest

from credly_connector.graph.auth import DiscoveryCache, EntraTokenProvider
from credly_connector.graph.errors import EntraAuthError
from credly_connector.net import build_http_client
from credly_connector.net.msal_adapter import DISCOVERY_MAX_AGE_SECONDS
from tests.clients.helpers import ENTRA_SECRET, LOGIN, TENANT_ID, FakeServer, make_settings
from tests.clients.test_graph_auth import DISCOVERY, TOKEN_PATH, discovery, entra_error, jwt

TOKEN = jwt({"roles": ["User.Read.All"], "tid": TENANT_ID})
DISCOVERY_URL = f"{LOGIN}{DISCOVERY}"


def token_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"access_token": TOKEN, "expires_in": 3599})


def serve(fake: FakeServer) -> None:
    fake.on("GET", DISCOVERY, discovery)
    fake.on("POST", TOKEN_PATH, token_answer)


def new_process(fake: FakeServer, cache: DiscoveryCache | None) -> EntraTokenProvider:
    settings = make_settings()
    http = build_http_client(settings, "microsoft", transport=fake.transport())
    return EntraTokenProvider(settings.entra, http, discovery_cache=cache)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_second_process_asks_for_the_token_only(fake: FakeServer, tmp_path: Path) -> None:
    serve(fake)
    cache = DiscoveryCache.in_state_folder(tmp_path, "contoso")
    assert new_process(fake, cache).get_token() == TOKEN
    assert fake.paths() == [DISCOVERY, TOKEN_PATH]
    assert cache.path == tmp_path / "contoso.entra-discovery.json"
    assert cache.path.is_file()

    fake.seen.clear()
    second = new_process(fake, DiscoveryCache.in_state_folder(tmp_path, "contoso"))
    assert second.get_token() == TOKEN
    assert fake.paths() == [TOKEN_PATH]
    # A cached document is not a request: the counters stay those of the wire.
    assert second.request_counts.as_dict() == {"entra.token": 1}


def test_the_cache_holds_the_discovery_document_and_nothing_else(
    fake: FakeServer, tmp_path: Path
) -> None:
    serve(fake)
    cache = DiscoveryCache.in_state_folder(tmp_path, "contoso")
    tokens = new_process(fake, cache)
    tokens.get_token()
    tokens.force_refresh()
    tokens.get_token()  # a second token answer: still nothing of it on disk
    text = cache.path.read_text(encoding="utf-8")
    assert TOKEN not in text and ENTRA_SECRET not in text
    assert "access_token" not in text and "client_secret" not in text
    stored = json.loads(text)
    assert list(stored["documents"]) == [DISCOVERY_URL]
    document = json.loads(stored["documents"][DISCOVERY_URL]["document"])
    assert document["token_endpoint"] == f"{LOGIN}/{TENANT_ID}/oauth2/v2.0/token"


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff not json at all",
        b'{"format": 1, "documents": {"',  # cut short while being written by hand
        b"[1, 2, 3]",
        b'{"format": 99, "documents": {}}',  # a later credlyctl's format
        b"[" * 100_000,  # nesting deep enough to break a recursive parser
        json.dumps(
            {"format": 1, "documents": {DISCOVERY_URL: {"fetched_at": "yesterday"}}}
        ).encode(),
        json.dumps(  # valid JSON, but not a document msal can build its authority from
            {
                "format": 1,
                "documents": {DISCOVERY_URL: {"fetched_at": 1_800_000_000, "document": "{}"}},
            }
        ).encode(),
        b" " * (300 * 1024),  # far bigger than any discovery document
    ],
    ids=["binary", "truncated", "list", "format", "deep", "types", "no-endpoints", "huge"],
)
def test_a_corrupt_cache_file_is_ignored_and_replaced(
    fake: FakeServer, tmp_path: Path, content: bytes
) -> None:
    serve(fake)
    path = tmp_path / "contoso.entra-discovery.json"
    path.write_bytes(content)
    cache = DiscoveryCache(path, clock=Clock())
    assert new_process(fake, cache).get_token() == TOKEN
    assert fake.paths() == [DISCOVERY, TOKEN_PATH]
    assert cache.get(DISCOVERY_URL) is not None  # rewritten whole


def test_a_cached_document_naming_another_origin_is_not_used(
    fake: FakeServer, tmp_path: Path
) -> None:
    """A file edited to send the credential elsewhere gets the live document's checks."""
    serve(fake)
    clock = Clock()
    cache = DiscoveryCache(tmp_path / "c.json", clock=clock)
    forged = {
        "token_endpoint": "https://attacker.example/token",
        "authorization_endpoint": f"{LOGIN}/{TENANT_ID}/oauth2/v2.0/authorize",
    }
    cache.put(DISCOVERY_URL, json.dumps(forged))
    assert new_process(fake, cache).get_token() == TOKEN
    assert fake.paths() == [DISCOVERY, TOKEN_PATH]
    assert "attacker" not in cache.path.read_text(encoding="utf-8")


@pytest.mark.parametrize("age", [DISCOVERY_MAX_AGE_SECONDS + 1, -3600])
def test_an_old_or_future_document_is_fetched_again(
    fake: FakeServer, tmp_path: Path, age: float
) -> None:
    serve(fake)
    clock = Clock()
    cache = DiscoveryCache(tmp_path / "c.json", clock=clock)
    new_process(fake, cache).get_token()
    clock.now += age
    fake.seen.clear()
    new_process(fake, cache).get_token()
    assert fake.paths() == [DISCOVERY, TOKEN_PATH]


def test_a_refused_discovery_is_not_kept(fake: FakeServer, tmp_path: Path) -> None:
    """An unknown tenant is told again on the next run (never a cached refusal)."""
    fake.on("GET", DISCOVERY, entra_error(90002, "invalid_tenant"))
    cache = DiscoveryCache(tmp_path / "c.json")
    with pytest.raises(EntraAuthError):
        new_process(fake, cache).get_token()
    assert not cache.path.exists()


def test_a_refused_token_request_leaves_only_the_discovery_document(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.on("GET", DISCOVERY, discovery)
    fake.on("POST", TOKEN_PATH, entra_error(7000215, "invalid_client", status=401))
    cache = DiscoveryCache(tmp_path / "c.json")
    with pytest.raises(EntraAuthError):
        new_process(fake, cache).get_token()
    text = cache.path.read_text(encoding="utf-8")
    assert "7000215" not in text and "invalid_client" not in text
    assert list(json.loads(text)["documents"]) == [DISCOVERY_URL]


def test_no_state_folder_yet_means_no_file_and_no_error(fake: FakeServer, tmp_path: Path) -> None:
    serve(fake)
    cache = DiscoveryCache.in_state_folder(tmp_path / "not-created", "contoso")
    assert new_process(fake, cache).get_token() == TOKEN
    assert not (tmp_path / "not-created").exists()


def test_a_folder_in_the_way_is_left_alone(fake: FakeServer, tmp_path: Path) -> None:
    serve(fake)
    cache = DiscoveryCache(tmp_path / "c.json")
    cache.path.mkdir()
    assert new_process(fake, cache).get_token() == TOKEN
    assert cache.path.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temporary file left


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges on Windows")
def test_a_link_is_neither_followed_nor_replaced(fake: FakeServer, tmp_path: Path) -> None:
    serve(fake)
    elsewhere = tmp_path / "elsewhere.json"
    first = DiscoveryCache(elsewhere)
    new_process(fake, first).get_token()  # a valid cache file, reachable through the link
    link = tmp_path / "c.json"
    link.symlink_to(elsewhere)
    before = elsewhere.read_bytes()
    fake.seen.clear()
    assert new_process(fake, DiscoveryCache(link)).get_token() == TOKEN
    assert fake.paths() == [DISCOVERY, TOKEN_PATH]  # not read through the link
    assert link.is_symlink() and elsewhere.read_bytes() == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_in_its_place_does_not_block(fake: FakeServer, tmp_path: Path) -> None:
    serve(fake)
    path = tmp_path / "c.json"
    os.mkfifo(path)
    assert new_process(fake, DiscoveryCache(path)).get_token() == TOKEN


def test_entries_for_other_authorities_are_kept_up_to_a_few(tmp_path: Path) -> None:
    clock = Clock()
    cache = DiscoveryCache(tmp_path / "c.json", clock=clock)
    document = json.dumps({"token_endpoint": "x", "authorization_endpoint": "y"})
    urls = [f"{LOGIN}/tenant-{n}/v2.0/.well-known/openid-configuration" for n in range(12)]
    for url in urls:
        clock.now += 1
        cache.put(url, document)
    kept = [url for url in urls if cache.get(url) is not None]
    assert kept == urls[-8:]  # the most recent ones


def test_without_a_cache_every_process_asks_again(fake: FakeServer) -> None:
    serve(fake)
    for _ in range(2):
        new_process(fake, None).get_token()
    assert fake.paths() == [DISCOVERY, TOKEN_PATH, DISCOVERY, TOKEN_PATH]
