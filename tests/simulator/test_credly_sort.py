"""The simulated Credly's `sort=recipient_email` on issued badges, over HTTPS.

Inferred from the badge templates' documented `sort` and the employees' `email` sort key
(docs/fidelity.md C-BADGE-12); switch `credly_badge_sort` gives the other plausible answers.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import httpx
import pytest

from credly_connector.simulator.knobs import SWITCHES
from credly_connector.simulator.runner import Simulator
from tests.sim_fixtures import sim_http
from tests.simulator.test_credly_sim import ORG1, badges, bearer

pytestmark = pytest.mark.integration


def address(badge: dict[str, Any]) -> str:
    return str(badge.get("recipient_email") or "").strip().lower()


def by_address(stored: list[dict[str, Any]], *, descending: bool = False) -> list[str]:
    """Ids in the expected order, written independently of the simulator's code: stable by
    address (ties in the organization's order, both directions), addressless last."""
    ranked = sorted(
        (b for b in stored if address(b)),
        key=address,
        reverse=descending,
    )
    return [b["id"] for b in ranked] + [b["id"] for b in stored if not address(b)]


def ids(document: Any) -> list[str]:
    return [b["id"] for b in document["data"]]


def every_page(http: httpx.Client, sim: Simulator, headers: dict[str, str], **params: Any) -> Any:
    """Pages 1..N through `next_page_url`, as Credly hands them out."""
    pages = [badges(http, sim, headers, **params)]
    while pages[-1]["metadata"]["next_page_url"]:
        answer = http.get(pages[-1]["metadata"]["next_page_url"], headers=headers)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
    return pages


def test_every_setting_of_the_switch_is_tested() -> None:
    assert SWITCHES["credly_badge_sort"] == ("honoured", ("honoured", "ignored", "rejected"))


def test_sort_by_recipient_email_ignores_case_and_keeps_ties_in_order(fresh_sim: Simulator) -> None:
    # A tie with Alex's two demo badges, differing only in case and spaces.
    fresh_sim.add_badge(ORG1, recipient_email="  ALEX.Wilber@contoso.com ", state="accepted")
    stored = fresh_sim.badges(ORG1)
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        ascending = badges(http, fresh_sim, headers, sort="recipient_email")
    assert ids(ascending) == by_address(stored)
    addresses = [address(b) for b in ascending["data"]]
    assert addresses == sorted(addresses)
    # "Christie.Cline@Contoso.com" sorts as lower case, between bianca and diego.
    assert (
        addresses.index("christie.cline@contoso.com")
        == addresses.index("bianca.pisani@outlook.com") + 1
    )
    alex = [b["id"] for b in stored if address(b) == "alex.wilber@contoso.com"]
    start = ids(ascending).index(alex[0])
    assert len(alex) == 3 and ids(ascending)[start : start + 3] == alex
    assert ascending["metadata"]["total_count"] == len(stored)


def test_descending_sort_reverses_the_addresses(fresh_sim: Simulator) -> None:
    fresh_sim.add_badge(ORG1, recipient_email="alex.wilber@contoso.com", state="accepted")
    stored = fresh_sim.badges(ORG1)
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        descending = badges(http, fresh_sim, headers, sort="-recipient_email")
    assert ids(descending) == by_address(stored, descending=True)
    addresses = [address(b) for b in descending["data"]]
    assert addresses == sorted(addresses, reverse=True)
    # Ties keep the organization's order in this direction too.
    alex = [b["id"] for b in stored if address(b) == "alex.wilber@contoso.com"]
    start = ids(descending).index(alex[0])
    assert ids(descending)[start : start + 3] == alex


def test_badges_without_an_address_come_last_in_both_directions(fresh_sim: Simulator) -> None:
    for value in (None, "", "   "):
        fresh_sim.add_badge(ORG1, recipient_email=value, state="accepted")
    fresh_sim.add_badge(ORG1, recipient_email="aaron@contoso.com", state="accepted")
    stored = fresh_sim.badges(ORG1)
    addressless = [b["id"] for b in stored if not address(b)]
    assert len(addressless) == 3
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        for sort in ("recipient_email", "-recipient_email"):
            listed = ids(badges(http, fresh_sim, headers, sort=sort))
            assert listed[-3:] == addressless, sort
            assert listed == by_address(stored, descending=sort.startswith("-"))


@pytest.mark.parametrize(
    "sort",
    ["issued_at", "-updated_at", "email", "Recipient_Email", "issued_at|recipient_email", ""],
)
def test_other_sort_keys_leave_the_organizations_order(fresh_sim: Simulator, sort: str) -> None:
    stored = fresh_sim.badges(ORG1)
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        listed = badges(http, fresh_sim, headers, sort=sort)
    assert ids(listed) == [b["id"] for b in stored]
    assert ids(listed) != by_address(stored)  # the demo is not already in address order


def test_only_the_first_of_several_keys_counts(http: httpx.Client, sim: Simulator) -> None:
    headers = bearer(http, sim)
    stored = sim.badges(ORG1)
    listed = badges(http, sim, headers, sort="recipient_email|-issued_at")
    assert ids(listed) == by_address(stored)
    listed = badges(http, sim, headers, sort=" -recipient_email | issued_at")
    assert ids(listed) == by_address(stored, descending=True)


def test_sort_applies_after_the_filters(http: httpx.Client, sim: Simulator) -> None:
    headers = bearer(http, sim)
    stored = [b for b in sim.badges(ORG1) if b["state"] == "accepted"]
    listed = badges(http, sim, headers, filter="state::accepted", sort="recipient_email")
    assert ids(listed) == by_address(stored)
    assert listed["metadata"]["total_count"] == len(stored)


def test_sorted_pages_run_across_the_fifty_per_page_boundaries(fresh_sim: Simulator) -> None:
    names = [f"user{n:03d}@contoso.com" for n in range(150)]
    random.Random(12).shuffle(names)
    for name in names:
        fresh_sim.add_badge(ORG1, recipient_email=name.upper() if "7" in name else name)
    fresh_sim.add_badge(ORG1, recipient_email=None)
    stored = fresh_sim.badges(ORG1)
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        pages = every_page(http, fresh_sim, headers, sort="recipient_email")
        by_number = [
            badges(http, fresh_sim, headers, sort="recipient_email", page=n) for n in (1, 2, 3, 4)
        ]
    assert [p["metadata"]["count"] for p in pages] == [50, 50, 50, 18]
    assert all("sort=recipient_email" in p["metadata"]["next_page_url"] for p in pages[:-1])
    assert "sort=recipient_email" in pages[-1]["metadata"]["previous_page_url"]
    read = [i for page in pages for i in ids(page)]
    assert read == by_address(stored)
    assert [i for page in by_number for i in ids(page)] == read
    # Every page starts at or after the address the one before ended with.
    for before, after in itertools.pairwise(pages):
        assert address(before["data"][-1]) <= address(after["data"][0])


def test_the_listing_cache_is_keyed_by_the_sort(fresh_sim: Simulator) -> None:
    stored = fresh_sim.badges(ORG1)
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        for _ in range(2):  # the second round is served from the cache
            assert ids(badges(http, fresh_sim, headers)) == [b["id"] for b in stored]
            assert ids(badges(http, fresh_sim, headers, sort="recipient_email")) == by_address(
                stored
            )
            assert ids(badges(http, fresh_sim, headers, sort="-recipient_email")) == by_address(
                stored, descending=True
            )
        # A new badge (a new version) is sorted in, not served from the old entry.
        added = fresh_sim.add_badge(ORG1, recipient_email="aaa@contoso.com")
        assert ids(badges(http, fresh_sim, headers, sort="recipient_email"))[0] == added["id"]
    store = fresh_sim.credly
    ascending = store.listing(ORG1, {}, "recipient_email")
    assert store.listing(ORG1, {}, "recipient_email") is ascending  # sorted once, then cached
    assert store.listing(ORG1, {}, None) is not ascending
    assert store.listing(ORG1, {}, "-recipient_email") is not ascending


def test_the_ignored_switch_keeps_the_organizations_order(fresh_sim: Simulator) -> None:
    fresh_sim.set_switches(credly_badge_sort="ignored")
    stored = fresh_sim.badges(ORG1)
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        for sort in ("recipient_email", "-recipient_email"):
            listed = badges(http, fresh_sim, headers, sort=sort)
            assert ids(listed) == [b["id"] for b in stored]
            assert listed["metadata"]["total_count"] == len(stored)


def test_the_rejected_switch_answers_400_to_any_sort(fresh_sim: Simulator) -> None:
    fresh_sim.set_switches(credly_badge_sort="rejected")
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        url = f"{fresh_sim.urls.credly_api}/organizations/{ORG1}/badges"
        for sort in ("recipient_email", "-recipient_email", "issued_at", ""):
            answer = http.get(url, headers=headers, params={"sort": sort, "page": "2"})
            assert answer.status_code == 400, sort
            # The same envelope as a rejected filter key (C-BADGE-11).
            assert set(answer.json()) == {"data", "metadata"}
            assert "sort" in answer.json()["data"]["message"]
        assert badges(http, fresh_sim, headers)["metadata"]["total_count"] == 17
