"""Scenarios: the simulated tenant as data (JSON), loaded by name or by path.

The format is documented in docs/simulator.md. `expectations` records the correct explanation
of each planted problem for the tests; the product must never see it, so the runner serves
`strip_expectations(scenario)`.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

SECTIONS = ("credly", "entra", "graph", "faults", "switches", "connector", "expectations")


class ScenarioError(ValueError):
    pass


def available() -> list[str]:
    """Names of the scenarios shipped in credly_connector/simulator/scenarios/."""
    folder = resources.files("credly_connector.simulator") / "scenarios"
    return sorted(
        entry.name[: -len(".json")] for entry in folder.iterdir() if entry.name.endswith(".json")
    )


def load_scenario(source: str | Path | dict[str, Any], *, copy: bool = True) -> dict[str, Any]:
    """The scenario from a dict (copied unless `copy=False`), a shipped name, or a JSON path."""
    scenario: dict[str, Any]
    if isinstance(source, dict):
        # A JSON round trip copies a 200,000-badge scenario several times faster than deepcopy,
        # and proves the scenario is plain data.
        scenario = json.loads(json.dumps(source)) if copy else source
    else:
        text = _read(source)
        try:
            scenario = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"scenario {source}: not valid JSON ({exc})") from exc
    validate(scenario)
    return scenario


def _read(source: str | Path) -> str:
    path = Path(source)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise ScenarioError(f"scenario file {path} does not exist")
        return path.read_text(encoding="utf-8")
    name = str(source)
    if name not in available():
        raise ScenarioError(f"unknown scenario {name!r}; shipped: {', '.join(available())}")
    folder = resources.files("credly_connector.simulator") / "scenarios"
    return (folder / f"{name}.json").read_text(encoding="utf-8")


def validate(scenario: Any) -> None:
    """Catch the mistakes that would otherwise surface as a KeyError deep in a service."""
    if not isinstance(scenario, dict):
        raise ScenarioError("a scenario is a JSON object")
    unknown = set(scenario) - set(SECTIONS) - {"name", "description"}
    if unknown:
        raise ScenarioError(f"unknown scenario sections: {sorted(unknown)}")
    credly = scenario.get("credly", {})
    for org in credly.get("organizations", []):
        if "id" not in org:
            raise ScenarioError("every Credly organization needs an id")
        for badge in org.get("badges", []):
            if "id" not in badge:
                raise ScenarioError(f"a badge of organization {org['id']} has no id")
    for client in credly.get("oauth_clients", []):
        if "client_id" not in client or "client_secret" not in client:
            raise ScenarioError("every Credly OAuth client needs client_id and client_secret")
    for token in credly.get("authorization_tokens", []):
        if "token" not in token or "organization_id" not in token:
            raise ScenarioError("every authorization token needs token and organization_id")
    entra = scenario.get("entra", {})
    if entra and "tenant_id" not in entra:
        raise ScenarioError("the entra section needs a tenant_id")
    for app in entra.get("apps", []):
        if "app_id" not in app:
            raise ScenarioError("every Entra app needs an app_id")
    for user in entra.get("users", []):
        if "id" not in user or "userPrincipalName" not in user:
            raise ScenarioError("every Entra user needs id and userPrincipalName")


def strip_expectations(scenario: dict[str, Any]) -> dict[str, Any]:
    """A copy without the recorded answers, which only tests may read."""
    stripped: dict[str, Any] = json.loads(
        json.dumps({k: v for k, v in scenario.items() if k != "expectations"})
    )
    return stripped
