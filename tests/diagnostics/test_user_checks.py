"""User checks with fake clients: each check passing and failing, one fact at a time."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from credly_connector.credly.models import Badge
from credly_connector.diagnostics import registry
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.explain import explain_user
from credly_connector.diagnostics.user_lookup import person_addresses
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.entities import item_body, item_id
from credly_connector.identity.near_miss import edit_distance
from credly_connector.sync.state import open_state, state_path
from tests.diagnostics.helpers_settings import TENANT_ID, make_settings

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
EXCHANGE = [{"service": "exchange", "capabilityStatus": "Enabled"}]
SOURCE_URL = "https://graph.microsoft.com/v1.0/admin/people/profileSources(sourceId='{}')"


def user(upn: str, *aliases: str, **fields: Any) -> DirectoryUser:
    data: dict[str, Any] = {
        "id": f"0000000{len(upn) % 10}-1111-2222-3333-{abs(hash(upn)) % 10**12:012d}",
        "userPrincipalName": upn,
        "displayName": upn.split("@")[0].replace(".", " ").title(),
        "mail": upn,
        "proxyAddresses": [f"SMTP:{upn}", *(f"smtp:{a}" for a in aliases)],
        "accountEnabled": True,
        "assignedLicenses": [{"skuId": "e3"}],
    }
    data.update(fields)
    return DirectoryUser.from_graph(data)


def badge(badge_id: str, email: str, **fields: Any) -> Badge:
    data: dict[str, Any] = {
        "id": badge_id,
        "state": "accepted",
        "public": True,
        "recipient_email": email,
        "issued_to": "Ann Lee",
        "accepted_at": "2026-10-01T00:00:00Z",
        "badge_url": f"https://www.credly.com/badges/{badge_id}",
        "badge_template": {"name": f"Badge {badge_id}", "type_category": "Certification"},
    }
    data.update(fields)
    return Badge.from_api(data)


class FakeGraph:
    def __init__(self, users: list[DirectoryUser]) -> None:
        self.users = users
        self.plans: dict[str, list[dict[str, Any]]] = {u.id: EXCHANGE for u in users}
        self.items: dict[str, dict[str, Any]] = {}
        self.connection: dict[str, Any] | None = {
            "id": "credlybadges",
            "state": "ready",
            "contentCategory": "people",
        }
        self.sources = [{"sourceId": "credlybadges"}, {"sourceId": "entra", "kind": "MSEntra"}]
        self.urls = [SOURCE_URL.format("credlybadges"), SOURCE_URL.format("entra")]

    def find_users_by_addresses(self, addresses: list[str]) -> list[DirectoryUser]:
        wanted = {a.lower() for a in addresses}

        def forms(u: DirectoryUser) -> set[str]:
            return {u.user_principal_name.lower(), (u.mail or "").lower()} | {
                p.split(":", 1)[1].lower() for p in u.proxy_addresses
            }

        return [u for u in self.users if forms(u) & wanted]

    def search_users_by_name(self, name: str, *, limit: int = 25) -> list[DirectoryUser]:
        return [u for u in self.users if (u.display_name or "").startswith(name)][:limit]

    def iter_users(self) -> list[DirectoryUser]:
        return list(self.users)

    def get_user_plans(self, user_id: str) -> list[dict[str, Any]] | None:
        return self.plans.get(user_id)

    def get_item(self, connection_id: str, item: str) -> dict[str, Any] | None:
        return self.items.get(item)

    def get_connection(self, connection_id: str) -> dict[str, Any] | None:
        return self.connection

    def list_profile_sources(self) -> list[dict[str, Any]]:
        return self.sources

    def get_profile_property_settings(self) -> list[dict[str, Any]]:
        return [{"id": "1", "name": None, "prioritizedSourceUrls": self.urls}]


class FakeCredly:
    """Filters recipient_email case-sensitively: the worst case Credly could be."""

    def __init__(self, badges: list[Badge]) -> None:
        self.badges = badges

    def iter_badges(self, *, recipient_email: str | None = None) -> list[Badge]:
        if recipient_email is None:
            return list(self.badges)
        return [b for b in self.badges if b.recipient_email == recipient_email]

    def list_organizations(self) -> list[Any]:
        return []


class World:
    def __init__(self, tmp_path: Path, users: list[DirectoryUser], badges: list[Badge]) -> None:
        self.settings = make_settings(tmp_path)
        self.graph = FakeGraph(users)
        self.credly = FakeCredly(badges)

    def crawl(self, when: datetime, written: dict[DirectoryUser, list[Badge]]) -> None:
        """Record a completed full crawl at `when` that wrote these users' items."""
        settings = self.settings
        state = open_state(state_path(settings.sync.state_dir, settings.name), settings.name)
        try:
            crawl = state.begin_crawl("full", now=when)
            for person, badges in written.items():
                self.graph.items[item_id(person.id)] = item_body(person, badges, TENANT_ID)
                state.mark_intents([(item_id(person.id), person.id, "put", None)])
                state.record_results(crawl, [(item_id(person.id), "h")], [], [], now=when)
            state.finish_crawl(crawl, "succeeded", {}, [], now=when + timedelta(minutes=1))
        finally:
            state.close()

    def context(self) -> DiagnosticContext:
        return DiagnosticContext(
            self.settings,
            now=NOW,
            credly_factory=lambda s: self.credly,
            tokens_factory=lambda s: object(),
            graph_factory=lambda s, t: self.graph,
        )

    def explain(self, email: str) -> tuple[int, dict[str, str], list[Any]]:
        diagnosis = explain_user(self.context(), email)
        statuses = {r.check_id: str(r.status) for r in diagnosis.results}
        return int(diagnosis.exit_code), statuses, [c.id for c in diagnosis.causes]


