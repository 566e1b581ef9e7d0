"""The demo: a simulated tenant in which every row of Microsoft's troubleshooting table happens.

It starts the simulator with the shipped demo scenario, runs setup, a full sync and status,
then diagnoses one case per table row and a healthy user, through the same core functions
the commands use. Everything it shows is simulated data; nothing leaves the machine.

The cases below are the demo's script: which person or configuration change stages which row
in the demo scenario. The demo checks that each diagnosis names the staged row, so a broken
diagnosis shows up as a failed demo (exit 1).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.explain import Diagnosis, diagnose
from credly_connector.diagnostics.model import CheckStatus
from credly_connector.exit_codes import ExitCode

INSTANCE = "demo"
SECOND_INSTANCE = "research"


@dataclass(frozen=True)
class UserCase:
    row: str | None  # the table row it stages; None for the healthy user
    email: str
    story: str


@dataclass(frozen=True)
class ConnectionCase:
    row: str
    story: str
    change: dict[str, Any]  # options for Simulator.config_toml, plus "base_url"


USER_CASES: tuple[UserCase, ...] = (
    UserCase(None, "alex.wilber@contoso.com", "a healthy user with an award and a certification"),
    UserCase("email-mismatch", "adele@contoso.com", "a badge issued to a secondary alias"),
    UserCase("email-mismatch", "bianca.pisani@outlook.com", "a badge issued to a personal address"),
    UserCase("badge-not-accepted-or-private", "enrico.cattaneo@contoso.com", "a pending badge"),
    UserCase("badge-not-accepted-or-private", "isaiah.langer@contoso.com", "a private badge"),
    UserCase("user-inactive", "lee.gu@contoso.com", "a disabled account"),
    UserCase("user-inactive", "lidia.holloway@contoso.com", "an account without a license"),
    UserCase("not-synced-yet", "megan.bowen@contoso.com", "a badge accepted after the crawl"),
    UserCase("multiple-orgs", "nestor.wilke@contoso.com", "a badge of another Credly organization"),
)

CONNECTION_CASES: tuple[ConnectionCase, ...] = (
    ConnectionCase(
        "invalid-org-id", "the vanity name pasted as Organization ID", {"org_id": "contoso"}
    ),
    ConnectionCase(
        "bad-client-credentials",
        "a wrong Credly client secret",
        {"credly_client_secret": "demo-wrong-secret-value-0000"},
    ),
    ConnectionCase(
        "wrong-endpoint-url", "the API host as Credly URL", {"base_url": "https://api.credly.com"}
    ),
    ConnectionCase(
        "fixed-schema",
        "an extra schema property in the configuration",
        {"graph_lines": ['properties = ["skills"]']},
    ),
)

# Megan accepts her badge after the first full crawl (the not-synced-yet row).
LATE_ACCEPTANCE = "megan.bowen@contoso.com"


@dataclass
class DemoStep:
    kind: str  # "setup" | "sync" | "status" | "diagnose"
    title: str
    command: str  # what an admin would type
    row: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    diagnosis: Diagnosis | None = None
    as_scripted: bool = True

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "kind": self.kind,
            "title": self.title,
            "command": self.command,
            "row": self.row,
            "as_scripted": self.as_scripted,
        }
        if self.diagnosis is not None:
            document["exit_code"] = int(self.diagnosis.exit_code)
            document["causes"] = [c.id for c in self.diagnosis.causes]
            document["rows"] = sorted({c.table_row for c in self.diagnosis.causes if c.table_row})
            document["notes"] = [r.explanation for r in self.diagnosis.notes]
        else:
            document["data"] = self.data
        return document


@dataclass
class DemoReport:
    steps: list[DemoStep] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if all(s.as_scripted for s in self.steps) else ExitCode.PROBLEMS

    def to_dict(self) -> dict[str, Any]:
        return {
            "simulated": True,
            "seconds": round(self.seconds, 2),
            "as_scripted": self.exit_code is ExitCode.OK,
            "steps": [s.to_dict() for s in self.steps],
        }


Progress = Callable[[DemoStep], None]


def _scripted(diagnosis: Diagnosis, row: str | None) -> bool:
    if row is None:
        return diagnosis.exit_code is ExitCode.OK
    return any(c.table_row == row for c in diagnosis.causes)


def _config_text(sim: Any, folder: Path, change: dict[str, Any] | None = None) -> str:
    options = dict(change or {})
    base_url = options.pop("base_url", None)
    graph_lines: list[str] = options.pop("graph_lines", [])
    connector = sim.scenario.get("connector", {})
    text = str(sim.config_toml(INSTANCE, state_dir=folder / "state", **options))
    if base_url:
        text = re.sub(r"^base_url = .*$", f'base_url = "{base_url}"', text, count=1, flags=re.M)
    for line in graph_lines:
        section = f"[instances.{INSTANCE}.graph]\n"
        text = text.replace(section, section + line + "\n", 1)
    if connector.get("second_org_id") and not change:
        # A second instance for the second Credly organization: one instance per organization.
        text += "\n" + sim.config_toml(
            SECOND_INSTANCE,
            org_id=connector["second_org_id"],
            credly_client_id=connector.get("second_credly_client_id"),
            connection_id="credlyresearch",
            state_dir=folder / "state",
            default_instance=False,
        )
    return text


def _context(config: Path) -> DiagnosticContext:
    return DiagnosticContext.load(config, INSTANCE)


def _diagnose(config: Path, email: str | None) -> Diagnosis:
    with _context(config) as ctx:
        return diagnose(ctx, email)


def run_demo(
    *,
    progress: Progress = lambda step: None,
    workdir: Path | None = None,
) -> DemoReport:
    """Run the whole demo through the same core functions the commands use."""
    from credly_connector.config.load import load_instance
    from credly_connector.simulator.runner import start_simulator
    from credly_connector.sync.status import instance_status as status

    started = time.perf_counter()
    report = DemoReport()

    def record(step: DemoStep) -> None:
        report.steps.append(step)
        progress(step)

    folder = Path(workdir or tempfile.mkdtemp(prefix="credlyctl-demo-"))
    with start_simulator("demo") as sim:
        config = folder / "credlyctl.toml"
        config.write_text(_config_text(sim, folder), encoding="utf-8")
        settings = load_instance(config, INSTANCE)
        record(
            DemoStep(
                "setup",
                "Create the connection and register the profile source",
                "credlyctl setup",
                data=_setup(settings),
            )
        )
        before = _diagnose(config, None)
        record(
            DemoStep(
                "diagnose",
                "Before the first crawl",
                "credlyctl diagnose",
                row="initial-sync-incomplete",
                diagnosis=before,
                as_scripted=_scripted(before, "initial-sync-incomplete"),
            )
        )
        record(DemoStep("sync", "First full crawl", "credlyctl sync --full", data=_sync(settings)))
        _accept_late(sim)
        record(DemoStep("status", "Connection status", "credlyctl status", data=status(settings)))
        for case in USER_CASES:
            diagnosis = _diagnose(config, case.email)
            title = case.story[0].upper() + case.story[1:]
            record(
                DemoStep(
                    "diagnose",
                    title,
                    f"credlyctl diagnose {case.email}",
                    row=case.row,
                    diagnosis=diagnosis,
                    as_scripted=_scripted(diagnosis, case.row),
                )
            )
        for connection_case in CONNECTION_CASES:
            variant = folder / f"{connection_case.row}.toml"
            variant.write_text(_config_text(sim, folder, connection_case.change), encoding="utf-8")
            diagnosis = _diagnose(variant, None)
            title = connection_case.story[0].upper() + connection_case.story[1:]
            record(
                DemoStep(
                    "diagnose",
                    title,
                    "credlyctl diagnose",
                    row=connection_case.row,
                    diagnosis=diagnosis,
                    as_scripted=_scripted(diagnosis, connection_case.row),
                )
            )
    report.seconds = time.perf_counter() - started
    return report


def _setup(settings: Any) -> dict[str, Any]:
    from credly_connector.sync.setup import run_setup

    report = run_setup(settings)
    return {"connection_id": report.connection_id, "steps": [s.to_dict() for s in report.steps]}


def _sync(settings: Any) -> dict[str, Any]:
    from credly_connector.sync.clients import build_clients
    from credly_connector.sync.runner import SyncOptions, run_sync

    clients = build_clients(settings)
    try:
        report = run_sync(settings, clients.for_sync(), SyncOptions(kind="full"))
    finally:
        clients.close()
    if report.error is not None:
        raise report.error
    counts = report.counts()
    return {"kind": report.kind, "exit_code": int(report.exit_code), "counts": counts}


def _accept_late(sim: Any) -> None:
    org = sim.scenario.get("connector", {}).get("org_id")
    for badge in sim.badges(org):
        if badge.get("recipient_email") == LATE_ACCEPTANCE and badge.get("state") == "pending":
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            sim.update_badge(
                badge["id"], state="accepted", public=True, accepted_at=now, updated_at=now
            )


def shown_results(diagnosis: Diagnosis) -> list[Any]:
    """The lines worth showing in the demo: everything but the passing checks."""
    return [r for r in diagnosis.results if r.status not in (CheckStatus.OK, CheckStatus.SKIPPED)]
