"""`credlyctl sync`: one crawl per instance, with a summary table or one JSON document."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from credly_connector.cli.instances import (
    AllOption,
    for_each_instance,
    instance_names,
    instances_data,
)
from credly_connector.cli.options import ConfigOption, InstanceOption, JsonOption, require_email
from credly_connector.cli.output import Outcome, notice_console, run_command
from credly_connector.cli.terminal import terminal
from credly_connector.config.resolved import InstanceSettings
from credly_connector.errors import UsageError
from credly_connector.exit_codes import ExitCode
from credly_connector.sync.runner import SyncOptions, SyncReport, run_sync


class _RichProgress:
    """A progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> _RichProgress:
        if sys.stderr.isatty():
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=notice_console(),
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def phase(self, name: str, total: int | None = None) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(name, total=total)

    def advance(self, done: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done)


def report_dict(report: SyncReport) -> dict[str, Any]:
    write = report.write
    data: dict[str, Any] = {
        "instance": report.instance,
        "kind": report.kind,
        "dry_run": report.dry_run,
        "skipped_reason": report.skipped_reason,
        "crawl_id": report.crawl_id,
        "started_at": report.started_at.isoformat(),
        "ended_at": report.ended_at.isoformat() if report.ended_at else None,
        "duration_seconds": report.duration_seconds,
        "counts": report.counts(),
        "failures": [f.to_dict() for f in report.failures],
        "deletes_held": report.deletes_held,
        "warnings": list(report.warnings),
        "requests": report.requests,
        "throttling": {
            "throttled_entries": write.throttled_entries if write else 0,
            "throttle_wait_seconds": round(write.throttle_wait_seconds, 3) if write else 0.0,
            "rate_wait_seconds": write.rate_wait_seconds if write else 0.0,
            "retries": write.retries if write else 0,
            "final_write_rate": write.final_rate if write else None,
        },
        "exit_code": int(report.exit_code),
        "error": report.error.to_dict() if report.error else None,
    }
    if report.dry_run and report.plan is not None:
        data["plan"] = [op.to_dict() for op in report.plan.ops]
    return data


def render_report(console: Console, data: dict[str, Any]) -> None:
    name = data.get("instance")
    if data.get("error") and "counts" not in data:
        terminal().error(data["error"], instance=name)
        return
    if data.get("skipped_reason"):
        console.print(f"Instance {name}: nothing to do ({data['skipped_reason']}).")
        return
    title = f"{'Dry run: ' if data['dry_run'] else ''}{data['kind']} crawl of {name}"
    console.print(f"{title} ({data['duration_seconds']:.1f} s)")
    if data.get("plan") is not None:
        plan = Table("action", "user", "reason", "badges", title="Plan (nothing was written)")
        for op in data["plan"]:
            plan.add_row(
                op["action"],
                op["user_principal_name"] or op["user_id"],
                op["reason"],
                str(op["badges"]),
            )
        console.print(plan)
    counts = data["counts"]
    table = Table("", "count", title="Summary")
    table.add_row("badges read", str(counts["badges_read"]))
    table.add_row("badges indexed", str(counts["badges_indexed"]))
    table.add_row("users read", str(counts["users_read"]))
    table.add_row("users with badges", str(counts["users_matched"]))
    for action, number in counts["planned"].items():
        table.add_row(
            f"items to {action}" if action != "unchanged" else "items unchanged", str(number)
        )
    if not data["dry_run"]:
        table.add_row("items written", str(counts["written"]))
        table.add_row("items deleted", str(counts["deleted"]))
        table.add_row("items failed", str(counts["failed"]))
    if data["deletes_held"]:
        held = "deletions held back" if not data["dry_run"] else "deletions a run would hold"
        table.add_row(held, str(data["deletes_held"]))
    for reason, number in counts["skipped"].items():
        table.add_row(f"skipped: {reason}", str(number))
    throttling = data["throttling"]
    if throttling["throttled_entries"]:
        table.add_row("throttled writes", str(throttling["throttled_entries"]))
        table.add_row("throttling wait (s)", str(throttling["throttle_wait_seconds"]))
    total = sum(
        v
        for group in data["requests"].values()
        if isinstance(group, dict)
        for k, v in group.items()
        if isinstance(v, int) and "." in k
    )
    table.add_row("HTTP requests", str(total))
    console.print(table)
    for failure in data["failures"]:
        console.print(
            f"Failed: {failure['action']} {failure['user_principal_name'] or failure['item_id']}: "
            f"{failure['status']} {failure['code'] or ''} {failure['message']}"
        )
    if data.get("error"):
        terminal().error(data["error"], instance=name)


