"""`iter_badge_pages(sort="recipient_email")` over real HTTPS against the simulator, under each
setting of switch `credly_badge_sort` (docs/fidelity.md C-BADGE-12): the same badges as the
unsorted listing every time, in address order only where Credly honours the sort."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from credly_connector.credly.client import CredlyClient
from credly_connector.credly.models import Badge
from credly_connector.simulator.knobs import SWITCHES
from credly_connector.simulator.runner import Simulator
from tests.clients.test_integration_sim import ORG, credly, settings_for

pytestmark = pytest.mark.integration

SETTINGS = SWITCHES["credly_badge_sort"][1] or ()


def pages_in_order(client: CredlyClient, sort: str | None) -> list[Badge]:
    pages = dict(client.iter_badge_pages(sort=sort))
    return [badge for number in sorted(pages) for badge in pages[number]]


def address(badge: Badge) -> str:
    return (badge.recipient_email or "").strip().lower()


def test_every_setting_of_the_switch_is_tested() -> None:
    assert set(SETTINGS) == {"honoured", "ignored", "rejected"}


@pytest.mark.parametrize("setting", SETTINGS)
def test_a_sorted_read_gets_every_badge_once_under_each_setting(
    fresh_sim: Simulator, tmp_path: Path, setting: str
) -> None:
    # 17 demo badges + 140 + 1 without an address: four pages, three of them read in parallel.
    names = [f"Person{n:03d}@Contoso.com" for n in range(140)]
    random.Random(7).shuffle(names)
    for name in names:
        fresh_sim.add_badge(ORG, recipient_email=name, state="accepted", public=True)
    fresh_sim.add_badge(ORG, recipient_email=None, state="accepted")
    fresh_sim.set_switches(credly_badge_sort=setting)
    client = credly(settings_for(fresh_sim, tmp_path), page_concurrency=3)

    unsorted = pages_in_order(client, None)
    assert client.sort_refused is False
    fresh_sim.clear_request_log()
    read = pages_in_order(client, "recipient_email")

    assert Counter(b.id for b in read) == Counter(b.id for b in unsorted)
    assert len(read) == len({b["id"] for b in fresh_sim.badges(ORG)}) == 158
    statuses = [e.status for e in fresh_sim.request_log() if e.service == "credly-api"]
    addresses = [address(b) for b in read]
    if setting == "honoured":
        assert client.sort_refused is False
        assert addresses[:-1] == sorted(addresses[:-1]) and addresses[-1] == ""
        assert statuses == [200] * 4
    elif setting == "ignored":
        assert client.sort_refused is False
        assert [b.id for b in read] == [b.id for b in unsorted]
        assert addresses != sorted(addresses)
        assert statuses == [200] * 4
    else:
        assert client.sort_refused is True
        assert [b.id for b in read] == [b.id for b in unsorted]
        assert statuses == [400] + [200] * 4
