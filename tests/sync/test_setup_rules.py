"""Pure parts of setup and scheduling: source ordering, schema comparison, due crawls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credly_connector.config.resolved import SyncSettings
from credly_connector.errors import UsageError
from credly_connector.sync.connection import require_ready
from credly_connector.sync.schedule import schedule_for
from credly_connector.sync.schema import SCHEMA_PROPERTIES, schema_body, schema_differences
from credly_connector.sync.setup import insert_source, org_page_url, source_id_of
from credly_connector.sync.snapshot import apply_delta, from_snapshot, to_snapshot
from credly_connector.sync.state import open_state
from tests.identity.factories import user

ROOT = "https://graph.microsoft.com/v1.0/admin/people/profileSources"


def url(source: str, root: str = ROOT) -> str:
    return f"{root}(sourceId='{source}')"


ENTRA = url("4ce763dd-9214-4eff-af7c-da491cc3782d")
OTHER = url("MicrosoftCredly")


def test_new_source_goes_first_when_no_credlyctl_source_exists() -> None:
    assert insert_source([ENTRA, OTHER], url("a"), "a", set()) == [url("a"), ENTRA, OTHER]


def test_new_instance_goes_after_existing_credlyctl_instances_at_the_front() -> None:
    urls = [url("a"), url("b"), ENTRA, OTHER]
    assert insert_source(urls, url("c"), "c", {"a", "b"}) == [
        url("a"),
        url("b"),
        url("c"),
        ENTRA,
        OTHER,
    ]


def test_instance_already_ahead_of_foreign_sources_does_not_move() -> None:
    urls = [url("b"), url("a"), ENTRA]
    assert insert_source(urls, url("a"), "a", {"a", "b"}) == urls


def test_instance_behind_a_foreign_source_moves_ahead_of_it_keeping_all_entries() -> None:
    urls = [ENTRA, url("a"), "https://example.invalid/legacy"]
    assert insert_source(urls, url("a"), "a", {"a"}) == [
        url("a"),
        ENTRA,
        "https://example.invalid/legacy",
    ]


def test_our_source_in_another_url_form_is_not_duplicated() -> None:
    beta = url("a", "https://graph.microsoft.com/beta/admin/people/profileSources")
    assert insert_source([beta, ENTRA], url("a"), "a", set()) == [beta, ENTRA]
    assert source_id_of(beta) == "a"
    assert source_id_of("https://login.microsoftonline.com") is None


def test_schema_comparison_names_each_difference() -> None:
    assert schema_differences(schema_body()) == []
    flags = {"properties": [{**p, "isSearchable": True} for p in SCHEMA_PROPERTIES]}
    assert schema_differences(flags) == []  # search flags are ignored for people data
    other = {
        "properties": [
            {"name": "account", "type": "string", "labels": ["personAccount"]},
            {"name": "awards", "type": "string", "labels": []},
            {"name": "colour", "type": "string"},
        ]
    }
    assert schema_differences(other) == [
        "property 'awards' is string labelled [], expected stringcollection labelled "
        "['personAwards']",
        "property 'certifications' is missing",
        "property 'colour' is not part of credlyctl's schema",
    ]


class FakeGraph:
    def __init__(self, answer: object) -> None:
        self.answer = answer

    def get_connection(self, connection_id: str) -> object:
        return self.answer


@pytest.mark.parametrize(
    ("state", "words"),
    [("draft", "schema is not registered"), ("obsolete", "teardown"), ("limitExceeded", "limit")],
)
def test_not_ready_connection_is_explained(state: str, words: str) -> None:
    with pytest.raises(UsageError) as refused:
        require_ready(FakeGraph({"state": state}), "c")
    assert state in refused.value.message
    assert words in refused.value.message + refused.value.hint
    assert require_ready(FakeGraph({"state": "ready"}), "c") == {"state": "ready"}


def test_schedule_full_then_incremental_then_nothing(tmp_path: Path) -> None:
    settings = SyncSettings(1, 7, tmp_path, 25, 4, 8, frozenset())
    state = open_state(tmp_path / "s.sqlite3", "x")
    now = datetime.now(UTC)
    assert schedule_for(state, settings).due(now)[0] == "full"
    crawl = state.begin_crawl("full", now - timedelta(days=2))
    state.finish_crawl(crawl, "partial", {}, [], now=now - timedelta(days=2))
    assert schedule_for(state, settings).due(now)[0] == "incremental"
    crawl = state.begin_crawl("incremental", now - timedelta(hours=1))
    state.finish_crawl(crawl, "succeeded", {}, [])
    schedule = schedule_for(state, settings)
    assert schedule.due(now) == (None, "no crawl is due")
    assert schedule.next_due == now - timedelta(hours=1) + timedelta(days=1)
    assert schedule.due(now + timedelta(days=6))[0] == "full"


def test_delta_applies_changes_and_removals_to_the_snapshot() -> None:
    a, b = user("a", "a@c.com"), user("b", "b@c.com")
    assert from_snapshot(to_snapshot(a)) == a
    changed = user("b", "b@c.com", enabled=False)
    result = apply_delta([a, b], [changed], [("a", "deleted")])
    assert result == [changed]


sources = st.lists(st.sampled_from(["a", "b", "c", "entra", "other", "x"]), unique=True)


@given(existing=sources, ours=st.sampled_from(["a", "b", "c"]))
def test_source_insertion_invariants(existing: list[str], ours: str) -> None:
    credlyctl = {"a", "b", "c"} & set(existing)
    urls = [url(s) for s in existing]
    result = insert_source(urls, url(ours), ours, credlyctl)
    ids = [source_id_of(u) or "" for u in result]
    # Every entry is kept, ours exactly once.
    assert sorted(ids) == sorted(set(existing) | {ours})
    # Ours sits ahead of every source credlyctl did not create.
    foreign = [i for i, s in enumerate(ids) if s not in credlyctl | {ours}]
    assert not foreign or ids.index(ours) < foreign[0]
    # Nothing else changes order, and a second run changes nothing.
    assert [s for s in ids if s != ours] == [s for s in existing if s != ours]
    assert insert_source(result, url(ours), ours, credlyctl | {ours}) == result


@pytest.mark.parametrize(
    ("vanity", "page"),
    [
        ("contoso", "https://www.credly.com/org/contoso"),
        (
            "https://www.credly.com/org/contoso-research/",
            "https://www.credly.com/org/contoso-research",
        ),
        ("", None),
        ("https://www.credly.com/org/", None),
        ("not a slug", None),
    ],
)
def test_profile_source_links_to_the_credly_organization_page(
    vanity: str, page: str | None
) -> None:
    # Credly organization pages are <web>/org/<vanity slug>; anything else falls back to the
    # Credly home page in setup.
    assert org_page_url("https://www.credly.com", vanity) == page


def test_sandbox_organizations_link_to_the_sandbox_site() -> None:
    assert (
        org_page_url("https://sandbox.credly.com", "acme") == "https://sandbox.credly.com/org/acme"
    )