def sync_command(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    all_instances: AllOption = False,
    full: Annotated[
        bool, typer.Option("--full", help="Run a full crawl (reconcile everything).")
    ] = False,
    incremental: Annotated[
        bool, typer.Option("--incremental", help="Write only users whose content changed.")
    ] = False,
    if_due: Annotated[
        bool, typer.Option("--if-due", help="Do nothing (exit 0) when no crawl is due.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing to Graph or the state.")
    ] = False,
    user: Annotated[
        list[str] | None,
        typer.Option("--user", metavar="EMAIL", help="Sync only this user (repeatable)."),
    ] = None,
    log_file: Annotated[
        Path | None, typer.Option("--log-file", help="Append a JSON-lines log of the crawl.")
    ] = None,
    allow_deletes: Annotated[
        bool,
        typer.Option(
            "--allow-deletes",
            help="Perform the deletions even when there are more than sync.max_deletes.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Sync Credly badges into Microsoft 365 profiles.

    Without --full/--incremental, runs a full crawl when the last full crawl is older than
    sync.full_interval_days (or there is none), an incremental one otherwise; a crawl that
    did not complete (interrupted, failed, deletions held) runs again first. A crawl that
    plans more deletions than sync.max_deletes deletes nothing (--allow-deletes lifts that).
    Exit 0 all written, 1 some items failed (listed) or deletions were held, 2
    usage/configuration, 3 a service failed.
    """

    def body() -> Outcome:
        if full and incremental:
            raise UsageError(
                "--full and --incremental cannot be used together.",
                "Pick one, or neither to run whatever is due.",
                error_id="usage_kind",
            )
        for address in user or ():
            require_email(address, "credlyctl sync --user jane.doe@contoso.com")
        if log_file is not None and (not str(log_file).strip() or log_file.is_dir()):
            # `--log-file ''` is the current folder: opening it crashed with exit 4.
            raise UsageError(
                f"--log-file needs a file name, not {str(log_file)!r}.",
                "Give a file to append the crawl's JSON lines to, e.g. `--log-file crawl.jsonl`.",
                error_id="usage_log_file",
            )
        names = instance_names(config, instance, all_instances)
        options = SyncOptions(
            kind="full" if full else ("incremental" if incremental else None),
            if_due=if_due,
            dry_run=dry_run,
            users=tuple(user or ()),
            log_file=log_file,
            allow_deletes=allow_deletes,
        )

        def work(settings: InstanceSettings) -> dict[str, Any]:
            from credly_connector.sync.clients import build_clients

            clients = build_clients(settings)
            try:
                with _RichProgress() as progress:
                    report = run_sync(
                        settings,
                        clients.for_sync(),
                        options,
                        progress=progress,
                        warn=terminal().warning,
                    )
            finally:
                clients.close()
            if report.error is not None and report.plan is None and len(names) == 1:
                raise report.error
            return report_dict(report)

        results, code = for_each_instance(
            config, names, work, lambda r: ExitCode(int(r.get("exit_code", 0)))
        )
        data = instances_data(results, code)

        def render(console: Console) -> None:
            for result in results:
                render_report(console, result)

        return Outcome(code, data, render)

    run_command("sync", json_output, body)


def register(app: typer.Typer) -> None:
    app.command("sync")(sync_command)