ANN = user("ann.lee@contoso.com", "ann@contoso.com")


@pytest.fixture
def world(tmp_path: Path) -> World:
    healthy = badge("b1", "ann.lee@contoso.com")
    found = World(tmp_path, [ANN, user("bob.ray@contoso.com")], [healthy])
    found.crawl(NOW - timedelta(hours=12), {ANN: [healthy]})
    return found


def test_healthy_person_passes_every_check(world: World) -> None:
    code, statuses, causes = world.explain("ann.lee@contoso.com")
    assert (code, causes) == (0, [])
    assert statuses == {
        "user.identity": "ok",
        "user.account": "ok",
        "user.badges": "ok",
        "user.connection": "ok",
        "user.synced": "ok",
        "user.notes": "note",
    }


def test_identity_fails_for_an_alias_and_dependants_skip(world: World) -> None:
    code, statuses, causes = world.explain("ann@contoso.com")
    assert causes == ["email_secondary_alias"] and code == 1
    assert statuses["user.account"] == statuses["user.synced"] == "skipped"


def test_identity_fails_for_several_users(world: World) -> None:
    world.graph.users.append(
        user("twin@contoso.com", mail="x@contoso.com", proxyAddresses=["SMTP:ann.lee@contoso.com"])
    )
    assert world.explain("ann.lee@contoso.com")[2] == ["email_several_users"]


def test_identity_suggests_a_close_spelling(world: World) -> None:
    code, _, causes = world.explain("ann.le@contoso.com")
    assert causes == ["email_no_user", "no_badges"] and code == 1
    ctx = DiagnosticContext(
        world.settings,
        now=NOW,
        graph_factory=lambda s, t: world.graph,
        credly_factory=lambda s: world.credly,
        tokens_factory=lambda s: object(),
    )
    result = next(r for r in explain_user(ctx, "ann.le@contoso.com").results)
    suggestions = result.evidence["suggestions"]
    assert [(s["userPrincipalName"], s["reason"]) for s in suggestions] == [
        ("ann.lee@contoso.com", "close spelling")
    ]
    assert "ann.lee@contoso.com" in result.fix


def test_identity_suggests_the_same_local_part_in_another_domain(world: World) -> None:
    world.graph.users.append(user("carl@fabrikam.com"))
    ctx = DiagnosticContext(
        world.settings,
        now=NOW,
        graph_factory=lambda s, t: world.graph,
        credly_factory=lambda s: world.credly,
        tokens_factory=lambda s: object(),
    )
    result = explain_user(ctx, "carl@contoso.com").results[0]
    assert result.evidence["suggestions"][0]["reason"] == "same local part"
    assert "fabrikam.com" in result.evidence["tenant_domains"]


def test_account_fails_without_a_mailbox_only_when_licensed(world: World) -> None:
    world.graph.plans[ANN.id] = []
    assert world.explain("ann.lee@contoso.com")[2] == ["user_no_mailbox"]
    unlicensed = dataclasses.replace(ANN, license_count=0)
    world.graph.users[0] = unlicensed
    assert world.explain("ann.lee@contoso.com")[2] == ["user_unlicensed"]


def test_opted_out_person_is_a_cause(world: World) -> None:
    world.settings = dataclasses.replace(
        world.settings,
        sync=dataclasses.replace(world.settings.sync, opt_out=frozenset({"ann@contoso.com"})),
    )
    assert world.explain("ann.lee@contoso.com")[2] == ["user_opted_out"]


def test_badge_to_an_alias_of_the_person_is_explained(world: World) -> None:
    world.credly.badges.append(badge("b2", "ann@contoso.com"))
    code, statuses, causes = world.explain("ann.lee@contoso.com")
    assert (code, causes) == (1, ["email_badge_to_other_address"])
    assert statuses["user.badges"] == "fail"


