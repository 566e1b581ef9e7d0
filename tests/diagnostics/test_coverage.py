"""coverage: the funnel, per-cause counts, unmatched emails and stale users."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from credly_connector.credly.models import Badge
from credly_connector.diagnostics.coverage import STAGES, build_report
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.outcome import Mailbox
from credly_connector.sync.records import ItemRecord
from tests.diagnostics.explain_support import Tenant, synced_tenant, user_expectations

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
# Causes coverage counts per badge, with explain-user's ids (mailboxes included: one listing).
BADGE_LEVEL = {
    "user_no_mailbox",
    "badge_pending",
    "badge_rejected",
    "badge_revoked",
    "badge_private",
    "badge_expired",
    "email_no_user",
    "email_secondary_alias",
    "user_disabled",
    "user_unlicensed",
}


def _badge(badge_id: str, email: str, **fields: object) -> Badge:
    data: dict[str, object] = {
        "id": badge_id,
        "state": "accepted",
        "public": True,
        "recipient_email": email,
        "accepted_at": "2026-10-01T00:00:00Z",
        "badge_template": {"name": f"Badge {badge_id}"},
    }
    data.update(fields)
    return Badge.from_api(data)


def _user(upn: str, *aliases: str, **fields: object) -> DirectoryUser:
    data: dict[str, object] = {
        "id": f"00000000-0000-0000-0000-{abs(hash(upn)) % 10**12:012d}",
        "userPrincipalName": upn,
        "displayName": upn.split("@")[0].replace(".", " ").title(),
        "proxyAddresses": [f"SMTP:{upn}", *(f"smtp:{a}" for a in aliases)],
        "accountEnabled": True,
        "assignedLicenses": [{"skuId": "x"}],
    }
    data.update(fields)
    return DirectoryUser.from_graph(data)


def _mailboxes(*users: DirectoryUser) -> dict[str, Mailbox]:
    return {u.id: Mailbox(True, "test") for u in users}


def _item(user: DirectoryUser, written: datetime) -> ItemRecord:
    return ItemRecord(
        item_id=user.id.replace("-", ""),
        user_id=user.id,
        upn=user.user_principal_name,
        hash="h",
        intent=None,
        last_write=written,
        last_error=None,
        written_crawl=1,
    )


def test_funnel_counts_each_badge_at_its_first_failing_stage() -> None:
    ann, bob = _user("ann@contoso.com", "a@contoso.com"), _user("bob@contoso.com")
    off = _user("off@contoso.com", accountEnabled=False)
    badges = [
        _badge("1", "ann@contoso.com"),
        _badge("2", "ann@contoso.com", state="pending", public=False),
        _badge("3", "bob@contoso.com", public=False),
        _badge("4", "bob@contoso.com", expires_at="2026-01-01T00:00:00Z"),
        _badge("5", "a@contoso.com"),
        _badge("6", "bbo@contoso.com"),
        _badge("7", "off@contoso.com"),
        _badge("8", "bob@contoso.com", accepted_at="2026-11-28T11:00:00Z"),
    ]
    items = {"ann": _item(ann, NOW - timedelta(days=1)), "bob": _item(bob, NOW - timedelta(days=1))}
    report = build_report(
        org_id="o",
        badges=badges,
        users=[ann, bob, off],
        items=items,
        now=NOW,
        mailboxes=_mailboxes(ann, bob, off),
    )
    assert [report.funnel[s] for s in STAGES] == [8, 7, 6, 5, 3, 2, 2, 1]
    assert report.causes == {
        "badge_expired": 1,
        "badge_pending": 1,
        "badge_private": 1,
        "email_no_user": 1,
        "email_secondary_alias": 1,
        "not_synced_yet": 1,
        "user_disabled": 1,
    }
    closest = {u.email: (u.suggestion, u.reason) for u in report.unmatched}
    assert closest == {
        "a@contoso.com": ("ann@contoso.com", "secondary alias"),
        "bbo@contoso.com": ("bob@contoso.com", "close spelling"),
    }
    assert [(s.user_principal_name, s.reason) for s in report.stale] == [
        ("bob@contoso.com", "badge changed after the last write")
    ]


def test_item_of_a_user_who_no_longer_qualifies_is_stale() -> None:
    gone = _user("gone@contoso.com")
    report = build_report(
        org_id="o",
        badges=[_badge("1", "gone@contoso.com", state="revoked")],
        users=[gone],
        items={"x": _item(gone, NOW)},
        now=NOW,
    )
    assert [(s.user_principal_name, s.reason) for s in report.stale] == [
        ("gone@contoso.com", "item to delete")
    ]


def test_without_state_nothing_is_synced() -> None:
    ann = _user("ann@contoso.com")
    report = build_report(
        org_id="o",
        badges=[_badge("1", "ann@contoso.com")],
        users=[ann],
        items=None,
        now=NOW,
        mailboxes=_mailboxes(ann),
    )
    assert report.funnel["synced"] == 0 and not report.state_found
    assert report.stale[0].reason == "item missing"


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    yield from synced_tenant(tmp_path_factory.mktemp("coverage"))


@pytest.mark.integration
def test_demo_counts_match_the_recorded_user_problems(tenant: Tenant) -> None:
    code, document = tenant.json("coverage")
    assert code == 0
    counts = {c["cause"]: c["badges"] for c in document["causes"]}
    recorded = Counter(c for u in user_expectations() for c in u["causes"] if c in BADGE_LEVEL)
    assert {c: n for c, n in counts.items() if c in BADGE_LEVEL} == dict(recorded)
    funnel = [f["badges"] for f in document["funnel"]]
    assert funnel == sorted(funnel, reverse=True)
    assert funnel[-1] == funnel[-2]  # right after a full sync every eligible badge is synced
    assert document["stale_users"] == []
    suggested = {u["email"]: u["closest_user"] for u in document["unmatched_emails"]}
    for user in user_expectations():
        if user.get("suggest"):
            assert suggested[user["email"]] == user["suggest"]


@pytest.mark.integration
def test_a_badge_accepted_after_the_crawl_shows_as_stale(tenant: Tenant) -> None:
    megan = next(u for u in user_expectations() if "arrange_after_first_full_sync" in u)
    arrange = megan["arrange_after_first_full_sync"]["update_badge"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    fields = {k: (now if v == "<now>" else v) for k, v in arrange["fields"].items()}
    tenant.sim.update_badge(arrange["badge_id"], **fields)
    _, document = tenant.json("coverage")
    assert {c["cause"]: c["badges"] for c in document["causes"]}["not_synced_yet"] == 1
    assert [s["userPrincipalName"] for s in document["stale_users"]] == [megan["user"]]


@pytest.mark.integration
def test_markdown_and_csv_formats(tenant: Tenant) -> None:
    markdown = tenant.invoke("coverage", "--format", "markdown")
    assert markdown.exit_code == 0
    assert "| stage | badges |" in markdown.stdout
    table = tenant.invoke("coverage", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    _, document = tenant.json("coverage")
    assert len(rows) == document["funnel"][0]["badges"]
    assert {r["reached"] for r in rows} <= set(STAGES)
    both = tenant.invoke("coverage", "--json", "--format", "csv")
    assert both.exit_code == 2


@pytest.mark.integration
def test_coverage_and_explain_user_give_one_answer_per_person(tenant: Tenant) -> None:
    """Every person of the demo: coverage's classification equals explain-user's verdict."""
    _, document = tenant.json("coverage")
    assert document["mailbox_check"]["status"] == "checked"
    people = {p["email"]: p for p in document["people"]}
    recorded = {u["email"].lower() for u in user_expectations()}
    assert recorded - people.keys() <= {
        u["email"].lower()
        for u in user_expectations()
        if {"badge_in_other_organization", "no_badges"} & set(u["causes"])
    }
    mismatches = []
    for email, person in sorted(people.items()):
        _, explained = tenant.json("explain-user", person["user"] or email)
        verdict = "visible" if explained["verdict"] == "visible" else "not_visible"
        causes = {c["id"] for c in explained["causes"]}
        if verdict != person["verdict"] or not set(person["causes"]) <= causes:
            mismatches.append((email, person, explained["verdict"], sorted(causes)))
    assert mismatches == []
