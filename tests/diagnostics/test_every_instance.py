"""diagnose EMAIL and explain-user look in every configured instance unless --instance narrows.

The demo scenario has two Credly organizations; the configuration has one instance for each
(`demo`, set up and synced, and `research`). Nestor Wilke's badge is in the research one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.diagnostics.explain_support import Tenant, synced_tenant

pytestmark = pytest.mark.integration

NESTOR = "nestor.wilke@contoso.com"


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    yield from synced_tenant(tmp_path_factory.mktemp("instances"))


def _badges_evidence(document: dict[str, Any]) -> dict[str, Any]:
    result = next(r for r in document["results"] if r["check_id"] == "user.badges")
    return dict(result["evidence"])


def test_a_badge_in_the_other_instance_names_it_and_says_it_is_not_synced(
    tenant: Tenant,
) -> None:
    for command in ("diagnose", "explain-user"):
        code, document = tenant.json(command, NESTOR)
        assert code == 1
        assert [c["id"] for c in document["causes"]] == ["badge_in_other_organization"]
        evidence = _badges_evidence(document)
        [other] = evidence["other_organizations"]
        assert other["instance"] == "research"
        assert [b["sync"] for b in other["badges"]] == ["not_synced_yet"]
        assert evidence["sources"]["instances"] == ["research"]
        fix = document["causes"][0]["fixes"][0]
        assert "credlyctl sync --instance research" in fix


def test_instance_option_narrows_the_search(tenant: Tenant) -> None:
    _, document = tenant.json("diagnose", NESTOR, "--instance", "demo")
    evidence = _badges_evidence(document)
    assert evidence["sources"]["narrowed_to_one_instance"] is True
    assert evidence["sources"]["instances"] == []
    assert evidence["other_organizations"] == []
    assert [c["id"] for c in document["causes"]] == ["no_badges"]


def test_badges_of_both_organizations_once_the_other_instance_has_synced(
    tenant: Tenant,
) -> None:
    for step in (("setup", "--instance", "research"), ("sync", "--instance", "research")):
        result = tenant.invoke(*step)
        assert result.exit_code in (0, 1), (step, result.stdout, result.stderr)
    _, document = tenant.json("diagnose", NESTOR)
    evidence = _badges_evidence(document)
    [other] = evidence["other_organizations"]
    assert [b["sync"] for b in other["badges"]] == ["synced"]
    assert "badge_in_other_organization" not in [c["id"] for c in document["causes"]]
    result = next(r for r in document["results"] if r["check_id"] == "user.badges")
    assert result["status"] == "ok" and "research" in result["explanation"]
    # A person with badges in the demo organization: the research one is searched as well.
    _, alex = tenant.json("diagnose", "alex.wilber@contoso.com")
    searched = _badges_evidence(alex)["near_miss_search"]["searched"]
    assert {s["instance"] for s in searched} == {"demo", "research"}
