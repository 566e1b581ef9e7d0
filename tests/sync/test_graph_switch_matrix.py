"""Setup and syncs under each setting of the simulated Graph's inferred switches.

Where docs/fidelity.md says the real Graph might answer either way (rows G-BATCH-2,
G-ITEM-9, G-PERM-5, G-SCHEMA-6, G-USER-8, G-PEOPLE-6), credlyctl must write exactly what the
oracle expects whichever way it turns out: setup twice, a full sync, a deletion through the
delta link, and an expired delta link, with some batch entries throttled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from credly_connector.simulator.runner import start_simulator
from credly_connector.simulator.scenario import load_scenario
from tests.sync.simhelpers import configure, do_setup, do_sync, graph_view, oracle, settings_of
from tests.test_fidelity_ledger import simulator_scenario_options

pytestmark = pytest.mark.integration

# (graph scenario option, a setting other than the default); None = the defaults.
GRAPH_SWITCH_CASES: list[tuple[str, Any] | None] = [
    None,
    ("batch_response_order", "reversed"),
    ("strict_item_ids", True),
    ("enforce_owned_by", False),
    ("enforce_evolvable_enums", False),
    ("delta_expired_status", 410),
    ("delta_expired_code", "resyncRequired"),
    ("default_profile_setting", False),
]


def test_the_cases_name_options_the_simulator_reads() -> None:
    read = simulator_scenario_options()
    for case in GRAPH_SWITCH_CASES:
        assert case is None or case[0] in read, f"the simulator no longer reads {case[0]!r}"


@pytest.mark.parametrize(
    "case",
    GRAPH_SWITCH_CASES,
    ids=[f"{c[0]}={c[1]}" if c else "defaults" for c in GRAPH_SWITCH_CASES],
)
def test_syncs_write_what_the_oracle_expects_under_each_graph_switch(
    tmp_path: Path, case: tuple[str, Any] | None
) -> None:
    scenario = load_scenario("demo")
    # Some entries of each batch are throttled, so answers matched to the wrong request show.
    scenario.setdefault("graph", {})["ingestion_limit_per_second"] = 2
    if case is not None:
        scenario.setdefault("graph", {})[case[0]] = case[1]
    with start_simulator(scenario, copy=False) as sim:
        settings = settings_of(configure(sim, tmp_path))
        do_setup(settings)
        assert do_setup(settings).changed is False
        assert do_sync(settings, kind="full").counts()["written"] == len(oracle(sim))
        assert graph_view(sim) == oracle(sim)

        sim.update_user("alex.wilber@contoso.com", accountEnabled=False)
        report = do_sync(settings, kind="incremental")
        assert report.counts()["deleted"] == 1
        assert graph_view(sim) == oracle(sim)

        sim.expire_delta_tokens()
        sim.update_user("alex.wilber@contoso.com", accountEnabled=True)
        report = do_sync(settings, kind="incremental")
        assert any("expired" in warning for warning in report.warnings)
        assert graph_view(sim) == oracle(sim)
        assert sim.graph_invalid_values() == []
