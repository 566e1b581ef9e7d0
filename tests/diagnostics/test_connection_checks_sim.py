"""Connection checks against the simulator over real HTTPS: each passes on a healthy setup,
and changing one fact (in the configuration or in the simulator) flips exactly its verdict.

The connection problems listed in the demo scenario's `expectations.connections` are checked
one by one: the set of checks that report a problem must be exactly the expected one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from credly_connector.cli.app import app
from credly_connector.diagnostics import registry
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import CheckResult, CheckStatus
from credly_connector.exit_codes import ExitCode
from credly_connector.simulator.runner import Simulator, start_simulator
from credly_connector.simulator.scenario import load_scenario

pytestmark = pytest.mark.integration

SCENARIO = Path(__file__).resolve().parents[2] / "credly_connector/simulator/scenarios/demo.json"
# Present on a healthy demo setup: the custom-host opt-in (always a warning) and Microsoft's
# own Credly connector in the tenant (a real overlap the demo tenant is built with).
BASELINE = {("config.valid", "warn"), ("graph.other_sources", "warn")}


@dataclass
class Ready:
    sim: Simulator
    state_dir: Path
    config: Path


def _setup_and_sync(sim: Simulator, config: Path) -> None:
    runner = CliRunner()
    for args in (["setup"], ["sync", "--full"]):
        result = runner.invoke(app, [*args, "--config", str(config)])
        assert result.exit_code == 0, result.output


def _prepare(sim: Simulator, folder: Path) -> Ready:
    state = folder / "state"
    config = sim.write_config(folder / "credlyctl.toml", state_dir=state)
    _setup_and_sync(sim, config)
    return Ready(sim, state, config)


@pytest.fixture(scope="module")
def ready(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ready]:
    with start_simulator("demo") as sim:
        yield _prepare(sim, tmp_path_factory.mktemp("ready"))


@pytest.fixture
def fresh_ready(tmp_path: Path) -> Iterator[Ready]:
    with start_simulator("demo") as sim:
        yield _prepare(sim, tmp_path)


def diagnose(
    ready: Ready,
    folder: Path,
    *,
    base_url: str | None = None,
    extra_toml: str = "",
    state_dir: Path | None = None,
    ids: list[str] | None = None,
    **changes: Any,
) -> list[CheckResult]:
    text = ready.sim.config_toml(state_dir=state_dir or ready.state_dir, **changes)
    if base_url is not None:
        text = text.replace(f'base_url = "{ready.sim.urls.credly_web}"', f'base_url = "{base_url}"')
    path = folder / f"config-{time.monotonic_ns()}.toml"
    path.write_text(text + extra_toml, encoding="utf-8")
    return registry.run_checks(DiagnosticContext.load(path, None), ids)


def problems(results: list[CheckResult]) -> set[tuple[str, str]]:
    bad = {CheckStatus.FAIL, CheckStatus.WARN, CheckStatus.ERROR}
    return {(r.check_id, str(r.status)) for r in results if r.status in bad}


def by_id(results: list[CheckResult], check_id: str) -> list[CheckResult]:
    return [r for r in results if r.check_id == check_id]


def test_healthy_setup_passes_every_connection_check(ready: Ready, tmp_path: Path) -> None:
    results = diagnose(ready, tmp_path)
    assert problems(results) == BASELINE
    assert {r.check_id for r in results} == {c.id for c in registry.all_checks("connection")}
    assert not [r for r in results if r.status == CheckStatus.SKIPPED]
    assert registry.verdict(results) == ExitCode.OK
    assert registry.verdict(results, strict=True) == ExitCode.PROBLEMS
    notes = {r.check_id: r.table_row for r in results if r.status == CheckStatus.NOTE}
    assert notes == {
        "sync.data_delay": "not-synced-yet",
        "copilot.cites_office": "copilot-cites-office",
    }


# (scenario id in demo.json expectations) -> the checks that must report it, with the row.
EXPECTED: dict[str, set[tuple[str, str, str | None]]] = {
    "invalid_org_id_format": {("credly.org_id_format", "fail", "invalid-org-id")},
    "unknown_org_id": {("credly.credentials", "fail", "invalid-org-id")},
    "foreign_org_id": {("credly.credentials", "fail", "invalid-org-id")},
    "wrong_client_secret": {("credly.credentials", "fail", "bad-client-credentials")},
    "wrong_client_id": {("credly.credentials", "fail", "bad-client-credentials")},
    "expired_authorization_token": {("credly.secret_expiry", "fail", "bad-client-credentials")},
    "missing_badge_scope": {("credly.credentials", "fail", "bad-client-credentials")},
    "wrong_endpoint_api_host": {("credly.endpoint", "fail", "wrong-endpoint-url")},
    "wrong_endpoint_sandbox": {("credly.endpoint", "fail", "wrong-endpoint-url")},
    "other_people_source": set(),  # part of the baseline: graph.other_sources warns
    "entra_app_no_consent": {("graph.permissions", "fail", None)},
    "entra_app_partial": {("graph.permissions", "fail", None)},
    "entra_app_disabled": {("entra.token", "fail", None)},
    "entra_secret_expired": {("entra.token", "fail", None)},
    # The expiring secret belongs to another app than the one that created the connection:
    # its OwnedBy item permission cannot reach that connection, which a sync would hit too.
    "entra_secret_expiring": {
        ("entra.secret_expiry", "warn", None),
        ("graph.permissions", "fail", None),
    },
    "entra_secret_id_pasted": {("entra.token", "fail", None)},
    "entra_unknown_tenant": {("entra.token", "fail", None)},
    "entra_other_cloud": {("entra.token", "fail", None)},
}
EXTRA_CAUSES = {"entra_secret_expiring": {"graph_connection_not_owned"}}
AADSTS = {
    "entra_app_disabled": "AADSTS7000112",
    "entra_secret_expired": "AADSTS7000222",
    "entra_secret_id_pasted": "AADSTS7000215",
    "entra_unknown_tenant": "AADSTS90002",
    "entra_other_cloud": "AADSTS90038",
}


def _connection_problems() -> list[dict[str, Any]]:
    scenario = json.loads(SCENARIO.read_text(encoding="utf-8"))
    return [c for c in scenario["expectations"]["connections"] if c["id"] in EXPECTED]


def test_every_demo_connection_problem_has_an_expected_set() -> None:
    scenario = json.loads(SCENARIO.read_text(encoding="utf-8"))
    listed = {c["id"] for c in scenario["expectations"]["connections"]}
    assert listed - {"initial_sync_not_completed"} == set(EXPECTED)


@pytest.mark.parametrize("problem", _connection_problems(), ids=lambda p: p["id"])
def test_demo_connection_problem_reports_exactly_its_causes(
    ready: Ready, tmp_path: Path, problem: dict[str, Any]
) -> None:
    change = dict(problem.get("change", {}).get("config", {}))
    base_url = change.pop("base_url", None)
    results = diagnose(ready, tmp_path, base_url=base_url, **change)
    found = {
        (r.check_id, str(r.status), r.table_row)
        for r in results
        if r.status in (CheckStatus.FAIL, CheckStatus.WARN, CheckStatus.ERROR)
        and (r.check_id, str(r.status)) not in BASELINE
    }
    assert found == EXPECTED[problem["id"]], [r.explanation for r in results]
    # The fine-grained cause ids are exactly the scenario's (plus the tenant-wide overlap with
    # Microsoft's connector wherever the check that sees it could run).
    causes = {
        r.cause
        for r in results
        if r.status in (CheckStatus.FAIL, CheckStatus.WARN, CheckStatus.ERROR)
        and r.cause != "config_warnings"
    }
    other_sources_ran = by_id(results, "graph.other_sources")[0].status != CheckStatus.SKIPPED
    expected = set(problem["causes"]) | EXTRA_CAUSES.get(problem["id"], set())
    if other_sources_ran:
        expected.add("other_credly_source")
    assert causes == expected
    expected_exit = ExitCode.PROBLEMS if any(s == "fail" for _, s, _ in found) else ExitCode.OK
    assert registry.verdict(results) == expected_exit
    if problem["id"] in AADSTS:
        token = by_id(results, "entra.token")[0]
        assert AADSTS[problem["id"]] in token.evidence["codes"]
        assert set(token.evidence) >= {"correlation_id", "trace_id", "timestamp"}
        dependants = by_id(results, "graph.permissions") + by_id(results, "graph.connection_state")
        assert {r.status for r in dependants} == {CheckStatus.SKIPPED}


def test_initial_sync_not_completed_without_state(ready: Ready, tmp_path: Path) -> None:
    results = diagnose(ready, tmp_path, state_dir=tmp_path / "empty-state")
    last = by_id(results, "sync.last_crawl")[0]
    assert last.status == CheckStatus.FAIL and last.table_row == "initial-sync-incomplete"
    assert by_id(results, "sync.data_delay")[0].status == CheckStatus.SKIPPED


def test_missing_permission_names_it_with_admin_consent(ready: Ready, tmp_path: Path) -> None:
    results = diagnose(ready, tmp_path, entra_app_id="613d025a-96de-5a1e-820f-5db98b64f910")
    failing = [r for r in by_id(results, "graph.permissions") if r.status == CheckStatus.FAIL]
    named = {r.evidence["permission"] for r in failing}
    assert named == {
        "ExternalConnection.ReadWrite.OwnedBy",
        "ExternalItem.ReadWrite.OwnedBy",
        "PeopleSettings.ReadWrite.All",
    }
    assert all("grant admin consent" in r.fix for r in failing)
    granted = [r for r in by_id(results, "graph.permissions") if r.status == CheckStatus.OK]
    assert [r.evidence["permission"] for r in granted] == ["User.Read.All"]
    assert granted[0].evidence["confirmed_by_call"] is True
    # What needs the missing permissions could not be read: skipped, never a second cause.
    for check_id in ("graph.connection_state", "graph.profile_source"):
        assert by_id(results, check_id)[0].status == CheckStatus.SKIPPED


def test_config_problems_flip_their_checks(ready: Ready, tmp_path: Path) -> None:
    several = diagnose(
        ready,
        tmp_path,
        org_id=("5e2c8a41-9d3b-4f6e-8a7c-1b2d3e4f5a60, a7b9c1d3-2e4f-4a6b-9c8d-0e1f2a3b4c5d"),
    )
    multiple = by_id(several, "config.multiple_orgs")[0]
    assert multiple.status == CheckStatus.FAIL and multiple.table_row == "multiple-orgs"
    assert "one instance per" in multiple.fix.lower()
    schema = diagnose(ready, tmp_path, extra_toml="\n[instances.demo.graph.schema]\nx = 1\n")
    fixed = by_id(schema, "config.fixed_schema")[0]
    assert fixed.status == CheckStatus.FAIL and fixed.table_row == "fixed-schema"
    missing = diagnose(ready, tmp_path, extra_toml="")
    assert by_id(missing, "config.valid")[0].status == CheckStatus.WARN


def test_unresolvable_secret_fails_config_valid(ready: Ready, tmp_path: Path) -> None:
    text = ready.sim.config_toml(state_dir=ready.state_dir)
    text = text.replace('client_secret = { file = "', 'client_secret = { file = "/nonexistent', 1)
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    results = registry.run_checks(DiagnosticContext.load(path, None))
    valid = by_id(results, "config.valid")[0]
    assert valid.status == CheckStatus.FAIL
    assert by_id(results, "credly.credentials")[0].status == CheckStatus.SKIPPED


def test_valid_authorization_token_has_a_known_expiry(ready: Ready, tmp_path: Path) -> None:
    results = diagnose(ready, tmp_path, credly_auth="token")
    expiry = by_id(results, "credly.secret_expiry")[0]
    assert expiry.status in (CheckStatus.OK, CheckStatus.WARN)
    assert expiry.evidence["days_left"] >= 0
    assert by_id(results, "credly.credentials")[0].status == CheckStatus.OK


def test_data_delay_note_ends_after_six_hours(ready: Ready, tmp_path: Path) -> None:
    path = ready.sim.write_config(tmp_path / "c.toml", state_dir=ready.state_dir)
    later = DiagnosticContext.load(path, None)
    later.now = later.now + timedelta(hours=7)
    result = registry.run_checks(later, ["sync.data_delay"])[-1]
    assert result.status == CheckStatus.OK


def test_check_only_subset(ready: Ready, tmp_path: Path) -> None:
    results = diagnose(ready, tmp_path, ids=["graph.schema"])
    assert [r.check_id for r in results] == [
        "entra.token",
        "graph.cloud",
        "graph.connection_state",
        "graph.schema",
    ]


# -- one fact changed in the simulator ----------------------------------------------------------


def _graph(ready: Ready) -> Any:
    return DiagnosticContext.load(ready.config, None).graph()


@pytest.mark.parametrize("state", ["draft", "limitExceeded", "obsolete"])
def test_connection_state_flips(fresh_ready: Ready, tmp_path: Path, state: str) -> None:
    fresh_ready.sim._require_graph().set_connection_state("credlybadges", state)
    results = diagnose(fresh_ready, tmp_path)
    result = by_id(results, "graph.connection_state")[0]
    assert result.status == CheckStatus.FAIL and state in result.explanation
    assert by_id(results, "graph.schema")[0].status == CheckStatus.SKIPPED
    fresh_ready.sim._require_graph().set_connection_state("credlybadges", None)
    assert by_id(diagnose(fresh_ready, tmp_path), "graph.connection_state")[0].status == "ok"


def test_missing_connection_profile_source_and_priority(fresh_ready: Ready, tmp_path: Path) -> None:
    graph = _graph(fresh_ready)
    settings = graph.get_profile_property_settings()[0]
    urls = list(settings["prioritizedSourceUrls"])
    graph.update_prioritized_sources(settings["id"], [*urls[1:], urls[0]])
    after = diagnose(fresh_ready, tmp_path)
    priority = by_id(after, "graph.profile_priority")[0]
    assert (
        priority.status == CheckStatus.FAIL
        and "after the Microsoft Entra ID" in priority.explanation
    )
    graph.update_prioritized_sources(settings["id"], urls[1:])
    assert (
        "not in the prioritized"
        in by_id(diagnose(fresh_ready, tmp_path), "graph.profile_priority")[0].explanation
    )
    graph.delete_profile_source("credlybadges")
    results = diagnose(fresh_ready, tmp_path)
    assert by_id(results, "graph.profile_source")[0].status == CheckStatus.FAIL
    assert by_id(results, "graph.profile_priority")[0].status == CheckStatus.SKIPPED
    graph.delete_connection("credlybadges")
    gone = by_id(diagnose(fresh_ready, tmp_path), "graph.connection_state")[0]
    assert gone.status == CheckStatus.FAIL and gone.table_row == "initial-sync-incomplete"


def test_changed_schema_is_the_fixed_schema_row(fresh_ready: Ready, tmp_path: Path) -> None:
    graph = _graph(fresh_ready)
    graph.register_schema(
        "credlybadges",
        [
            {"name": "account", "type": "string", "labels": ["personAccount"]},
            {"name": "awards", "type": "stringCollection", "labels": ["personAwards"]},
            {"name": "skills", "type": "stringCollection", "labels": ["personSkills"]},
        ],
    )
    deadline = time.monotonic() + 30

    def applied() -> bool:
        schema = graph.get_schema("credlybadges") or {}
        names = {p.get("name") for p in schema.get("properties") or []}
        ready = (graph.get_connection("credlybadges") or {}).get("state") == "ready"
        return ready and "skills" in names

    while not applied():  # the schema operation is asynchronous, as in Graph
        assert time.monotonic() < deadline
        time.sleep(0.1)
    result = by_id(diagnose(fresh_ready, tmp_path), "graph.schema")[0]
    assert result.status == CheckStatus.FAIL and result.table_row == "fixed-schema"
    assert "cannot be customized" in result.fix


def test_without_microsofts_connector_other_sources_pass(tmp_path: Path) -> None:
    scenario = load_scenario("demo")
    scenario["graph"]["connections"] = []
    scenario["graph"]["profile_sources"] = scenario["graph"]["profile_sources"][:1]
    scenario["graph"]["prioritized_source_urls"] = scenario["graph"]["prioritized_source_urls"][:1]
    with start_simulator(scenario) as sim:
        ready = _prepare(sim, tmp_path)
        results = diagnose(ready, tmp_path)
        assert by_id(results, "graph.other_sources")[0].status == CheckStatus.OK
        assert problems(results) == {("config.valid", "warn")}


# -- inferred Credly behaviours: every plausible answer gives the same diagnosis ------------------


@pytest.mark.parametrize("status", [403, 404])
def test_foreign_org_is_an_org_id_problem_whatever_credly_answers(
    tmp_path: Path, status: int
) -> None:
    with start_simulator("demo", switches={"foreign_org_status": status}) as sim:
        ready = Ready(sim, tmp_path / "state", tmp_path / "unused.toml")
        results = diagnose(
            ready,
            tmp_path,
            org_id="a7b9c1d3-2e4f-4a6b-9c8d-0e1f2a3b4c5d",
            ids=["credly.credentials"],
        )
        credly = by_id(results, "credly.credentials")[0]
        assert credly.status == CheckStatus.FAIL and credly.table_row == "invalid-org-id"
        visible = credly.evidence["visible_organizations"]
        assert [o["name"] for o in visible] == ["Contoso Ltd"]


@pytest.mark.parametrize("where", ["token", "api"])
def test_missing_scope_is_found_wherever_credly_reports_it(tmp_path: Path, where: str) -> None:
    with start_simulator("demo", switches={"scope_error": where}) as sim:
        ready = Ready(sim, tmp_path / "state", tmp_path / "unused.toml")
        results = diagnose(
            ready,
            tmp_path,
            credly_client_id="contoso-templates-only-3c9e1d",
            ids=["credly.credentials"],
        )
        credly = by_id(results, "credly.credentials")[0]
        assert (credly.status, credly.cause) == (CheckStatus.FAIL, "credly_scope_missing")
