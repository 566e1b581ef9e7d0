"""`credlyctl status`: the connector page of the admin center, for credlyctl's connection."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from credly_connector.cli.instances import (
    AllOption,
    for_each_instance,
    instance_names,
    instances_data,
)
from credly_connector.cli.options import ConfigOption, InstanceOption, JsonOption
from credly_connector.cli.output import Outcome, run_command
from credly_connector.cli.terminal import terminal
from credly_connector.exit_codes import ExitCode
from credly_connector.sync.status import instance_status


def _when(crawl: dict[str, Any] | None) -> str:
    if crawl is None:
        return "never"
    duration = crawl["duration_seconds"]
    took = f", {duration:.1f} s" if duration is not None else ""
    counts = crawl["counts"]
    summary = (
        f", {counts.get('written', 0)} written, {counts.get('deleted', 0)} deleted, "
        f"{counts.get('unchanged', 0)} unchanged"
        if counts
        else ""
    )
    if counts and counts.get("deletes_held"):
        summary += f", {counts['deletes_held']} deletions held back"
    return f"{crawl['started_at'][:19]} UTC ({crawl['outcome']}{took}{summary})"


def _render(console: Console, results: list[dict[str, Any]]) -> None:
    for result in results:
        if "connection" not in result:
            terminal().error(result["error"], instance=result["instance"])
            continue
        table = Table("", "", title=f"Instance {result['instance']}", show_header=False)
        connection = result["connection"]
        state = connection["state"] or f"unknown ({connection['error']['message']})"
        table.add_row("connection", f"{connection['id']}: {state}")
        table.add_row("items", str(result["items"]))
        table.add_row("sync running now", "yes" if result["sync_running"] else "no")
        table.add_row("last full crawl", _when(result["last_full_crawl"]))
        table.add_row("last incremental crawl", _when(result["last_incremental_crawl"]))
        table.add_row("last crawl", _when(result["last_crawl"]))
        nxt = result["next_crawl"]
        if nxt["kind_due_now"]:
            table.add_row("next crawl", f"{nxt['kind_due_now']} due now ({nxt['reason']})")
        else:
            table.add_row("next crawl", f"due at {(nxt['due_at'] or '')[:19]} UTC")
        console.print(table)
        for error in result["recent_errors"]:
            console.print(f"Recent error (crawl {error['crawl_id']}): {error.get('message')}")
            if error.get("id") == "deletes_held" and error.get("hint"):
                console.print(f"Hint: {error['hint']}")


def status_command(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    all_instances: AllOption = False,
    json_output: JsonOption = False,
) -> None:
    """Connection state, last full and incremental crawls, next crawl due, recent errors.

    Exit 0 when the connection is ready, a full crawl has completed and the last crawl
    succeeded; 1 otherwise (no crawl completed yet, the last crawl interrupted, failed or
    holding its deletions back), 3 when Graph could not be reached. A crawl still marked
    running whose process died shows as interrupted.
    """

    def body() -> Outcome:
        names = instance_names(config, instance, all_instances)
        results, code = for_each_instance(
            config, names, instance_status, lambda r: ExitCode(int(r["exit_code"]))
        )
        return Outcome(code, instances_data(results, code), lambda c: _render(c, results))

    run_command("status", json_output, body)


def register(app: typer.Typer) -> None:
    app.command("status")(status_command)
