"""read_changed_badges over real HTTPS against the simulator, under each setting of switch
`credly_updated_at_filter` (docs/fidelity.md C-BADGE-11)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from credly_connector.credly.changes import (
    ChangedBadges,
    FullReadNeeded,
    read_changed_badges,
    window_start,
)
from credly_connector.simulator.knobs import SWITCHES
from credly_connector.simulator.runner import Simulator
from tests.clients.test_integration_sim import ORG, credly, settings_for

pytestmark = pytest.mark.integration


def changed_today(sim: Simulator) -> tuple[set[str], date]:
    """Three badges changed now (issued, accepted, revoked); the window that holds them."""
    stored = sim.badges(ORG)
    pending = next(b for b in stored if b["state"] == "pending")
    accepted = next(b for b in stored if b["state"] == "accepted")
    changed = [
        sim.add_badge(ORG, recipient_email="new.hire@contoso.com", state="accepted", public=True),
        sim.update_badge(pending["id"], state="accepted", public=True),
        sim.update_badge(accepted["id"], state="revoked"),
    ]
    started = datetime.fromisoformat(changed[0]["updated_at"].replace("Z", "+00:00"))
    return {b["id"] for b in changed}, window_start(started)


def test_every_setting_of_the_switch_is_tested() -> None:
    assert set(SWITCHES["credly_updated_at_filter"][1] or ()) == {
        "honoured",
        "ignored",
        "rejected",
    }


def test_honoured_filter_reads_only_the_changed_badges(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    expected, since = changed_today(fresh_sim)
    client = credly(settings_for(fresh_sim, tmp_path))
    fresh_sim.clear_request_log()
    result = read_changed_badges(client, since, max_share=0.2)
    assert isinstance(result, ChangedBadges), result
    assert {b.id for b in result.badges} == expected
    assert result.total == len(fresh_sim.badges(ORG)) == 18
    assert result.changed_total == 3
    # Total, filtered total, one filtered page.
    reads = [e.path for e in fresh_sim.request_log() if e.service == "credly-api"]
    assert reads == [f"/v1/organizations/{ORG}/badges"] * 3


def test_honoured_filter_with_too_much_changed_is_not_worth_it(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    _, since = changed_today(fresh_sim)
    result = read_changed_badges(credly(settings_for(fresh_sim, tmp_path)), since)
    # 3 of 18 is 17%, above the default 10%.
    assert isinstance(result, FullReadNeeded)
    assert (result.verdict, result.changed_total, result.total) == ("not_worth_it", 3, 18)


def test_ignored_filter_is_detected(fresh_sim: Simulator, tmp_path: Path) -> None:
    fresh_sim.set_switches(credly_updated_at_filter="ignored")
    _, since = changed_today(fresh_sim)
    result = read_changed_badges(credly(settings_for(fresh_sim, tmp_path)), since, max_share=0.5)
    assert isinstance(result, FullReadNeeded)
    assert result.verdict == "not_honoured"
    assert result.total == result.changed_total == 18


def test_rejected_filter_is_not_honoured_and_not_an_error(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    fresh_sim.set_switches(credly_updated_at_filter="rejected")
    _, since = changed_today(fresh_sim)
    client = credly(settings_for(fresh_sim, tmp_path))
    result = read_changed_badges(client, since, max_share=0.5)
    assert isinstance(result, FullReadNeeded)
    assert (result.verdict, result.status) == ("not_honoured", 400)
    # The client still reads everything afterwards: the refusal left nothing broken.
    assert len(client.list_badges()) == 18
