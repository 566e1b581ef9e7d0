"""Helpers for the sync integration tests: configs, runs, and an independent oracle.

The oracle restates Microsoft's documented rules plus our decisions in a few plain lines,
straight from the simulator's data, without any credlyctl code, so a bug in the planner
cannot hide itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credly_connector.config.load import load_instance
from credly_connector.config.resolved import InstanceSettings
from credly_connector.graph.batch import BatchRequest, BatchResponse
from credly_connector.simulator.runner import Simulator
from credly_connector.simulator.scenario import load_scenario
from credly_connector.sync.clients import build_clients
from credly_connector.sync.runner import SyncOptions, SyncReport, run_sync
from credly_connector.sync.setup import SetupReport, run_setup

CONNECTION = "credlybadges"
_MAIN = "from credly_connector.cli.app import main; main()"
LICENSE = {"skuId": "05e9a617-0261-4cee-bb44-138d3ef5d965", "disabledPlans": []}


def configure(sim: Simulator, folder: Path, **sync: Any) -> Path:
    """A config for `sim` with extra [sync] keys (e.g. max_write_rate=5)."""
    text = sim.config_toml(state_dir=folder / "state")
    extra = "".join(f"\n{k} = {json.dumps(v)}" for k, v in sync.items())
    marker = f'state_dir = "{folder / "state"}"'
    assert marker in text
    path = folder / "credlyctl.toml"
    path.write_text(text.replace(marker, marker + extra), encoding="utf-8")
    return path


def settings_of(config: Path) -> InstanceSettings:
    return load_instance(config, None)


def do_setup(settings: InstanceSettings) -> SetupReport:
    return run_setup(settings, sleep=lambda seconds: None)


def do_sync(settings: InstanceSettings, **options: Any) -> SyncReport:
    clients = build_clients(settings)
    try:
        return run_sync(settings, clients.for_sync(), SyncOptions(**options))
    finally:
        clients.close()


def cli(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDLYCTL_")}
    return subprocess.run(
        [sys.executable, "-c", _MAIN, *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env, "COLUMNS": "200"},
    )


def _default_sigint() -> None:
    # A job a non-interactive shell starts in the background (CI, cron) inherits SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler: the Ctrl+C tests need
    # the child to see SIGINT the way a terminal delivers it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_popen(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDLYCTL_")}
    return subprocess.Popen(
        [sys.executable, "-c", _MAIN, *args, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_default_sigint if os.name == "posix" else None,
    )


def org_id(sim: Simulator) -> str:
    return str(sim.scenario["connector"]["org_id"])


# ---- the oracle ------------------------------------------------------------------------------


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def oracle(
    sim: Simulator,
    opt_out: tuple[str, ...] = (),
    served_states: dict[str, str] | None = None,
    now: datetime | None = None,
) -> dict[str, dict[str, list[str]]]:
    """item id -> {"awards": [names], "certifications": [names]} that Graph should hold.

    `served_states` mirrors the simulator's `unknown_badge_states` fault (badge id -> state).
    """
    now = now or datetime.now(UTC)
    owners: dict[str, list[dict[str, Any]]] = {}
    for user in sim.directory.all_users():
        primary = [p[5:] for p in user.get("proxyAddresses", []) if p.startswith("SMTP:")]
        addresses = {user["userPrincipalName"].lower()}
        if primary:
            addresses.add(primary[0].lower())
        elif user.get("mail"):
            addresses.add(user["mail"].lower())
        for address in addresses:
            owners.setdefault(address, []).append(user)
    out = {o.lower() for o in opt_out}
    expected: dict[str, dict[str, list[str]]] = {}
    for badge in sim.badges(org_id(sim)):
        expiry = _parse(badge.get("expires_at"))
        state = (served_states or {}).get(badge["id"], badge.get("state"))
        if state != "accepted" or badge.get("public") is not True:
            continue
        if expiry is not None and expiry <= now:
            continue
        email = (badge.get("recipient_email") or "").lower()
        candidates = {u["id"]: u for u in owners.get(email, [])}
        if len(candidates) != 1:
            continue
        user = next(iter(candidates.values()))
        every = {user["userPrincipalName"].lower(), (user.get("mail") or "").lower()}
        every |= {p[5:].lower() for p in user.get("proxyAddresses", [])}
        if not user.get("accountEnabled") or not user.get("assignedLicenses") or every & out:
            continue
        template = badge.get("badge_template") or {}
        category = (
            "certifications"
            if str(template.get("type_category") or "").lower() == "certification"
            else "awards"
        )
        entry = expected.setdefault(
            user["id"].replace("-", ""), {"awards": [], "certifications": []}
        )
        entry[category].append(str(template.get("name")))
    return {k: {c: sorted(v) for c, v in e.items()} for k, e in expected.items()}


def graph_view(sim: Simulator) -> dict[str, dict[str, list[str]]]:
    """What the simulator's Graph holds, in the oracle's shape."""
    view: dict[str, dict[str, list[str]]] = {}
    for item_id, item in sim.graph_items(CONNECTION).items():
        props = item.get("properties", {})
        view[item_id] = {
            c: sorted(json.loads(v)["displayName"] for v in props.get(c, []))
            for c in ("awards", "certifications")
        }
    return view


def bigger_scenario(extra_users: int) -> dict[str, Any]:
    """The demo plus `extra_users` qualifying users with one badge each (more batches)."""
    scenario = load_scenario("demo")
    org = scenario["credly"]["organizations"][0]
    for n in range(extra_users):
        upn = f"extra{n:03d}@contoso.com"
        scenario["entra"]["users"].append(
            {
                "id": f"00000000-0000-4000-8000-{n:012d}",
                "userPrincipalName": upn,
                "displayName": f"Extra {n}",
                "mail": upn,
                "proxyAddresses": [f"SMTP:{upn}"],
                "accountEnabled": True,
                "assignedLicenses": [LICENSE],
                "userType": "Member",
                "hasMailbox": True,
            }
        )
        org["badges"].append(
            {
                "id": f"10000000-0000-4000-8000-{n:012d}",
                "state": "accepted",
                "public": True,
                "recipient_email": upn,
                "issued_at": "2026-01-05T10:00:00.000Z",
                "badge_template": {
                    "id": "t-extra",
                    "name": f"Extra badge {n % 3}",
                    "type_category": "Certification" if n % 2 else "Learning",
                },
            }
        )
    return scenario


def change_badges_and_users(sim: Simulator) -> None:
    """Every kind of change between two crawls, made at once: a badge revoked, one made
    private, one re-sent to another person (the former owner loses it, the new one gains
    it), a new badge, a disabled user and a deleted one."""
    badges = {b["recipient_email"]: b["id"] for b in sim.badges(org_id(sim))}
    sim.update_badge(badges["extra000@contoso.com"], state="revoked")
    sim.update_badge(badges["extra001@contoso.com"], public=False)
    sim.update_badge(badges["extra002@contoso.com"], recipient_email="extra010@contoso.com")
    sim.add_badge(
        org_id(sim),
        state="accepted",
        public=True,
        accepted_at="2026-11-01T00:00:00Z",
        recipient_email="extra003@contoso.com",
        badge_template={"id": "new", "name": "Brand new badge"},
    )
    sim.update_user("alex.wilber@contoso.com", accountEnabled=False)
    sim.delete_user("extra004@contoso.com")


def log_events(log: Path, name: str) -> list[dict[str, Any]]:
    """The events called `name` in a crawl's --log-file, in order."""
    lines = log.read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == name]


class WatchedGraph:
    """The real Graph client, telling when the first `$batch` went out and when the item
    `watch` was written, and counting the item PUTs Graph confirmed (early-write tests)."""

    def __init__(self, graph: Any) -> None:
        self._graph = graph
        self._lock = threading.Lock()
        self.first_batch = threading.Event()
        self.watched = threading.Event()
        self.watch: str | None = None
        self.puts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._graph, name)

    def batch(self, requests: list[BatchRequest]) -> list[BatchResponse]:
        self.first_batch.set()
        answers: list[BatchResponse] = self._graph.batch(requests)
        sent = {r.id: r for r in requests}
        confirmed = [sent[a.id] for a in answers if sent[a.id].method == "PUT" and a.status < 300]
        with self._lock:
            self.puts += len(confirmed)
        if self.watch is not None and any(r.url.endswith(self.watch) for r in confirmed):
            self.watched.set()
        return answers
