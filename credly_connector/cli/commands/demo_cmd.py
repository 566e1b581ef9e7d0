"""demo: the whole job on a simulated tenant, in under 30 seconds, nothing leaving the machine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from credly_connector.cli.options import JsonOption
from credly_connector.cli.output import Outcome, notice_console, run_command

if TYPE_CHECKING:
    from credly_connector.diagnostics.demo import DemoReport, DemoStep

BANNER = "SIMULATED DATA: a built-in demo tenant (Contoso) served on 127.0.0.1; nothing is real."


def _render_step(console: Console, number: int, step: DemoStep, seen: set[str]) -> None:
    from credly_connector.cli.check_results import render_result
    from credly_connector.diagnostics.demo import shown_results
    from credly_connector.diagnostics.explain import row_title

    row = f"  (row: {row_title(step.row)})" if step.row else ""
    console.print("")
    console.print(f"── {number}. {step.title}{row}")
    console.print(f"$ {step.command}")
    if step.diagnosis is None:
        _render_data(console, step)
        return
    repeated = 0
    for result in shown_results(step.diagnosis):
        # Warnings and notes about the demo tenant itself are shown once, not at every step.
        key = f"{result.check_id}|{result.status}|{result.explanation}"
        if key in seen and result.status.value in ("warn", "note"):
            repeated += 1
            continue
        seen.add(key)
        render_result(console, result, verbose=False)
    if repeated:
        console.print(f"    ({repeated} warning(s) and note(s) shown above not repeated)")
    diagnosis = step.diagnosis
    if not diagnosis.causes:
        who = diagnosis.email or "the connection"
        console.print(f"Verdict: {who}: no cause found; the badges should be visible.")
    for cause in diagnosis.causes:
        where = cause.title if cause.in_table else "not in Microsoft's table"
        console.print(f"Verdict: {where}  [{cause.id}]")
        for fix in cause.fixes[:1]:
            console.print(f"  Fix: {fix}")
    if not step.as_scripted:
        console.print("!! The diagnosis did not name the row this case stages (a credlyctl bug).")


def _render_data(console: Console, step: DemoStep) -> None:
    data: dict[str, Any] = step.data
    if step.kind == "setup":
        for item in data.get("steps", []):
            console.print(f"  {item['step']}: {item['status']} {item['detail']}".rstrip())
    elif step.kind == "sync":
        counts = data.get("counts", {})
        console.print(
            f"  {data.get('kind')} crawl: {counts.get('badges_read', 0)} badges read, "
            f"{counts.get('badges_indexed', 0)} indexed, {counts.get('written', 0)} items written"
        )
        skipped = ", ".join(f"{k} {v}" for k, v in counts.get("skipped", {}).items())
        if skipped:
            console.print(f"  skipped: {skipped}")
        console.print("  (then, in the simulated tenant, Megan accepts her pending badge)")
    elif step.kind == "status":
        connection = data.get("connection", {})
        last = data.get("last_crawl") or {}
        due = (data.get("next_crawl") or {}).get("due_at")
        console.print(f"  connection {connection.get('id')}: {connection.get('state')}")
        console.print(
            f"  last crawl: {last.get('kind')} {last.get('outcome')}; items: {data.get('items')}; "
            f"next crawl due {due}"
        )


def render_report(console: Console, report: DemoReport) -> None:
    console.print(BANNER)
    seen: set[str] = set()
    for number, step in enumerate(report.steps, 1):
        _render_step(console, number, step, seen)
    console.print("")
    scripted = sum(1 for s in report.steps if s.as_scripted)
    console.print(
        f"Demo finished in {report.seconds:.1f} s: {scripted}/{len(report.steps)} steps as "
        "scripted. " + BANNER
    )
    console.print("Next: write your own configuration with `credlyctl config init`.")


def demo_command(json_output: JsonOption = False) -> None:
    """Run credlyctl end to end on a simulated tenant (SIMULATED DATA, nothing leaves this
    machine): setup, a full sync, status, then diagnose one case per row of Microsoft's
    troubleshooting table and a healthy user. Exit 0 when every case was diagnosed as scripted.
    """

    def body() -> Outcome:
        from credly_connector.diagnostics.demo import run_demo

        progress = notice_console()
        progress.print(f"Starting the demo. {BANNER}")
        report = run_demo(progress=lambda step: progress.print(f"  {step.title}"))
        return Outcome(
            report.exit_code, report.to_dict(), lambda console: render_report(console, report)
        )

    run_command("demo", json_output, body)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
