"""Microsoft Graph's documented contract, held against the simulator over real HTTPS.

- Evolvable enum members (the person labels) need `Prefer: include-unknown-enum-members`:
  setup twice, diagnose and status are clean whether the simulator enforces the rule (its
  default) or answers like the earlier lenient model.
- A tenant without a default profile property setting gets one from setup.
- The US Government clouds have no people-data connections: setup and sync refuse them.
- A setup that failed after creating the connection still marks it as created empty.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from credly_connector.cli.app import app
from credly_connector.errors import RemoteError, UsageError
from credly_connector.simulator.runner import Simulator, start_simulator
from credly_connector.simulator.scenario import load_scenario
from credly_connector.sync.setup import run_setup
from credly_connector.sync.state import open_readonly, state_path
from tests.sync.simhelpers import CONNECTION, configure, do_setup, do_sync, settings_of

pytestmark = pytest.mark.integration


def _scenario(**graph: Any) -> dict[str, Any]:
    scenario = load_scenario("demo")
    scenario["graph"] = {**scenario["graph"], **graph}
    return scenario


def _run(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, [*args, "--config", str(config), "--json"])
    return result.exit_code, json.loads(result.stdout)


def _graph_errors(sim: Simulator) -> list[Any]:
    return [e for e in sim.request_log() if e.service == "graph" and e.status == 400]


@pytest.fixture(params=[True, False], ids=["enforcing", "lenient"])
def rule_sim(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    with start_simulator(_scenario(enforce_evolvable_enums=request.param)) as simulator:
        yield simulator


def test_setup_twice_diagnose_and_status_are_clean_under_the_header_rule(
    rule_sim: Simulator, tmp_path: Path
) -> None:
    config = configure(rule_sim, tmp_path)
    code, first = _run(config, "setup")
    assert code == 0, first
    code, second = _run(config, "setup")
    assert code == 0, second
    again = second["instances"][0]
    assert not again["changed"] and again["warnings"] == []
    assert {s["step"]: s["status"] for s in again["steps"]}["schema"] == "unchanged"
    code, synced = _run(config, "sync", "--full")
    assert code == 0, synced

    code, diagnosis = _run(config, "diagnose")
    assert code == 0, diagnosis
    by_id = {r["check_id"]: r for r in diagnosis["results"]}
    assert by_id["graph.schema"]["status"] == "ok", by_id["graph.schema"]
    assert not [r for r in diagnosis["results"] if r["status"] in ("fail", "error")]
    code, status = _run(config, "status")
    assert code == 0, status
    assert status["instances"][0]["connection"]["state"] == "ready"
    assert _graph_errors(rule_sim) == []


def test_a_schema_graph_will_not_show_is_unreadable_not_different(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(configure(fresh_sim, tmp_path))
    do_setup(settings)
    # A Graph that ignores the opt-in header: the labels come back as unknownFutureValue.
    connection = fresh_sim.graph.external.connections[CONNECTION]
    assert connection.schema is not None
    for prop in connection.schema["properties"]:
        prop["labels"] = ["unknownFutureValue"]
    report = do_setup(settings)
    assert not report.changed
    assert any("could not be read" in w and "'account'" in w for w in report.warnings)

    code, diagnosis = _run(configure(fresh_sim, tmp_path), "diagnose", "--only", "graph.schema")
    schema = next(r for r in diagnosis["results"] if r["check_id"] == "graph.schema")
    assert (schema["status"], schema["cause"]) == ("warn", "schema_labels_unreadable")
    assert code == 0


def test_setup_creates_the_default_profile_setting_when_the_tenant_has_none(
    tmp_path: Path,
) -> None:
    with start_simulator(_scenario(default_profile_setting=False)) as sim:
        assert sim.profile_property_settings() == []
        settings = settings_of(configure(sim, tmp_path))
        report = do_setup(settings)
        priority = next(s for s in report.steps if s.name == "priority")
        assert priority.status == "created"
        assert "no default profile property setting" in priority.detail
        settings_now = sim.profile_property_settings()
        ours = f"{sim.urls.graph}/v1.0/admin/people/profileSources(sourceId='{CONNECTION}')"
        assert [(s["name"], s["prioritizedSourceUrls"]) for s in settings_now] == [(None, [ours])]
        posts = [
            e
            for e in sim.request_log()
            if e.method == "POST" and e.path.endswith("/admin/people/profilePropertySettings")
        ]
        assert len(posts) == 1 and posts[0].status == 201
        assert not do_setup(settings).changed
        # The badges reach profiles through the setting setup created.
        assert do_sync(settings, kind="full").exit_code == 0
        assert any(sim.graph.profile_view(u)["awards"] for u in _demo_upns(sim))


def _demo_upns(sim: Simulator) -> list[str]:
    return [str(u["userPrincipalName"]) for u in sim.directory.all_users()]


def _us_government(sim: Simulator, folder: Path, cloud: str) -> Path:
    config = configure(sim, folder)
    text = config.read_text(encoding="utf-8")
    section = "[instances.demo.entra]"
    assert section in text
    config.write_text(text.replace(section, f'{section}\ncloud = "{cloud}"', 1), encoding="utf-8")
    return config


@pytest.mark.parametrize("cloud", ["usgov", "usgovdod"])
def test_us_government_clouds_refuse_setup_and_sync_but_identity_checks_run(
    fresh_sim: Simulator, tmp_path: Path, cloud: str
) -> None:
    config = _us_government(fresh_sim, tmp_path, cloud)
    fresh_sim.clear_request_log()
    for command in (("setup",), ("sync", "--full")):
        code, document = _run(config, *command)
        assert code == 2, document
        assert document["error"]["id"] == "cloud_without_people_data"
        assert "contentCategory" in document["error"]["message"]
    assert [e for e in fresh_sim.request_log() if e.service == "graph"] == []

    code, diagnosis = _run(config, "diagnose")
    by_id = {r["check_id"]: r for r in diagnosis["results"]}
    assert by_id["graph.cloud"]["status"] == "fail"
    assert by_id["graph.cloud"]["cause"] == "cloud_without_people_data"
    assert by_id["entra.token"]["status"] == "ok"
    assert by_id["credly.credentials"]["status"] == "ok"
    for dependent in ("graph.connection_state", "graph.profile_source", "graph.other_sources"):
        assert by_id[dependent]["status"] == "skipped", dependent
    assert code == 1


def test_setup_failing_after_creating_the_connection_still_marks_it_empty(
    tmp_path: Path,
) -> None:
    with start_simulator(_scenario(schema_delay_seconds=3600)) as sim:
        settings = settings_of(configure(sim, tmp_path))
        path = state_path(settings.sync.state_dir, settings.name)
        with pytest.raises(RemoteError):
            run_setup(settings, schema_timeout=0.01, sleep=lambda seconds: None)
        assert _meta(path, "connection_created_empty") == "1"

        # Even with the state lost, a connection still in draft without a schema is empty.
        for leftover in path.parent.glob(path.name + "*"):
            leftover.unlink()
        with pytest.raises(RemoteError):
            run_setup(settings, schema_timeout=0.01, sleep=lambda seconds: None)
        assert _meta(path, "connection_created_empty") == "1"

        # Once the schema applies, the first crawl sends no clean-up deletion.
        sim.graph.set_schema_delay(0)
        do_setup(settings)
        synced = do_sync(settings, kind="full")
        assert synced.exit_code == 0
        assert synced.counts()["planned"]["delete"] == 0


def _meta(path: Path, key: str) -> str | None:
    state = open_readonly(path)
    assert state is not None
    try:
        return state.get_meta(key)
    finally:
        state.close()


def test_run_setup_refuses_before_touching_graph_in_us_government(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_of(_us_government(fresh_sim, tmp_path, "usgov"))
    fresh_sim.clear_request_log()
    with pytest.raises(UsageError) as refused:
        run_setup(settings)
    assert refused.value.error_id == "cloud_without_people_data"
    assert fresh_sim.request_log() == []


def test_secret_expiry_picks_the_configured_secret_by_its_hint(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    # Graph returns `hint`, the secret's first three characters (passwordCredential); the
    # check uses it to tell the configured secret from the app's other ones.
    app_id = str(fresh_sim.scenario["connector"]["entra_app_id"])
    app = next(a for a in fresh_sim.directory.all_apps() if a["app_id"] == app_id)
    soon = (datetime.now(UTC) + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    other = {"key_id": "k-soon", "display_name": "ci", "end_date": soon, "value": "zZz-other"}
    fresh_sim.update_app(app_id, secrets=[*app["secrets"], other])
    config = configure(fresh_sim, tmp_path)

    code, diagnosis = _run(config, "diagnose", "--only", "entra.secret_expiry")
    expiry = next(r for r in diagnosis["results"] if r["check_id"] == "entra.secret_expiry")
    assert expiry["status"] == "ok", expiry
    assert expiry["explanation"].startswith("The Entra client secret")
    # Without the match the app's soonest secret (5 days) would have made this a warning.
    assert expiry["evidence"]["end_dates"] == ["2027-09-30"]
    assert expiry["evidence"]["secrets_on_app"] == 3
    assert code == 0
