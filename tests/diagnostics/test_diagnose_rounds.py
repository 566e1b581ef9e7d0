"""`diagnose EMAIL` in few sequential rounds of requests (issue 12 goal 5), against the simulator
over HTTPS, each run a new process.

The rounds come from the simulator's request log, as benchmarks/diagnose_latency.py counts
them; a large injected latency makes requests sent together stand out from requests sent after
an answer, so nothing here depends on how fast the machine is. No wall time is asserted.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from credly_connector.simulator.server import LogEntry, sequential_rounds
from tests.diagnostics.cli_helpers import run
from tests.diagnostics.explain_support import Tenant, scenario_secrets, synced_tenant

LATENCY = 0.4  # seconds per request: far more than a busy machine delays a request's start
HEALTHY = "alex.wilber@contoso.com"
NEAR_MISS = "miriam.graham@contoso.com"  # the near-miss search and its confirmation run too
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.")


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    yield from synced_tenant(tmp_path_factory.mktemp("rounds"))


def cache_file(tenant: Tenant) -> Path:
    return tenant.config.parent / "state" / "demo.entra-discovery.json"


def diagnose(tenant: Tenant, email: str) -> tuple[int, dict[str, Any], list[LogEntry]]:
    tenant.sim.clear_request_log()
    done = run("diagnose", email, "--json", env=tenant.env)
    return done.returncode, json.loads(done.stdout), tenant.sim.request_log()


def timeline(log: list[LogEntry]) -> str:
    start = min((e.time for e in log), default=0.0)
    return "\n".join(
        f"{e.time - start:6.3f} +{e.duration:.3f} {e.service} {e.method} {e.path}"
        for e in sorted(log, key=lambda e: e.time)
    )


def discoveries(log: list[LogEntry]) -> int:
    return sum(1 for e in log if e.path.endswith("/.well-known/openid-configuration"))


@pytest.mark.parametrize("email", [HEALTHY, NEAR_MISS])
def test_a_diagnosis_takes_at_most_three_rounds_then_two(tenant: Tenant, email: str) -> None:
    cache_file(tenant).unlink(missing_ok=True)
    tenant.sim.set_faults(latency_seconds=LATENCY)
    try:
        first_code, first, cold = diagnose(tenant, email)
        second_code, second, warm = diagnose(tenant, email)
    finally:
        tenant.sim.set_faults(latency_seconds=0.0)
    # First process: the tenant's OpenID configuration, then the token, then every Graph read.
    assert discoveries(cold) == 1
    assert sequential_rounds(cold) <= 3, timeline(cold)
    # Second process: the configuration comes from the state folder; the token request is the
    # first request to Entra ID and every other lookup follows one of the two sign-ins.
    assert discoveries(warm) == 0
    assert sequential_rounds(warm) <= 2, timeline(warm)
    assert (first_code, first["status"]) == (second_code, second["status"])
    assert [r["status"] for r in first["results"]] == [r["status"] for r in second["results"]]


def test_the_kept_discovery_document_holds_no_secret_and_no_token(tenant: Tenant) -> None:
    cache_file(tenant).unlink(missing_ok=True)
    code, _, _ = diagnose(tenant, HEALTHY)
    assert code == 0
    text = cache_file(tenant).read_text(encoding="utf-8")
    assert not [s for s in scenario_secrets() if s in text]
    # The simulator's tokens are JWTs, as Entra's are: none is there, nor any token field.
    assert not JWT.search(text) and "access_token" not in text
    stored = json.loads(text)
    assert all(url.endswith("/.well-known/openid-configuration") for url in stored["documents"])


def test_a_corrupt_discovery_cache_is_ignored(tenant: Tenant) -> None:
    cache_file(tenant).write_bytes(b"\x00\x01{ not json")
    code, document, log = diagnose(tenant, HEALTHY)
    assert code == 0 and document["status"] == "ok"
    assert discoveries(log) == 1  # asked again, as if there were no file
    assert json.loads(cache_file(tenant).read_text(encoding="utf-8"))["documents"]  # rewritten


# -- which lookup waits for which (fake clients: no timing at all) -------------------------


class Recorder:
    """A fake client whose calls are recorded; the `blocked` ones wait for `release`."""

    def __init__(self, blocked: set[str], release: threading.Event) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.blocked = blocked
        self.release = release
        self.seen = threading.Condition()

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self.seen:
                self.calls.append((name, args, kwargs))
                self.seen.notify_all()
            if name in self.blocked:
                self.release.wait(30)
            return iter(()) if name.startswith("iter_") else None

        return call

    def wait_for(self, wanted: Callable[[str, tuple[Any, ...], dict[str, Any]], bool]) -> bool:
        with self.seen:
            return self.seen.wait_for(lambda: any(wanted(*c) for c in self.calls), timeout=30)


def test_the_probes_do_not_wait_for_the_reads_they_follow(tmp_path: Path) -> None:
    """The credentials check reads one page of badges after the organization, the permissions
    check the probe item after the connection: in `diagnose EMAIL` both are asked for at once,
    while the organization and the connection would still be unanswered (a call to either
    never returns here), and so is the token."""
    from credly_connector.diagnostics.checks.graph_checks import PROBE_ITEM_ID
    from credly_connector.diagnostics.context import DiagnosticContext
    from credly_connector.diagnostics.explain import _prefetched
    from tests.diagnostics.helpers_settings import make_settings

    release = threading.Event()
    credly = Recorder({"get_organization"}, release)
    graph = Recorder({"get_connection"}, release)
    tokens = Recorder({"get_token"}, release)
    ctx = DiagnosticContext(
        make_settings(tmp_path),
        email=HEALTHY,
        credly_factory=lambda _: credly,  # type: ignore[arg-type,return-value]
        tokens_factory=lambda _: tokens,  # type: ignore[arg-type,return-value]
        graph_factory=lambda *_: graph,  # type: ignore[arg-type,return-value]
    )
    try:
        with _prefetched(ctx, connection=True):
            assert tokens.wait_for(lambda name, *_: name == "get_token")
            assert credly.wait_for(lambda name, _, kw: name == "iter_badges" and not kw)
            assert graph.wait_for(
                lambda name, args, _: name == "get_item" and PROBE_ITEM_ID in args
            )
            assert graph.wait_for(lambda name, *_: name == "get_connection")
            assert credly.wait_for(
                lambda name, _, kw: name == "iter_badges" and kw == {"recipient_email": HEALTHY}
            )
            release.set()
    finally:
        release.set()
        ctx.close()
