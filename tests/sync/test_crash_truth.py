"""What credlyctl says after a crash, and what it still owes (issue 9, finding H1).

A crawl marked `running` whose process died reads `interrupted` in `status`, `diagnose` and the
scheduler (`--if-due`), which then agree that the crawl must run again; and a missing-state
clean-up killed halfway is still planned by the next run.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from credly_connector.diagnostics import registry
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import CheckStatus
from credly_connector.simulator.runner import Simulator
from tests.cli.schema_check import validate_output
from tests.sync.simhelpers import (
    cli,
    cli_popen,
    configure,
    do_setup,
    do_sync,
    graph_view,
    oracle,
    org_id,
    settings_of,
)
from tests.sync.test_sync_cli import batches, wait_for

pytestmark = pytest.mark.integration


def _credly_read(sim: Simulator) -> bool:
    return any(e.service == "credly-api" and e.path.endswith("/badges") for e in sim.request_log())


# (a full crawl completed before the one stopped?, when to stop it, how)
STOPS: dict[str, tuple[bool, Callable[[Simulator], bool], signal.Signals]] = {
    "first_crawl_killed_while_reading": (False, _credly_read, signal.SIGKILL),
    "first_crawl_killed_after_a_batch": (False, lambda sim: batches(sim) >= 1, signal.SIGKILL),
    "later_crawl_killed_after_a_batch": (True, lambda sim: batches(sim) >= 1, signal.SIGKILL),
    "later_crawl_stopped_by_ctrl_c": (True, lambda sim: batches(sim) >= 1, signal.SIGINT),
}


def _last_crawl_check(config: Path) -> tuple[CheckStatus, str | None]:
    results = registry.run_checks(DiagnosticContext(settings_of(config)), ["sync.last_crawl"])
    [check] = [r for r in results if r.check_id == "sync.last_crawl"]
    return check.status, check.cause


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_after_a_stop_status_diagnose_and_if_due_agree_until_a_crawl_completes(
    big_sim: Simulator, tmp_path: Path, stop: str
) -> None:
    completed_before, when, how = STOPS[stop]
    config = configure(big_sim, tmp_path, max_write_rate=20, write_concurrency=1)
    settings = settings_of(config)
    do_setup(settings)
    if completed_before:
        assert do_sync(settings).exit_code == 0
    big_sim.set_faults(latency_seconds=0.05)
    big_sim.clear_request_log()
    victim = cli_popen(config, "sync", "--full")
    wait_for(lambda: when(big_sim), victim)
    os.kill(victim.pid, how)
    victim.communicate(timeout=120)
    assert victim.returncode != 0
    big_sim.set_faults(latency_seconds=0)

    status = cli(config, "status", "--json")
    assert status.returncode == 1, status.stdout + status.stderr
    document = validate_output(status.stdout)["instances"][0]
    assert document["sync_running"] is False
    assert document["last_crawl"]["outcome"] == "interrupted"
    assert document["last_crawl"]["errors"][0]["id"] == "interrupted"
    if how is signal.SIGINT:
        assert "Ctrl+C" in document["last_crawl"]["errors"][0]["message"]
    assert document["next_crawl"]["kind_due_now"] == "full"
    assert "interrupted" in cli(config, "status").stdout

    check, cause = _last_crawl_check(config)
    assert check is CheckStatus.FAIL
    assert cause == ("last_crawl_failed" if completed_before else "no_completed_crawl")

    due = cli(config, "sync", "--if-due", "--json")
    assert due.returncode == 0, due.stderr
    report = validate_output(due.stdout)["instances"][0]
    assert report["skipped_reason"] is None and report["kind"] == "full"
    assert graph_view(big_sim) == oracle(big_sim)

    assert cli(config, "status", "--json").returncode == 0
    assert _last_crawl_check(config)[0] is CheckStatus.OK
    idle = validate_output(cli(config, "sync", "--if-due", "--json").stdout)
    assert idle["instances"][0]["skipped_reason"] == "no crawl is due"


def test_status_exits_1_while_no_crawl_has_ever_completed(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    config = configure(fresh_sim, tmp_path)
    do_setup(settings_of(config))
    status = cli(config, "status", "--json")
    assert status.returncode == 1
    assert validate_output(status.stdout)["instances"][0]["last_crawl"] is None


def test_a_kill_during_the_missing_state_clean_up_leaves_the_clean_up_pending(
    big_sim: Simulator, tmp_path: Path
) -> None:
    """H1: the clean-up decided by the first full crawl after lost state survives a SIGKILL."""
    config = configure(big_sim, tmp_path, max_write_rate=20, write_concurrency=1)
    settings = settings_of(config)
    do_setup(settings)
    assert do_sync(settings).exit_code == 0
    badges = {b["recipient_email"]: b["id"] for b in big_sim.badges(org_id(big_sim))}
    for n in range(0, 45, 2):  # every other user loses their badges: deletions in every batch
        big_sim.update_badge(badges[f"extra{n:03d}@contoso.com"], state="revoked")
    for n in (1, 21, 41):
        big_sim.update_user(f"extra{n:03d}@contoso.com", accountEnabled=False)
    for path in (tmp_path / "state").glob("demo.sqlite3*"):
        path.unlink()  # the state is lost: only the clean-up can find the stale items

    big_sim.set_faults(latency_seconds=0.05)
    big_sim.clear_request_log()
    victim = cli_popen(config, "sync", "--full")
    wait_for(lambda: batches(big_sim) >= 1, victim)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=120)
    big_sim.set_faults(latency_seconds=0)
    assert graph_view(big_sim) != oracle(big_sim)  # killed with clean-ups still unsent

    rerun = cli(config, "sync", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert graph_view(big_sim) == oracle(big_sim)
    again = validate_output(cli(config, "sync", "--full", "--json").stdout)["instances"][0]
    assert again["counts"]["planned"]["delete"] == 0
    assert graph_view(big_sim) == oracle(big_sim)
