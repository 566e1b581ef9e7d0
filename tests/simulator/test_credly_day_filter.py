"""The simulated Credly's `updated_at_min`/`updated_at_max` on issued badges, over HTTPS.

Inferred from the badge templates' documented filter (docs/fidelity.md C-BADGE-11); switch
`credly_updated_at_filter` gives the other plausible answers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from credly_connector.simulator.runner import Simulator, start_simulator
from credly_connector.simulator.scenario import load_scenario
from tests.sim_fixtures import sim_http
from tests.simulator.test_credly_sim import ORG1, badges, bearer

pytestmark = pytest.mark.integration


def day(badge: dict[str, Any]) -> str:
    moment = datetime.fromisoformat(str(badge["updated_at"]).replace("Z", "+00:00"))
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def ids(document: Any) -> set[str]:
    return {b["id"] for b in document["data"]}


def test_updated_at_min_and_max_are_inclusive_days(http: httpx.Client, sim: Simulator) -> None:
    headers = bearer(http, sim)
    stored = sim.badges(ORG1)
    # Demo: one badge updated 2026-09-16 07:45, one 2026-09-17, one 2026-09-18 (UTC).
    since = badges(http, sim, headers, filter="updated_at_min::2026-09-17")
    assert ids(since) == {b["id"] for b in stored if day(b) >= "2026-09-17"}
    assert since["metadata"]["total_count"] == len(ids(since)) < len(stored)
    until = badges(http, sim, headers, filter="updated_at_max::2026-09-17")
    assert ids(until) == {b["id"] for b in stored if day(b) <= "2026-09-17"}
    one_day = badges(
        http, sim, headers, filter="updated_at_min::2026-09-16|updated_at_max::2026-09-16"
    )
    assert [day(b) for b in one_day["data"]] == ["2026-09-16"]


def test_day_filters_combine_with_the_other_keys(http: httpx.Client, sim: Simulator) -> None:
    headers = bearer(http, sim)
    found = badges(http, sim, headers, filter="state::pending|updated_at_min::2026-11-10")
    assert [(b["state"], day(b)) for b in found["data"]] == [("pending", "2026-11-20")]


def test_next_page_url_keeps_the_day_filter(fresh_sim: Simulator) -> None:
    added = [
        fresh_sim.add_badge(ORG1, recipient_email=f"new{n}@contoso.com", state="pending")
        for n in range(55)
    ]
    today = day(added[0])
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        first = badges(http, fresh_sim, headers, filter=f"updated_at_min::{today}")
        assert first["metadata"]["total_count"] == 55
        second = http.get(first["metadata"]["next_page_url"], headers=headers).json()
    assert ids(first) | ids(second) == {b["id"] for b in added}


def test_every_operation_that_changes_a_badge_moves_its_updated_at(
    fresh_sim: Simulator,
) -> None:
    stored = fresh_sim.badges(ORG1)
    pending = next(b for b in stored if b["state"] == "pending")
    accepted = [b for b in stored if b["state"] == "accepted"]
    changes = {
        "accept": fresh_sim.update_badge(pending["id"], state="accepted", public=True),
        "revoke": fresh_sim.update_badge(accepted[0]["id"], state="revoked"),
        "make private": fresh_sim.update_badge(accepted[1]["id"], public=False),
        "change address": fresh_sim.update_badge(
            accepted[2]["id"], recipient_email="someone.else@contoso.com"
        ),
        "issue": fresh_sim.add_badge(ORG1, recipient_email="fresh@contoso.com"),
    }
    today = min(day(b) for b in changes.values())
    with sim_http(fresh_sim) as http:
        found = badges(http, fresh_sim, bearer(http, fresh_sim), filter=f"updated_at_min::{today}")
    assert ids(found) == {b["id"] for b in changes.values()}


def test_a_malformed_day_is_400(http: httpx.Client, sim: Simulator) -> None:
    headers = bearer(http, sim)
    url = f"{sim.urls.credly_api}/organizations/{ORG1}/badges"
    for value in ("2026-11-30T10:00:00Z", "30/11/2026", "2026-02-30", ""):
        answer = http.get(url, headers=headers, params={"filter": f"updated_at_min::{value}"})
        assert answer.status_code == 400, value
        assert "YYYY-MM-DD" in answer.json()["data"]["message"]


def test_the_ignored_switch_returns_everything(fresh_sim: Simulator) -> None:
    fresh_sim.set_switches(credly_updated_at_filter="ignored")
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        everything = badges(http, fresh_sim, headers)
        ignored = badges(http, fresh_sim, headers, filter="updated_at_min::2026-11-10")
        narrowed = badges(
            http, fresh_sim, headers, filter="state::pending|updated_at_min::2026-11-10"
        )
    assert ignored["metadata"]["total_count"] == everything["metadata"]["total_count"]
    assert ids(ignored) == ids(everything)
    assert narrowed["metadata"]["total_count"] == 2  # the other keys still apply


def test_the_rejected_switch_answers_400(fresh_sim: Simulator) -> None:
    fresh_sim.set_switches(credly_updated_at_filter="rejected")
    with sim_http(fresh_sim) as http:
        headers = bearer(http, fresh_sim)
        url = f"{fresh_sim.urls.credly_api}/organizations/{ORG1}/badges"
        for raw in ("updated_at_min::2026-11-10", "state::accepted|updated_at_max::2026-11-10"):
            answer = http.get(url, headers=headers, params={"filter": raw})
            assert answer.status_code == 400
            assert "updated_at_m" in answer.json()["data"]["message"]
        assert badges(http, fresh_sim, headers, filter="state::pending")["metadata"][
            "total_count"
        ] == (2)


def test_a_scenario_badge_without_updated_at_gets_its_last_change() -> None:
    scenario = load_scenario("demo")
    org = scenario["credly"]["organizations"][0]
    accepted, pending = org["badges"][0], next(b for b in org["badges"] if not b["accepted_at"])
    for badge in (accepted, pending):
        del badge["updated_at"]
    with start_simulator(scenario) as simulator:
        by_id = {b["id"]: b for b in simulator.badges(ORG1)}
    assert by_id[accepted["id"]]["updated_at"] == accepted["accepted_at"]
    assert by_id[pending["id"]]["updated_at"] == pending["issued_at"]
