"""explain-user against the synced demo tenant: the exact causes, per recorded expectation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.diagnostics.explain_support import (
    Tenant,
    human_causes,
    synced_tenant,
    user_expectations,
)

pytestmark = pytest.mark.integration

USERS = user_expectations()


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    yield from synced_tenant(tmp_path_factory.mktemp("explain"))


def _expected_exit(expected: dict[str, Any]) -> int:
    return 1 if expected["causes"] else 0


@pytest.mark.parametrize("expected", USERS, ids=[u["email"] for u in USERS])
def test_json_causes_match_the_recorded_expectation(
    tenant: Tenant, expected: dict[str, Any]
) -> None:
    code, document = tenant.json("explain-user", expected["email"])
    causes = [c["id"] for c in document["causes"]]
    assert set(causes) == set(expected["causes"]), document["results"]
    assert len(causes) == len(set(causes))
    assert code == _expected_exit(expected)
    assert document["verdict"] == ("causes-found" if expected["causes"] else "visible")


@pytest.mark.parametrize("expected", USERS, ids=[u["email"] for u in USERS])
def test_human_causes_match_the_recorded_expectation(
    tenant: Tenant, expected: dict[str, Any]
) -> None:
    result = tenant.invoke("explain-user", expected["email"])
    assert human_causes(result.stdout) == set(expected["causes"]), result.stdout
    assert result.exit_code == _expected_exit(expected)
    assert "Traceback" not in result.stdout + result.stderr
    if not expected["causes"]:
        assert "should be visible" in result.stdout


def _result(document: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(r for r in document["results"] if r["check_id"] == check_id)


def test_case_only_difference_is_said_and_still_matches(tenant: Tenant) -> None:
    code, document = tenant.json("explain-user", "Christie.Cline@Contoso.com")
    identity = _result(document, "user.identity")
    assert code == 0
    assert identity["evidence"]["case_only_difference"] is True
    assert "only in letter case" in identity["explanation"]


def test_primary_smtp_match_is_named(tenant: Tenant) -> None:
    _, document = tenant.json("explain-user", "diego.siciliani@contoso.com")
    identity = _result(document, "user.identity")
    assert identity["evidence"]["matched_by"] == "primarySmtp"
    assert "dsiciliani@contoso.com" in identity["explanation"]


def test_secondary_alias_names_the_user_and_upn(tenant: Tenant) -> None:
    _, document = tenant.json("explain-user", "adele@contoso.com")
    identity = _result(document, "user.identity")
    assert "Adele Vance" in identity["explanation"]
    assert "adele.vance@contoso.com" in identity["explanation"]


@pytest.mark.parametrize(
    "expected", [u for u in USERS if u.get("suggest")], ids=lambda u: u["email"]
)
def test_no_user_suggests_the_closest_user(tenant: Tenant, expected: dict[str, Any]) -> None:
    _, document = tenant.json("explain-user", expected["email"])
    identity = _result(document, "user.identity")
    suggested = [s["userPrincipalName"] for s in identity["evidence"]["suggestions"]]
    assert suggested[:1] == [expected["suggest"]]
    assert expected["suggest"] in identity["fix"]


def test_former_employee_gets_no_suggestion(tenant: Tenant) -> None:
    _, document = tenant.json("explain-user", "jordan.baker@contoso.com")
    assert _result(document, "user.identity")["evidence"]["suggestions"] == []


def test_healthy_user_gets_the_expected_behaviour_notes(tenant: Tenant) -> None:
    _, document = tenant.json("explain-user", "alex.wilber@contoso.com")
    notes = [r for r in document["results"] if r["status"] == "note"]
    assert any(r["cause"] == "copilot_cites_office_com" for r in notes)
    assert any("1 award(s) and 1 certification(s)" in r["explanation"] for r in notes)
    assert document["causes"] == []


def test_badge_issued_to_an_alias_of_a_matched_user_is_explained(tenant: Tenant) -> None:
    # Adele's badge went to her alias; asked by her UPN, the badge is found and explained.
    code, document = tenant.json("explain-user", "adele.vance@contoso.com")
    assert [c["id"] for c in document["causes"]] == ["email_badge_to_other_address"]
    assert "adele@contoso.com" in document["causes"][0]["explanations"][0]
    assert code == 1


def test_unknown_user_config_error_exits_2(tmp_path: Path, tenant: Tenant) -> None:
    result = tenant.runner.invoke(
        __import__("credly_connector.cli.app", fromlist=["app"]).app,
        ["explain-user", "x@contoso.com"],
        env={"CREDLYCTL_CONFIG": str(tmp_path / "missing.toml")},
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert "Hint: " in result.stderr
