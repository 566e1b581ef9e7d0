"""The accidental-delete guard: more deletions than sync.max_deletes are all held back.

Against the simulator over real HTTPS, through the CLI where the exit code and the JSON
document matter. The demo plus 6 extra users gives 10 items; revoking 3 extra badges plans
3 deletions, over a limit of 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from credly_connector.diagnostics import registry
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import CheckStatus
from credly_connector.simulator.runner import Simulator, start_simulator
from credly_connector.sync.clients import build_clients
from credly_connector.sync.runner import SyncOptions, run_sync
from credly_connector.sync.schedule import schedule_for
from credly_connector.sync.state import open_readonly, state_path
from tests.cli.schema_check import validate_output
from tests.sync.simhelpers import (
    LICENSE,
    bigger_scenario,
    cli,
    configure,
    do_setup,
    graph_view,
    oracle,
    org_id,
    settings_of,
)

pytestmark = pytest.mark.integration

HELD = ["extra000", "extra001", "extra002"]


@pytest.fixture
def guard_sim() -> Iterator[Simulator]:
    with start_simulator(bigger_scenario(6)) as simulator:
        yield simulator


def _item_of(sim: Simulator, upn_prefix: str) -> str:
    user = next(
        u for u in sim.directory.all_users() if u["userPrincipalName"].startswith(upn_prefix)
    )
    return str(user["id"]).replace("-", "")


def _revoke(sim: Simulator, prefixes: list[str]) -> None:
    by_email = {b["recipient_email"]: b["id"] for b in sim.badges(org_id(sim))}
    for prefix in prefixes:
        sim.update_badge(by_email[f"{prefix}@contoso.com"], state="revoked")


def _ready(sim: Simulator, tmp_path: Path, days_ago: float = 0, **sync: Any) -> Path:
    """Set up and run a first full crawl (recorded as started `days_ago`)."""
    config = configure(sim, tmp_path, **sync)
    settings = settings_of(config)
    do_setup(settings)
    started = datetime.now(UTC) - timedelta(days=days_ago)
    clients = build_clients(settings)
    try:
        first = run_sync(settings, clients.for_sync(), SyncOptions(), clock=lambda: started)
    finally:
        clients.close()
    assert first.exit_code == 0 and first.write is not None and first.write.written == 10
    return config


def _sync(config: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = cli(config, "sync", "--json", *args)
    return result.returncode, validate_output(result.stdout)["instances"][0], result.stderr


def _rewrite_limit(config: Path, limit: int) -> None:
    text = config.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("max_deletes =")]
    marker = next(i for i, line in enumerate(lines) if line.startswith("state_dir ="))
    lines.insert(marker + 1, f"max_deletes = {limit}")
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_over_the_limit_every_write_is_done_and_every_deletion_held_until_allowed(
    guard_sim: Simulator, tmp_path: Path
) -> None:
    sim = guard_sim
    config = _ready(sim, tmp_path, max_deletes=2)
    before = graph_view(sim)
    _revoke(sim, HELD)
    by_email = {b["recipient_email"]: b["id"] for b in sim.badges(org_id(sim))}
    sim.update_badge(by_email["extra003@contoso.com"], badge_template={"name": "Renamed"})
    upn = "newcomer@contoso.com"
    sim.add_user(
        id="00000000-0000-4000-8000-999999999999",
        userPrincipalName=upn,
        displayName="Newcomer",
        mail=upn,
        proxyAddresses=[f"SMTP:{upn}"],
        accountEnabled=True,
        assignedLicenses=[LICENSE],
        userType="Member",
        hasMailbox=True,
    )
    sim.add_badge(
        org_id(sim),
        state="accepted",
        public=True,
        recipient_email=upn,
        badge_template={"id": "t-new", "name": "Welcome", "type_category": "Learning"},
    )
    held_ids = {_item_of(sim, p) for p in HELD}
    db = state_path(tmp_path / "state", "demo")
    state = open_readonly(db)
    assert state is not None
    link_before = state.delta_link()
    state.close()
    assert link_before

    code, report, stderr = _sync(config, "--incremental")
    assert code == 1, stderr
    assert report["deletes_held"] == 3 and report["counts"]["deletes_held"] == 3
    assert report["counts"]["planned"]["delete"] == 3
    assert report["counts"]["deleted"] == 0
    assert report["counts"]["written"] == 2  # the renamed badge and the newcomer
    assert report["error"] is None and report["failures"] == []
    [warning] = [w for w in report["warnings"] if "held back" in w]
    assert "3 deletions were held back and nothing was deleted" in warning
    assert "sync.max_deletes (2)" in warning
    assert "`credlyctl sync --full --dry-run`" in warning
    assert "`credlyctl sync --full --allow-deletes`" in warning
    assert f"Warning: {warning}" in " ".join(stderr.split())
    # Graph: the oracle's items, plus the three held ones exactly as they were.
    assert graph_view(sim) == {**oracle(sim), **{i: before[i] for i in held_ids}}

    state = open_readonly(db)
    assert state is not None
    crawl = state.last_crawl()
    assert crawl is not None and crawl.outcome == "deletes_held"
    assert crawl.errors[0]["id"] == "deletes_held"
    items = state.items()
    assert held_ids <= set(items) and all(items[i].hash for i in held_ids)
    # The guard suspects what this crawl read: the delta link stays where it was.
    assert state.delta_link() == link_before
    state.close()
    checked = registry.run_checks(DiagnosticContext(settings_of(config)), ["sync.last_crawl"])
    [last] = [r for r in checked if r.check_id == "sync.last_crawl"]
    assert (last.status, last.cause) == (CheckStatus.WARN, "deletes_held")
    assert "held 3 deletions back" in last.explanation and "--allow-deletes" in last.fix

    # The next crawl plans the same deletions; a dry run says they would be held.
    dry_code, dry, dry_err = _sync(config, "--incremental", "--dry-run")
    assert dry_code == 0, dry_err
    assert dry["deletes_held"] == 3
    assert {op["item_id"] for op in dry["plan"] if op["action"] == "delete"} == held_ids
    assert any("a real run would hold all of them back" in w for w in dry["warnings"])
    human = cli(config, "sync", "--incremental", "--dry-run")
    assert "deletions a run would hold" in human.stdout
    assert "This crawl plans 3 deletions, more than sync.max_deletes (2)" in " ".join(
        human.stderr.split()
    )

    status = cli(config, "status", "--json")
    assert status.returncode == 1
    document = validate_output(status.stdout)["instances"][0]
    assert document["last_crawl"]["outcome"] == "deletes_held"
    assert document["recent_errors"][0]["id"] == "deletes_held"
    assert "deletions held back" in cli(config, "status").stdout

    code, allowed, stderr = _sync(config, "--incremental", "--allow-deletes")
    assert code == 0, stderr
    assert allowed["deletes_held"] == 0 and allowed["counts"]["deleted"] == 3
    assert graph_view(sim) == oracle(sim)
    code, again, _ = _sync(config, "--incremental")
    assert code == 0 and again["counts"]["planned"]["delete"] == 0


@pytest.mark.parametrize("limit", [3, 0], ids=["at_the_limit", "no_limit"])
def test_deletions_within_the_limit_or_without_one_happen(
    guard_sim: Simulator, tmp_path: Path, limit: int
) -> None:
    config = _ready(guard_sim, tmp_path, max_deletes=limit)
    _revoke(guard_sim, HELD)
    code, report, stderr = _sync(config, "--full")
    assert code == 0, stderr
    assert report["deletes_held"] == 0 and report["counts"]["deleted"] == 3
    assert not any("held" in w for w in report["warnings"])
    assert graph_view(guard_sim) == oracle(guard_sim)


def test_a_full_crawl_that_held_deletions_is_not_a_completed_full_crawl(
    guard_sim: Simulator, tmp_path: Path
) -> None:
    # The weekly full crawl is due; it finds more deletions than the limit.
    config = _ready(guard_sim, tmp_path, days_ago=8, max_deletes=2)
    _revoke(guard_sim, HELD)
    code, held, _ = _sync(config, "--if-due")
    assert code == 1 and held["kind"] == "full" and held["deletes_held"] == 3
    assert held["counts"]["written"] == 7  # a full crawl rewrites every qualifying item

    settings = settings_of(config)
    state = open_readonly(state_path(tmp_path / "state", "demo"))
    assert state is not None
    schedule = schedule_for(state, settings.sync)
    first = state.crawl_history(2)[-1]
    state.close()
    assert schedule.last_full is not None and schedule.last_full.id == first.id
    status = validate_output(cli(config, "status", "--json").stdout)["instances"][0]
    assert status["last_full_crawl"]["id"] == first.id
    assert status["next_crawl"]["kind_due_now"] == "full"

    # --if-due runs the full crawl again (it continues the held crawl's cycle: no rewrite),
    # rather than waiting a week while the deletions are pending.
    code, retried, _ = _sync(config, "--if-due")
    assert code == 1 and retried["kind"] == "full" and retried["skipped_reason"] is None
    assert retried["deletes_held"] == 3 and retried["counts"]["written"] == 0

    # Once the limit allows them, the due full crawl deletes and counts as completed.
    _rewrite_limit(config, 5)
    code, done, stderr = _sync(config, "--if-due")
    assert code == 0, stderr
    assert done["kind"] == "full" and done["counts"]["deleted"] == 3
    assert graph_view(guard_sim) == oracle(guard_sim)
    _, idle, _ = _sync(config, "--if-due")
    assert idle["skipped_reason"] == "no crawl is due"


def test_held_missing_state_clean_ups_are_remembered_and_planned_again(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    config = configure(fresh_sim, tmp_path, max_deletes=1)
    do_setup(settings_of(config))
    # No state and a connection setup did not just create: the first full crawl plans a
    # clean-up deletion for every directory user who does not qualify.
    for path in (tmp_path / "state").glob("demo.sqlite3*"):
        path.unlink()
    code, first, stderr = _sync(config)
    assert code == 1, stderr
    assert first["deletes_held"] == first["counts"]["planned"]["delete"] > 1
    assert first["counts"]["deleted"] == 0 and first["counts"]["written"] == 4
    dry_code, dry, _ = _sync(config, "--full", "--dry-run")
    deletes = [op for op in dry["plan"] if op["action"] == "delete"]
    assert dry_code == 0 and len(deletes) == first["deletes_held"]
    assert all(op["reason"] != "state_missing_cleanup" for op in deletes)
    code, allowed, stderr = _sync(config, "--full", "--allow-deletes")
    assert code == 0, stderr
    assert allowed["counts"]["deleted"] == first["deletes_held"]
    state = open_readonly(state_path(tmp_path / "state", "demo"))
    assert state is not None
    assert set(state.items()) == set(graph_view(fresh_sim)) == set(oracle(fresh_sim))
    state.close()


def test_the_limit_resolves_from_the_environment_and_defaults_to_500(
    fresh_sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(fresh_sim, tmp_path)
    assert settings_of(config).sync.max_deletes == 500
    monkeypatch.setenv("CREDLYCTL_SYNC_MAX_DELETES", "7")
    assert settings_of(config).sync.max_deletes == 7
    negative = tmp_path / "negative"
    negative.mkdir()
    result = cli(configure(fresh_sim, negative, max_deletes=-1), "validate-config", "--json")
    assert result.returncode == 1  # validate-config: 1 when the file has errors
    assert "sync.max_deletes" in result.stdout and "greater than or equal to 0" in result.stdout
