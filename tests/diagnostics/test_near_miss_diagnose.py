"""diagnose WORK_ADDRESS finds badges issued to addresses that are probably the person's.

On the demo tenant (a misspelled work address, a personal outlook.com address) and on a
generated tenant (personal, misspelled and other-organization addresses), each named with the
reason and the fix; people without such a badge get no candidate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from credly_connector.simulator.generator import OTHER_ORGANIZATION_DOMAIN, generate
from credly_connector.simulator.runner import start_simulator
from tests.diagnostics.explain_support import Tenant, synced_tenant

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    yield from synced_tenant(tmp_path_factory.mktemp("near-miss"))


def _badge_result(document: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in document["results"] if r["check_id"] == "user.badges")


def _candidates(document: dict[str, Any]) -> list[dict[str, Any]]:
    evidence = _badge_result(document)["evidence"]
    return list(evidence["near_miss_search"]["candidates"])


@pytest.mark.parametrize(
    ("work", "badge_address", "kind", "fix_words"),
    [
        (
            "miriam.graham@contoso.com",
            "miriam.grahm@contoso.com",
            "work",
            ["reissue the badge to miriam.graham@contoso.com"],
        ),
        (
            "bianca.pisani@contoso.com",
            "bianca.pisani@outlook.com",
            "personal",
            ["reissue the badge to bianca.pisani@contoso.com", "Add Email Address"],
        ),
    ],
)
def test_demo_work_address_finds_the_near_miss_badge(
    tenant: Tenant, work: str, badge_address: str, kind: str, fix_words: list[str]
) -> None:
    code, document = tenant.json("diagnose", work)
    assert code == 1
    causes = [c["id"] for c in document["causes"]]
    assert "email_mismatch" in causes and "no_badges" not in causes
    result = _badge_result(document)
    assert result["cause"] == "email_mismatch" and badge_address in result["explanation"]
    for words in fix_words:
        assert words.lower() in result["fix"].lower()
    [candidate] = _candidates(document)
    assert candidate["address"] == badge_address and candidate["kind"] == kind
    assert candidate["badges"] and candidate["reason"]
    assert document["next_command"] == f"credlyctl sync --user {work}"


@pytest.mark.parametrize(
    "email", ["joni.sherman@contoso.com", "alex.wilber@contoso.com", "lee.gu@contoso.com"]
)
def test_demo_people_without_such_a_badge_get_no_candidate(tenant: Tenant, email: str) -> None:
    _, document = tenant.json("diagnose", email)
    assert _candidates(document) == []
    assert "email_mismatch" not in [c["id"] for c in document["causes"]]


def test_human_output_of_a_single_cause_fits_in_15_lines(tenant: Tenant) -> None:
    result = tenant.invoke("diagnose", "miriam.graham@contoso.com")
    lines = result.stdout.rstrip("\n").splitlines()
    assert len(lines) <= 15, result.stdout
    text = result.stdout
    assert "miriam.grahm@contoso.com" in text and "Fix: Ask the issuer to reissue" in text
    assert "passed" in text and "-v" in text
    assert lines[-1] == "Next: credlyctl sync --user miriam.graham@contoso.com"
    assert "[✓] Directory user for the email" not in text  # collapsed into the passed line
    verbose = tenant.invoke("diagnose", "miriam.graham@contoso.com", "-v").stdout
    assert "[✓] Directory user for the email" in verbose and len(verbose.splitlines()) > 30


def test_without_a_crawl_the_search_says_it_was_limited(tmp_path: Path) -> None:
    with start_simulator("demo") as sim:
        config = sim.write_config(tmp_path / "c.toml", state_dir=tmp_path / "state")
        env = {"CREDLYCTL_CONFIG": str(config), "NO_COLOR": "1", "COLUMNS": "200"}
        runner = CliRunner()
        from credly_connector.cli.app import app

        assert runner.invoke(app, ["setup"], env=env).exit_code == 0
        result = runner.invoke(app, ["explain-user", "joni.sherman@contoso.com", "--json"], env=env)
        import json

        document = json.loads(result.stdout)
        badges = _badge_result(document)
        assert badges["cause"] == "no_badges"
        assert badges["evidence"]["near_miss_search"]["search_complete"] is False
        assert "limited" in badges["fix"] and "credlyctl sync" in badges["fix"]


# -- a generated tenant: every kind, and nobody else ---------------------------------------


def _pick(scenario: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """One (work address, badge address) per kind, for users whose only badge is that one."""
    users = {u["mail"].split("@")[0]: u for u in scenario["entra"]["users"]}
    badges = scenario["credly"]["organizations"][0]["badges"]
    per_user: dict[str, list[str]] = {}
    for badge in badges:
        per_user.setdefault(badge["issued_to"], []).append(badge["recipient_email"])
    picked: dict[str, tuple[str, str]] = {}
    for badge in badges:
        address = badge["recipient_email"]
        local, domain = address.split("@")
        if domain == "gmail.example":
            kind = "personal"
        elif domain == OTHER_ORGANIZATION_DOMAIN:
            kind = "other_organization"
        elif domain == "contoso.com" and local not in users and not local.startswith("former"):
            kind = "work"
        else:
            continue
        owner = next(
            (
                u
                for u in users.values()
                if u["displayName"] == badge["issued_to"]
                and _resembles(u["mail"].split("@")[0], local)
            ),
            None,
        )
        if owner is None or owner["userType"] != "Member" or kind in picked:
            continue
        picked[kind] = (owner["mail"], address)
    return picked


def _resembles(work_local: str, local: str) -> bool:
    if work_local == local:
        return True
    return len(work_local) == len(local) + 1 and any(
        work_local[:i] + work_local[i + 1 :] == local for i in range(len(work_local))
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Tenant, dict[str, Any]]]:
    scenario = generate(300, 900, seed=11)
    folder = tmp_path_factory.mktemp("generated")
    with start_simulator(scenario, copy=False) as sim:
        config = sim.write_config(folder / "c.toml", state_dir=folder / "state")
        tenant = Tenant(sim, config, CliRunner())
        for step in (("setup",), ("sync",)):
            result = tenant.invoke(*step)
            assert result.exit_code in (0, 1), (step, result.stdout, result.stderr)
        yield tenant, scenario


def test_generated_tenant_every_kind_is_named_with_its_fix(
    generated: tuple[Tenant, dict[str, Any]],
) -> None:
    tenant, scenario = generated
    picked = _pick(scenario)
    assert set(picked) == {"personal", "work", "other_organization"}, picked
    for kind, (work, address) in picked.items():
        _, document = tenant.json("explain-user", work)
        found = {c["address"]: c for c in _candidates(document)}
        assert address in found, (kind, work, address, found)
        assert found[address]["kind"] == kind
        result = _badge_result(document)
        assert result["cause"] == "email_mismatch"
        assert address in result["explanation"] and work in result["fix"]


def test_generated_tenant_people_without_such_a_badge_get_no_candidate(
    generated: tuple[Tenant, dict[str, Any]],
) -> None:
    tenant, scenario = generated
    badges = scenario["credly"]["organizations"][0]["badges"]
    theirs = {b["issued_to"] for b in badges}
    clean = [
        u["mail"]
        for u in scenario["entra"]["users"]
        if u["displayName"] not in theirs and u["userType"] == "Member"
    ][:3]
    assert clean
    for work in clean:
        _, document = tenant.json("explain-user", work)
        assert _candidates(document) == [], work


def test_the_next_command_follows_the_first_cause() -> None:
    from credly_connector.diagnostics.explain import Cause, Diagnosis, next_command
    from credly_connector.exit_codes import ExitCode

    def first(cause: str, email: str | None = "a@contoso.com") -> str | None:
        return next_command(Diagnosis(email, [], [Cause(cause, None)], ExitCode.PROBLEMS))

    assert first("config_invalid") == "credlyctl validate-config"
    assert first("profile_source_missing", None) == "credlyctl setup"
    assert first("email_mismatch") == "credlyctl sync --user a@contoso.com"
    assert first("no_completed_crawl") == "credlyctl sync --full"
    assert next_command(Diagnosis("a@contoso.com", [], [], ExitCode.OK)) is None
