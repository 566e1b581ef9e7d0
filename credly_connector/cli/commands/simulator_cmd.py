"""`credlyctl simulator serve`: run the simulated tenant until interrupted."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer

from credly_connector.cli.options import JsonOption
from credly_connector.cli.output import (
    Outcome,
    envelope,
    notice_console,
    run_command,
    stdout_console,
    write_json,
)
from credly_connector.errors import CredlyctlError, UsageError
from credly_connector.exit_codes import ExitCode
from credly_connector.simulator.runner import Simulator, start_simulator
from credly_connector.simulator.scenario import ScenarioError, available

COMMAND = "simulator serve"

simulator_app = typer.Typer(
    name="simulator",
    help="Run the simulated Credly, Entra ID and Microsoft Graph on 127.0.0.1 (rehearsals, CI).",
    no_args_is_help=True,
)


def _fail(json_mode: bool, error: CredlyctlError) -> NoReturn:
    def body() -> Outcome:
        raise error

    run_command(COMMAND, json_mode, body)


def _document(sim: Simulator, scenario: str, snippet: str, written: Path | None) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "simulated": True,
        "urls": {
            "credly_web": sim.urls.credly_web,
            "credly_api": sim.urls.credly_api,
            "entra": sim.urls.entra,
            "graph": sim.urls.graph,
        },
        "tenant_id": sim.tenant_id,
        "ca_path": str(sim.ca_path),
        "workdir": str(sim.workdir),
        "config_toml": snippet,
        "config_path": str(written) if written else None,
        "pid": os.getpid(),
    }


def _print_human(document: dict[str, Any]) -> None:
    console = stdout_console()
    urls = document["urls"]
    console.print(f"Simulated tenant (scenario {document['scenario']}): simulated data only.")
    console.print(f"  Credly web   {urls['credly_web']}")
    console.print(f"  Credly API   {urls['credly_api']}")
    console.print(f"  Entra ID     {urls['entra']}   (tenant {document['tenant_id']})")
    console.print(f"  Graph        {urls['graph']}")
    console.print(f"  CA bundle    {document['ca_path']}")
    if document["config_path"]:
        console.print(f"Configuration written to {document['config_path']}")
    console.print("Configuration (secrets are file references in the simulator's folder):")
    console.print(document["config_toml"])
    sys.stdout.flush()
    notice_console().print("Serving until interrupted (Ctrl+C). The folder above is then removed.")


def _stop_on_signal() -> tuple[threading.Event, Callable[[], None]]:
    """An event set by SIGINT/SIGTERM, installed before anything is printed (no race with a
    supervisor that stops us as soon as it has read the URLs), and a function restoring the
    previous handlers."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return stop, restore


@simulator_app.command("serve")
def serve_command(
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            help=f"A shipped scenario ({', '.join(available())}) or a scenario JSON file.",
        ),
    ] = "demo",
    instance: Annotated[
        str, typer.Option("--instance", help="Instance name used in the configuration snippet.")
    ] = "demo",
    write_config: Annotated[
        Path | None,
        typer.Option("--write-config", help="Also write the configuration snippet to this file."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Serve the simulated tenant on 127.0.0.1 and print its URLs, CA and a configuration.

    The configuration points credlyctl at the simulator (allow_custom_hosts is on, so every
    command warns that custom hosts are in use). Secrets are references to files in the
    simulator's temporary folder, never printed. Stops on Ctrl+C or SIGTERM.
    """
    try:
        sim = start_simulator(scenario)
    except ScenarioError as exc:
        _fail(
            json_output,
            UsageError(
                str(exc),
                "Give a shipped scenario name (see --help) or a scenario JSON file.",
                error_id="SIM001",
            ),
        )
    stop, restore = _stop_on_signal()
    try:
        snippet = sim.config_toml(instance)
        if write_config is not None:
            write_config.parent.mkdir(parents=True, exist_ok=True)
            write_config.write_text(snippet, encoding="utf-8")
        document = _document(sim, scenario, snippet, write_config)
        if json_output:
            write_json(envelope(COMMAND, ExitCode.OK, document))
        else:
            _print_human(document)
        while not stop.wait(0.5):
            pass
    finally:
        restore()
        sim.stop()
    raise typer.Exit(int(ExitCode.OK))


def register(app: typer.Typer) -> None:
    app.add_typer(simulator_app)
