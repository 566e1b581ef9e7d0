"""Scenarios, the demo's coverage of the troubleshooting table, config output, the generator."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest

from credly_connector.config.load import load_instance
from credly_connector.simulator.directory import Directory
from credly_connector.simulator.generator import generate
from credly_connector.simulator.runner import Simulator, start_simulator
from credly_connector.simulator.scenario import (
    ScenarioError,
    available,
    load_scenario,
    strip_expectations,
)
from tests.conftest import shared_path

ORG1 = "5e2c8a41-9d3b-4f6e-8a7c-1b2d3e4f5a60"
ORG2 = "a7b9c1d3-2e4f-4a6b-9c8d-0e1f2a3b4c5d"


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    return load_scenario("demo")


def minimal() -> dict[str, Any]:
    return {
        "credly": {
            "organizations": [{"id": ORG1, "name": "Org", "badges": []}],
            "oauth_clients": [
                {
                    "client_id": "c",
                    "client_secret": "s" * 12,
                    "organizations": [ORG1],
                    "scopes": ["issued_badges"],
                }
            ],
        },
        "entra": {
            "tenant_id": "11111111-2222-3333-4444-555555555555",
            "apps": [
                {
                    "app_id": "22222222-3333-4444-5555-666666666666",
                    "roles": [],
                    "secrets": [{"key_id": "k", "value": "v" * 12}],
                }
            ],
            "users": [{"id": "u1", "userPrincipalName": "a@contoso.com"}],
        },
        "expectations": {"users": []},
    }


# -- loading ---------------------------------------------------------------------------------


def test_demo_is_shipped_and_loads(demo: dict[str, Any]) -> None:
    assert "demo" in available()
    assert {"credly", "entra", "graph", "expectations"} <= set(demo)


def test_load_from_path_and_dict(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(minimal()))
    assert (
        load_scenario(path)["entra"]["tenant_id"] == load_scenario(minimal())["entra"]["tenant_id"]
    )
    assert load_scenario(str(path))["credly"]["organizations"][0]["id"] == ORG1


def test_load_copies_the_dict() -> None:
    source = minimal()
    loaded = load_scenario(source)
    loaded["credly"]["organizations"].clear()
    assert source["credly"]["organizations"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(surprise={}), "unknown scenario sections"),
        (lambda s: s["entra"].pop("tenant_id"), "tenant_id"),
        (lambda s: s["credly"]["oauth_clients"][0].pop("client_secret"), "client_secret"),
        (lambda s: s["entra"]["users"][0].pop("userPrincipalName"), "userPrincipalName"),
        (lambda s: s["credly"]["organizations"][0]["badges"].append({}), "no id"),
    ],
)
def test_invalid_scenarios_are_refused(change: Any, message: str) -> None:
    scenario = minimal()
    change(scenario)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(scenario)


def test_unknown_name_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="unknown scenario"):
        load_scenario("no-such-scenario")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_scenario(broken)
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "missing.json")


def test_strip_expectations(demo: dict[str, Any]) -> None:
    stripped = strip_expectations(demo)
    assert "expectations" not in stripped
    assert "expectations" in demo  # the input is left alone
    assert stripped["credly"] == demo["credly"]


def test_runner_serves_without_expectations(sim: Simulator, demo: dict[str, Any]) -> None:
    assert "expectations" not in sim.scenario
    assert sim.scenario["credly"]["environment"] == demo["credly"]["environment"]


def test_small_scenario_from_a_file_runs(tmp_path: Path) -> None:
    path = tmp_path / "small.json"
    path.write_text(json.dumps(minimal()))
    with start_simulator(path) as simulator:
        assert simulator.directory.get("a@contoso.com") is not None
        assert simulator.graph_items("nothing") == {}


# -- the demo scenario -----------------------------------------------------------------------


def _table_rows() -> list[str]:
    text = shared_path("seed", "credly-connector-troubleshooting.txt").read_text()
    rows: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == "Possible cause Resolution":
            for row in lines[index + 1 :]:
                if not row.strip():
                    break
                rows.append(row.strip())
    rows += ["Multiple Credly organizations", "Schema can't be customized"]
    return rows


def _recorded_rows(demo: dict[str, Any]) -> set[str]:
    expectations = demo["expectations"]
    rows = set()
    for group in ("users", "connections", "notes"):
        for entry in expectations[group]:
            for key in ("row", "row_after_arrange"):
                if entry.get(key):
                    rows.add(entry[key])
    return rows


def test_every_troubleshooting_row_happens_to_someone(demo: dict[str, Any]) -> None:
    recorded = _recorded_rows(demo)
    table = _table_rows()
    assert len(table) >= 11
    for row in table:
        assert any(row.startswith(cause) for cause in recorded), row


def _badges_for(demo: dict[str, Any], email: str) -> list[dict[str, Any]]:
    return [
        badge
        for org in demo["credly"]["organizations"]
        for badge in org["badges"]
        if badge["recipient_email"].lower() == email.lower()
    ]


def test_badge_causes_agree_with_the_badges(demo: dict[str, Any]) -> None:
    state_causes = {
        "badge_pending": "pending",
        "badge_rejected": "rejected",
        "badge_revoked": "revoked",
    }
    for entry in demo["expectations"]["users"]:
        found = _badges_for(demo, entry["email"])
        for cause in entry["causes"]:
            if cause in state_causes:
                assert [b["state"] for b in found] == [state_causes[cause]], entry["email"]
            if cause == "badge_private":
                assert [(b["state"], b["public"]) for b in found] == [("accepted", False)]
            if cause == "badge_expired":
                assert found[0]["expires_at"] < "2026-11-28"


def test_user_causes_agree_with_the_directory(demo: dict[str, Any]) -> None:
    directory = Directory(demo["entra"]["tenant_id"], demo["entra"]["users"])
    for entry in demo["expectations"]["users"]:
        user = directory.get(entry["user"]) if entry["user"] else None
        causes = set(entry["causes"])
        if entry["user"]:
            assert user is not None, entry["user"]
        if "user_disabled" in causes:
            assert user is not None and user["accountEnabled"] is False
        if "user_unlicensed" in causes:
            assert user is not None and user["assignedLicenses"] == []
        if "user_no_mailbox" in causes:
            assert user is not None and user["hasMailbox"] is False
        if "email_secondary_alias" in causes:
            assert user is not None
            assert f"smtp:{entry['email']}" in user["proxyAddresses"]
        if "email_no_user" in causes:
            every_address = {
                address.split(":", 1)[1].lower()
                for u in directory.all_users()
                for address in u["proxyAddresses"]
            } | {u["userPrincipalName"].lower() for u in directory.all_users()}
            assert entry["email"].lower() not in every_address


def test_demo_has_two_organizations_and_microsofts_connector(demo: dict[str, Any]) -> None:
    assert [o["id"] for o in demo["credly"]["organizations"]] == [ORG1, ORG2]
    assert any(c["contentCategory"] == "people" for c in demo["graph"]["connections"])
    assert len(demo["graph"]["profile_sources"]) == 2


def test_arranged_step_turns_pending_into_accepted(fresh_sim: Simulator) -> None:
    demo = load_scenario("demo")
    megan = next(u for u in demo["expectations"]["users"] if "arrange_after_first_full_sync" in u)
    step = megan["arrange_after_first_full_sync"]["update_badge"]
    fields = {k: v for k, v in step["fields"].items() if v != "<now>"}
    changed = fresh_sim.update_badge(step["badge_id"], **fields)
    assert changed["state"] == "accepted" and changed["public"] is True


# -- configuration for credlyctl -------------------------------------------------------------


def _secret_values(demo: dict[str, Any]) -> list[str]:
    values = [c["client_secret"] for c in demo["credly"]["oauth_clients"]]
    values += [t["token"] for t in demo["credly"]["authorization_tokens"]]
    values += [s["value"] for a in demo["entra"]["apps"] for s in a["secrets"]]
    return values


def test_config_loads_with_the_real_loader(
    sim: Simulator, tmp_path: Path, demo: dict[str, Any]
) -> None:
    path = sim.write_config(tmp_path / "credlyctl.toml")
    text = path.read_text()
    for value in _secret_values(demo):
        assert value not in text
    settings = load_instance(path, None)
    assert settings.credly.org_id == ORG1
    assert settings.credly.api_base == sim.urls.credly_api
    assert settings.entra.login_base == sim.urls.entra
    assert settings.entra.graph_base == sim.urls.graph
    assert settings.network.allow_custom_hosts is True
    assert settings.credly.client_secret is not None
    assert settings.credly.client_secret.reveal() in _secret_values(demo)
    secret_file = Path(tomllib.loads(text)["instances"]["demo"]["credly"]["client_secret"]["file"])
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600


def test_config_variants(sim: Simulator, tmp_path: Path) -> None:
    token = sim.write_config(tmp_path / "token.toml", credly_auth="token")
    loaded = load_instance(token, None)
    assert loaded.credly.authorization_token is not None
    assert str(loaded.credly.authorization_token_created) == "2026-10-01"
    cert = sim.write_config(tmp_path / "cert.toml", certificate="main")
    assert load_instance(cert, None).entra.certificate_path is not None
    wrong = sim.write_config(tmp_path / "wrong.toml", credly_client_secret="nope-nope-nope")
    assert load_instance(wrong, None).credly.client_secret.reveal() == "nope-nope-nope"  # type: ignore[union-attr]


def test_two_instances_in_one_file(sim: Simulator, tmp_path: Path) -> None:
    text = (
        sim.config_toml("contoso")
        + "\n"
        + sim.config_toml(
            "research",
            org_id=ORG2,
            credly_client_id="contoso-research-sync-8b2d6c",
            connection_id="credlyresearch",
            default_instance=False,
        )
    )
    path = tmp_path / "two.toml"
    path.write_text(text)
    assert load_instance(path, "research").credly.org_id == ORG2
    assert load_instance(path, None).name == "contoso"


# -- directory control -----------------------------------------------------------------------


def test_user_changes_feed_the_delta_sequence(fresh_sim: Simulator) -> None:
    start = fresh_sim.directory.sequence
    lee = fresh_sim.update_user("Lee.Gu@contoso.com", accountEnabled=True)
    added = fresh_sim.add_user(userPrincipalName="new.hire@contoso.com", displayName="New Hire")
    fresh_sim.delete_user("joni.sherman@contoso.com")
    changed, deleted, now = fresh_sim.directory.changes_since(start)
    assert set(changed) == {lee["id"], added["id"]}
    assert len(deleted) == 1 and now == start + 3
    assert fresh_sim.directory.get("joni.sherman@contoso.com") is None
    with pytest.raises(ValueError):
        fresh_sim.add_user(userPrincipalName="NEW.HIRE@contoso.com")


# -- generator -------------------------------------------------------------------------------


def test_generator_is_deterministic_and_mixed() -> None:
    first, again, other = (
        generate(300, 1200, seed=7),
        generate(300, 1200, seed=7),
        generate(300, 1200, seed=8),
    )
    assert first == again
    assert first != other
    badges = first["credly"]["organizations"][0]["badges"]
    users = first["entra"]["users"]
    assert len(badges) == 1200 and len(users) == 300
    assert {b["state"] for b in badges} == {"accepted", "pending", "rejected", "revoked"}
    assert any(b["state"] == "accepted" and not b["public"] for b in badges)
    assert any(not u["accountEnabled"] for u in users)
    assert any(not u["assignedLicenses"] for u in users)
    assert any(len(u["proxyAddresses"]) > 1 for u in users)
    assert any(b["recipient_email"].endswith("@gmail.example") for b in badges)
    load_scenario(first)  # valid


def test_generated_scenario_serves_pages(tmp_path: Path) -> None:
    with start_simulator(generate(50, 120, seed=3), copy=False) as simulator:
        assert len(simulator.badges(simulator.scenario["connector"]["org_id"])) == 120
        load_instance(simulator.write_config(tmp_path / "gen.toml"), None)


def test_connection_expectation_changes_are_config_arguments(
    sim: Simulator, demo: dict[str, Any], tmp_path: Path
) -> None:
    for case in demo["expectations"]["connections"]:
        change = case.get("change", {}).get("config")
        if change is None:
            continue
        text = sim.config_toml(**change)
        parsed = tomllib.loads(text)["instances"]["demo"]
        if "org_id" in change:
            assert parsed["credly"]["org_id"] == change["org_id"]
        if "base_url" in change:
            assert parsed["credly"]["base_url"] == change["base_url"]
        if "tenant_id" in change:
            assert parsed["entra"]["tenant_id"] == change["tenant_id"]


def test_graph_controls_are_wired(fresh_sim: Simulator) -> None:
    fresh_sim.set_faults(graph_ingestion_limit_per_second=5, graph_schema_delay_seconds=0)
    sources = fresh_sim.profile_sources()
    assert {s["sourceId"] for s in sources} >= {"MicrosoftCredly"}
    (setting,) = fresh_sim.profile_property_settings()
    assert "4ce763dd-9214-4eff-af7c-da491cc3782d" in setting["prioritizedSourceUrls"][0]
    assert fresh_sim.graph_invalid_values() == []
    assert fresh_sim.graph_items("MicrosoftCredly") == {}
    assert any(c["id"] == "MicrosoftCredly" for c in fresh_sim.graph_connections())
    fresh_sim.set_connection_state("MicrosoftCredly", "limitExceeded")
    state = next(c for c in fresh_sim.graph_connections() if c["id"] == "MicrosoftCredly")
    assert state["state"] == "limitExceeded"
    fresh_sim.expire_delta_tokens()