def test_mixed_case_recipient_is_found_despite_a_case_sensitive_filter(world: World) -> None:
    # Nothing comes back for the spellings the directory holds: the organization is scanned.
    world.credly.badges[0] = badge("b1", "Ann.Lee@Contoso.com", public=False)
    assert world.explain("ann.lee@contoso.com")[2] == ["badge_private"]


def test_connection_not_ready_and_profile_source_not_first(world: World) -> None:
    world.graph.urls.reverse()
    assert world.explain("ann.lee@contoso.com")[2] == ["profile_source_behind_entra"]
    world.graph.urls.reverse()
    world.graph.sources = world.graph.sources[1:]
    assert world.explain("ann.lee@contoso.com")[2] == ["profile_source_missing"]
    world.graph.connection = {"id": "credlybadges", "state": "draft", "contentCategory": "people"}
    assert world.explain("ann.lee@contoso.com")[2] == ["connection_draft"]


def test_synced_fails_before_any_crawl(tmp_path: Path) -> None:
    fresh = World(tmp_path, [ANN], [badge("b1", "ann.lee@contoso.com")])
    assert fresh.explain("ann.lee@contoso.com")[2] == ["no_completed_crawl"]


def test_synced_fails_when_the_badge_is_newer_than_the_crawl(world: World) -> None:
    late = badge("b9", "ann.lee@contoso.com", accepted_at=(NOW - timedelta(hours=1)).isoformat())
    world.credly.badges.append(late)
    assert world.explain("ann.lee@contoso.com")[2] == ["not_synced_yet"]


def test_synced_fails_when_the_item_lacks_an_old_badge(world: World) -> None:
    world.graph.items.clear()
    assert world.explain("ann.lee@contoso.com")[2] == ["not_synced_yet"]


def test_synced_warns_when_the_item_holds_a_badge_it_should_not(world: World) -> None:
    world.credly.badges[0] = badge("b1", "ann.lee@contoso.com", state="revoked")
    world.credly.badges.append(badge("b5", "ann.lee@contoso.com"))
    world.graph.items[item_id(ANN.id)] = item_body(
        ANN, [badge("b1", "ann.lee@contoso.com"), badge("b5", "ann.lee@contoso.com")], TENANT_ID
    )
    _, statuses, causes = world.explain("ann.lee@contoso.com")
    assert causes == ["badge_revoked"]
    assert statuses["user.synced"] == "warn"


def test_every_user_check_is_registered_with_a_row() -> None:
    ids = [c.id for c in registry.all_checks("user")]
    assert ids == [
        "user.identity",
        "user.account",
        "user.badges",
        "user.connection",
        "user.synced",
        "user.notes",
    ]


def test_addresses_include_directory_forms_and_lower_case() -> None:
    from credly_connector.diagnostics.user_lookup import Identity, IdentityStatus

    mixed = user("Ann.Lee@Contoso.com", "ann@contoso.com")
    ident = Identity("ANN.LEE@contoso.com", IdentityStatus.MATCHED, mixed)
    forms = person_addresses(ident)
    assert forms[:2] == ["ANN.LEE@contoso.com", "ann.lee@contoso.com"]
    assert "Ann.Lee@Contoso.com" in forms and "ann@contoso.com" in forms


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("ann", "ann", 0), ("ann", "anne", 1), ("grahm", "graham", 1), ("abc", "xyz", 3)],
)
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b, limit=3) == distance


def test_no_badges_says_when_other_organizations_could_not_be_listed(world: World) -> None:
    def refuse() -> list[Any]:
        raise RuntimeError("forbidden")

    world.credly.list_organizations = refuse  # type: ignore[method-assign]
    diagnosis = explain_user(world.context(), "bob.ray@contoso.com")
    [result] = [r for r in diagnosis.results if r.check_id == "user.badges"]
    assert result.cause == "no_badges"
    assert "cannot list the Credly organizations" in result.explanation
    assert result.evidence["sources"]["organizations_listed"] is False
    # A crawl without recorded unmatched badges: the near-miss search says it was limited.
    assert result.evidence["near_miss_search"]["search_complete"] is False
    assert "limited" in result.fix


def test_an_unreadable_state_does_not_stop_the_diagnosis(world: World) -> None:
    settings = world.settings
    state_path(settings.sync.state_dir, settings.name).write_bytes(b"not a database" * 100)
    _, statuses, _ = world.explain("ann.lee@contoso.com")
    # The badges are still read from Credly; only what the state knows is missing.
    assert statuses["user.identity"] == "ok" and statuses["user.account"] == "ok"
    assert statuses["user.badges"] == "ok"
