"""The commands as an admin runs them: JSON schemas, exit codes, the lock, SIGKILL recovery."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from credly_connector.errors import UsageError
from credly_connector.simulator.runner import Simulator
from credly_connector.sync.state import open_readonly, state_path
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

pytestmark = pytest.mark.integration


def batches(sim: Simulator) -> int:
    return sum(1 for e in sim.request_log() if e.service == "graph" and e.path.endswith("/$batch"))


def wait_for(condition: Callable[[], bool], process: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.002)


def test_setup_sync_status_teardown_json_follow_their_schemas(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    config = configure(fresh_sim, tmp_path)
    setup = cli(config, "setup", "--json")
    assert setup.returncode == 0, setup.stderr
    assert validate_output(setup.stdout)["instances"][0]["changed"] is True

    dry = cli(config, "sync", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = validate_output(dry.stdout)["instances"][0]["plan"]
    assert {op["action"] for op in plan} == {"create"}

    synced = cli(config, "sync", "--json", "--log-file", str(tmp_path / "sync.log"))
    assert synced.returncode == 0, synced.stderr
    report = validate_output(synced.stdout)["instances"][0]
    assert report["kind"] == "full" and report["counts"]["written"] == 4
    assert report["requests"]["graph"]["graph.batch"] == 1
    events = [
        json.loads(line)["event"] for line in (tmp_path / "sync.log").read_text().splitlines()
    ]
    assert events[0] == "crawl_start" and events[-1] == "crawl_end" and "batch" in events

    # No secret reaches the output, the log or the state database.
    db = state_path(tmp_path / "state", "demo")
    wal = db.with_name(db.name + "-wal")
    state_bytes = db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    log_text = (tmp_path / "sync.log").read_text()
    secrets = [p.read_text() for p in (fresh_sim.workdir / "secrets").iterdir()]
    assert secrets
    for secret in secrets:
        assert secret not in synced.stdout + synced.stderr + log_text
        assert secret.encode() not in state_bytes
    jwt = rb"eyJ[\w-]+\.eyJ[\w-]+\."  # an access token's header and claims
    assert not re.search(jwt, state_bytes) and not re.search(jwt, log_text.encode())

    status = cli(config, "status", "--json")
    assert status.returncode == 0, status.stderr
    document = validate_output(status.stdout)["instances"][0]
    assert document["connection"]["state"] == "ready" and document["items"] == 4
    assert document["last_full_crawl"]["counts"]["written"] == 4
    assert document["last_incremental_crawl"] is None
    assert document["next_crawl"]["kind_due_now"] is None
    human = cli(config, "status")
    assert "credlybadges: ready" in human.stdout and "last full crawl" in human.stdout

    idle = cli(config, "sync", "--if-due", "--json")
    assert validate_output(idle.stdout)["instances"][0]["skipped_reason"] == "no crawl is due"

    refused = cli(config, "teardown", "--json")
    assert refused.returncode == 2 and validate_output(refused.stdout)["error"]["id"]
    gone = cli(config, "teardown", "--yes", "--json")
    assert gone.returncode == 0, gone.stderr
    steps = validate_output(gone.stdout)["instances"][0]["steps"]
    assert [s["status"] for s in steps] == ["deleted", "deleted", "deleted"]
    after = cli(config, "status", "--json")
    assert after.returncode == 1
    assert validate_output(after.stdout)["instances"][0]["connection"]["state"] == "missing"


def test_sync_before_setup_explains_the_connection_state(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    config = configure(fresh_sim, tmp_path)
    fresh_sim.clear_request_log()
    result = cli(config, "sync")
    assert result.returncode == 2
    # The connection check goes out with the delta link's request, but a crawl that cannot
    # write reads neither the directory nor Credly.
    sent = [(e.service, e.path) for e in fresh_sim.request_log()]
    assert ("graph", "/v1.0/external/connections/credlybadges") in sent
    assert not [p for s, p in sent if s == "graph" and p.endswith("/users")], sent
    assert not [p for s, p in sent if s == "credly-api"], sent
    assert "Error: The Graph connection 'credlybadges' does not exist." in result.stderr
    assert "Hint: Run `credlyctl setup` first" in result.stderr
    assert "Traceback" not in result.stderr
    as_json = validate_output(cli(config, "sync", "--json").stdout)
    assert as_json["error"]["id"] == "connection_missing"


def test_a_second_sync_of_the_same_instance_refuses_while_the_first_completes(
    big_sim: Simulator, tmp_path: Path
) -> None:
    # Ten seconds between batches: time for the second attempts (each waits LOCK_WAIT_SECONDS).
    config = configure(big_sim, tmp_path, max_write_rate=2, write_concurrency=1)
    assert cli(config, "setup").returncode == 0
    first = cli_popen(config, "sync", "--json")
    wait_for(lambda: batches(big_sim) >= 1, first)
    with pytest.raises(UsageError, match="Another sync of instance 'demo' is running"):
        do_sync(settings_of(config))
    second = cli(config, "sync")
    assert second.returncode == 2 and "Error: Another sync" in second.stderr
    assert "Hint:" in second.stderr
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert graph_view(big_sim) == oracle(big_sim)


def _change_world(sim: Simulator) -> None:
    badges = {b["recipient_email"]: b["id"] for b in sim.badges(org_id(sim))}
    for n in range(10):
        sim.update_badge(badges[f"extra{n:03d}@contoso.com"], state="revoked")
    sim.update_user("christie.cline@contoso.com", accountEnabled=False)
    sim.update_badge(badges["extra020@contoso.com"], badge_template={"name": "Renamed"})


KILL_POINTS: dict[str, Callable[[Simulator], bool]] = {
    "while_reading": lambda sim: any(
        e.service == "credly-api" and e.path.endswith("/badges") for e in sim.request_log()
    ),
    "after_first_item_batch": lambda sim: batches(sim) >= 1,
    "after_last_item_batch_around_the_state_commit": lambda sim: batches(sim) >= 3,
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_sigkill_at_any_point_then_the_next_run_ends_with_exactly_the_oracle(
    big_sim: Simulator, tmp_path: Path, point: str
) -> None:
    config = configure(big_sim, tmp_path, max_write_rate=20, write_concurrency=1)
    settings = settings_of(config)
    do_setup(settings)
    assert do_sync(settings).exit_code == 0
    _change_world(big_sim)
    big_sim.set_faults(latency_seconds=0.05)
    big_sim.clear_request_log()
    victim = cli_popen(config, "sync", "--full")
    wait_for(lambda: KILL_POINTS[point](big_sim), victim)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    big_sim.set_faults(latency_seconds=0)
    killed = open_readonly(state_path(tmp_path / "state", "demo"))
    assert killed is not None
    killed_crawl = killed.crawl_history(1)[0]
    # Killed right around the final commit, the crawl may or may not have been recorded; if
    # not, it reads `interrupted` (its process is dead: nobody holds the lock).
    around_commit = point.startswith("after_last")
    assert killed_crawl.outcome in (
        {"interrupted", "succeeded"} if around_commit else {"interrupted"}
    )
    confirmed = {
        i: r.hash
        for i, r in killed.items().items()
        if r.hash and r.written_crawl == killed_crawl.id
    }
    killed.close()
    # The world moves on between the runs as well.
    big_sim.update_user("extra030@contoso.com", assignedLicenses=[])

    rerun = cli(config, "sync", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert graph_view(big_sim) == oracle(big_sim)
    report = validate_output(rerun.stdout)["instances"][0]
    state = open_readonly(state_path(tmp_path / "state", "demo"))
    assert state is not None
    outcomes = [c.outcome for c in state.crawl_history(3)]
    assert outcomes[0] == "succeeded"
    assert outcomes[1] in ({"interrupted", "succeeded"} if around_commit else {"interrupted"})
    # Every item the state remembers exists, with a confirmed hash.
    items = state.items()
    assert set(items) == set(graph_view(big_sim))
    assert all(r.hash for r in items.values())
    state.close()
    # After an interrupted full crawl the rerun is a full crawl that continues its cycle:
    # items it confirmed with their final content before the kill are not written again
    # (its head start may have confirmed an older body, which the rerun replaces).
    assert report["kind"] == ("full" if killed_crawl.outcome == "interrupted" else "incremental")
    rewritten = {i for i, r in items.items() if r.written_crawl == report["crawl_id"]}
    assert report["counts"]["written"] == len(rewritten)
    assert not {i for i in rewritten if confirmed.get(i) == items[i].hash}
    # And a further run has nothing left to do.
    again = validate_output(cli(config, "sync", "--incremental", "--json").stdout)
    counts = again["instances"][0]["counts"]
    assert counts["written"] == 0 and counts["deleted"] == 0


def test_all_instances_are_set_up_synced_and_reported_one_after_another(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    first = fresh_sim.config_toml("alpha", state_dir=tmp_path / "state")
    second = fresh_sim.config_toml(
        "beta", state_dir=tmp_path / "state", connection_id="credlybeta", default_instance=False
    )
    config = tmp_path / "two.toml"
    config.write_text(first + "\n" + second, encoding="utf-8")
    setup = validate_output(cli(config, "setup", "--all", "--json").stdout)
    assert [r["instance"] for r in setup["instances"]] == ["alpha", "beta"]
    synced = cli(config, "sync", "--all", "--json")
    assert synced.returncode == 0, synced.stderr
    reports = validate_output(synced.stdout)["instances"]
    assert [(r["instance"], r["counts"]["written"]) for r in reports] == [
        ("alpha", 4),
        ("beta", 4),
    ]
    status = validate_output(cli(config, "status", "--all", "--json").stdout)
    assert [s["connection"]["id"] for s in status["instances"]] == ["credlybadges", "credlybeta"]
    refused = cli(config, "sync", "--all", "--instance", "alpha")
    assert refused.returncode == 2 and "Error: --all and --instance" in refused.stderr
