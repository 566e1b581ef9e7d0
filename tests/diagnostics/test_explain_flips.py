"""Changing one fact in the simulator changes the verdict with it (and a sync fixes it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.diagnostics.explain_support import Tenant, synced_tenant, user_expectations

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    # One tenant for the module: each test changes facts of a different person only.
    yield from synced_tenant(tmp_path_factory.mktemp("flips"))


def _causes(tenant: Tenant, email: str) -> tuple[int, list[str]]:
    code, document = tenant.json("explain-user", email)
    return code, [c["id"] for c in document["causes"]]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_badge_accepted_after_the_last_crawl_is_not_synced_yet(tenant: Tenant) -> None:
    megan = next(u for u in user_expectations() if "arrange_after_first_full_sync" in u)
    assert _causes(tenant, megan["email"]) == (1, megan["causes"])
    arrange = megan["arrange_after_first_full_sync"]["update_badge"]
    fields = {k: (_now() if v == "<now>" else v) for k, v in arrange["fields"].items()}
    tenant.sim.update_badge(arrange["badge_id"], **fields)
    assert _causes(tenant, megan["email"]) == (1, megan["causes_after_arrange"])
    result = tenant.invoke("explain-user", megan["email"])
    assert f"credlyctl sync --user {megan['email']}" in result.stdout
    assert tenant.invoke("sync", "--user", megan["email"]).exit_code == 0
    assert _causes(tenant, megan["email"]) == (0, [])


def test_enabling_a_disabled_account_flips_the_verdict(tenant: Tenant) -> None:
    assert _causes(tenant, "lee.gu@contoso.com") == (1, ["user_disabled"])
    tenant.sim.update_user("lee.gu@contoso.com", accountEnabled=True)
    assert _causes(tenant, "lee.gu@contoso.com") == (1, ["not_synced_yet"])
    assert tenant.invoke("sync", "--user", "lee.gu@contoso.com").exit_code == 0
    assert _causes(tenant, "lee.gu@contoso.com") == (0, [])


def test_a_healthy_user_losing_the_license_flips_the_verdict(tenant: Tenant) -> None:
    assert _causes(tenant, "alex.wilber@contoso.com") == (0, [])
    tenant.sim.update_user("alex.wilber@contoso.com", assignedLicenses=[])
    assert _causes(tenant, "alex.wilber@contoso.com") == (1, ["user_unlicensed"])


def test_making_a_private_badge_public_flips_the_verdict(tenant: Tenant) -> None:
    isaiah = "isaiah.langer@contoso.com"
    badge = next(b for b in tenant.sim.badges(tenant_org(tenant)) if b["recipient_email"] == isaiah)
    assert _causes(tenant, isaiah) == (1, ["badge_private"])
    tenant.sim.update_badge(badge["id"], public=True, updated_at=_now())
    assert _causes(tenant, isaiah) == (1, ["not_synced_yet"])


def test_removing_the_alias_turns_it_into_an_unknown_address(tenant: Tenant) -> None:
    tenant.sim.update_user(
        "adele.vance@contoso.com", proxyAddresses=["SMTP:adele.vance@contoso.com"]
    )
    assert _causes(tenant, "adele@contoso.com") == (1, ["email_no_user"])


def test_case_sensitive_credly_filter_still_finds_the_badge(tenant: Tenant) -> None:
    # Credly does not document whether recipient_email filtering ignores case.
    tenant.sim.set_switches(recipient_email_filter_case_sensitive=True)
    try:
        assert _causes(tenant, "christie.cline@contoso.com") == (0, [])
    finally:
        tenant.sim.set_switches(recipient_email_filter_case_sensitive=False)


def tenant_org(tenant: Tenant) -> str:
    return str(tenant.sim.scenario["connector"]["org_id"])
