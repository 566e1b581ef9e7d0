"""Shared by the explain-user / diagnose / coverage / demo tests: a synced demo tenant.

The demo scenario's `expectations` record the right explanation per user; the product never
reads them (the simulator strips them), only these tests do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from credly_connector.cli.app import app
from credly_connector.simulator.runner import Simulator, start_simulator

SCENARIO = (
    Path(__file__).resolve().parents[2]
    / "credly_connector"
    / "simulator"
    / "scenarios"
    / "demo.json"
)
CAUSE_LINE = re.compile(r"^\s+\d+\. .*\[([A-Za-z0-9_:.\-]+)\]$")


def demo_scenario() -> dict[str, Any]:
    return dict(json.loads(SCENARIO.read_text(encoding="utf-8")))


def expectations() -> dict[str, Any]:
    return dict(demo_scenario()["expectations"])


def user_expectations() -> list[dict[str, Any]]:
    return list(expectations()["users"])


def scenario_secrets() -> list[str]:
    """Every secret value the demo scenario holds (client secrets, tokens, Entra secrets)."""
    scenario = demo_scenario()
    found: list[str] = []
    credly = scenario["credly"]
    found += [c["client_secret"] for c in credly.get("oauth_clients", [])]
    found += [t["token"] for t in credly.get("authorization_tokens", [])]
    for app_record in scenario["entra"].get("apps", []):
        found += [s["value"] for s in app_record.get("secrets", []) if s.get("value")]
    return [s for s in found if len(s) >= 8]


@dataclass
class Tenant:
    sim: Simulator
    config: Path
    runner: CliRunner

    @property
    def env(self) -> dict[str, str]:
        return {"CREDLYCTL_CONFIG": str(self.config), "NO_COLOR": "1", "COLUMNS": "200"}

    def invoke(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args), env=self.env)

    def json(self, *args: str) -> tuple[int, dict[str, Any]]:
        result = self.invoke(*args, "--json")
        from tests.cli.schema_check import validate_output

        return result.exit_code, validate_output(result.stdout)


def human_causes(stdout: str) -> set[str]:
    """The cause ids of the verdict lines of the human output."""
    verdict = stdout.split("\nVerdict", 1)[-1] if "\nVerdict" in stdout else ""
    return {m.group(1) for line in verdict.splitlines() if (m := CAUSE_LINE.match(line))}


def write_two_instance_config(sim: Simulator, folder: Path) -> Path:
    """The demo instance plus one for the second Credly organization (never set up)."""
    connector = demo_scenario()["connector"]
    text = sim.config_toml("demo", state_dir=folder / "state")
    text += "\n" + sim.config_toml(
        "research",
        org_id=connector["second_org_id"],
        credly_client_id=connector["second_credly_client_id"],
        connection_id="credlyresearch",
        state_dir=folder / "state",
        default_instance=False,
    )
    path = folder / "credlyctl.toml"
    path.write_text(text, encoding="utf-8")
    return path


def synced_tenant(folder: Path) -> Iterator[Tenant]:
    """A demo simulator after `setup` and a full `sync` of the demo instance."""
    with start_simulator("demo") as sim:
        tenant = Tenant(sim, write_two_instance_config(sim, folder), CliRunner())
        for step in (("setup",), ("sync",)):
            result = tenant.invoke(*step)
            assert result.exit_code == 0, (step, result.stdout, result.stderr)
        yield tenant
