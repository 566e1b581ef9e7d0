"""The clients and a whole sync under every setting of every inferred simulator switch.

Each switch models a Credly behaviour the reference could only infer; credlyctl must give the
same answers whichever way the real service turns out to behave.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from credly_connector.cli.app import app
from credly_connector.credly.errors import CredlyAuthError
from credly_connector.simulator.knobs import SWITCHES
from credly_connector.simulator.runner import Simulator
from tests.clients.test_integration_sim import ORG, SECOND_ORG, credly, settings_for

pytestmark = pytest.mark.integration

VALID_TOKEN = "at_sim_contoso_valid_6Gf2Hj8Kl4Zx0Cv"
TEMPLATES_ONLY_CLIENT = "contoso-templates-only-3c9e1d"


def _settings_of_every_switch() -> list[tuple[str, Any]]:
    cases = []
    for name, (_default, allowed) in SWITCHES.items():
        for value in allowed if allowed is not None else (False, True):
            cases.append((name, value))
    return cases


SWITCH_CASES = _settings_of_every_switch()


def test_every_switch_is_covered() -> None:
    assert {name for name, _ in SWITCH_CASES} == set(SWITCHES)


@pytest.mark.parametrize(("name", "value"), SWITCH_CASES, ids=[f"{n}={v}" for n, v in SWITCH_CASES])
def test_credly_client_answers_the_same_under_every_switch(
    fresh_sim: Simulator, tmp_path: Path, name: str, value: Any
) -> None:
    fresh_sim.set_switches(**{name: value})
    expected = {b["id"] for b in fresh_sim.badges(ORG)}

    for auth in ({}, {"credly_auth": "token", "authorization_token": VALID_TOKEN}):
        client = credly(settings_for(fresh_sim, tmp_path, **auth))
        assert client.get_organization().id == ORG
        assert {b.id for b in client.list_badges()} == expected
        # Sorted by address (C-BADGE-12): honoured, ignored or refused, the same badges.
        pages = client.iter_badge_pages(sort="recipient_email")
        assert {b.id for _, page in pages for b in page} == expected
        # An address looked up exactly as Credly holds it is found whatever the filter's case rule.
        stored = fresh_sim.badges(ORG)[0]["recipient_email"]
        assert any(b.recipient_email == stored for b in client.iter_badges(recipient_email=stored))

    foreign = credly(settings_for(fresh_sim, tmp_path, org_id=SECOND_ORG))
    with pytest.raises(CredlyAuthError) as caught:
        foreign.get_organization()
    assert caught.value.kind in {"forbidden", "not_found"}

    limited = credly(settings_for(fresh_sim, tmp_path, credly_client_id=TEMPLATES_ONLY_CLIENT))
    with pytest.raises(CredlyAuthError) as caught:
        limited.list_badges()
    assert caught.value.kind in {"forbidden", "invalid_client"}


@pytest.mark.parametrize(("name", "value"), SWITCH_CASES, ids=[f"{n}={v}" for n, v in SWITCH_CASES])
def test_a_full_sync_writes_the_same_items_under_every_switch(
    fresh_sim: Simulator, tmp_path: Path, name: str, value: Any
) -> None:
    fresh_sim.set_switches(**{name: value})
    config = fresh_sim.write_config(tmp_path / "credlyctl.toml", state_dir=tmp_path / "state")
    runner = CliRunner()
    assert runner.invoke(app, ["setup", "--config", str(config), "--json"]).exit_code == 0
    result = runner.invoke(app, ["sync", "--full", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["status"] == "ok"
    # The demo scenario indexes four people with the default switches (tests/sync checks which
    # ones against an oracle); no switch may add or lose one.
    items = fresh_sim.graph_items("credlybadges")
    assert len(items) == 4
    assert fresh_sim.graph_invalid_values() == []
