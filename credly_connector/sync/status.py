"""The status of one instance, like the connector page of the Microsoft 365 admin center.

Shared by `credlyctl status`, the demo and the support bundle.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from credly_connector.config.resolved import InstanceSettings
from credly_connector.errors import CredlyctlError
from credly_connector.exit_codes import ExitCode
from credly_connector.sync.clients import build_clients
from credly_connector.sync.connection import connection_state
from credly_connector.sync.schedule import schedule_for
from credly_connector.sync.state import (
    CrawlRecord,
    SyncLock,
    lock_path,
    open_readonly,
    state_path,
)


def _crawl(crawl: CrawlRecord | None) -> dict[str, Any] | None:
    return crawl.to_dict() if crawl else None


def instance_status(settings: InstanceSettings) -> dict[str, Any]:
    connection: dict[str, Any] = {"id": settings.graph.connection_id, "state": None, "error": None}
    remote_failed = False
    clients = build_clients(settings)
    try:
        found = clients.graph.get_connection(settings.graph.connection_id)
        connection["state"] = connection_state(found) if found is not None else "missing"
    except CredlyctlError as exc:
        connection["error"] = exc.to_dict()
        remote_failed = exc.exit_code == ExitCode.REMOTE
        if not remote_failed:
            raise
    finally:
        clients.close()
    path = state_path(settings.sync.state_dir, settings.name)
    lock = SyncLock(lock_path(settings.sync.state_dir, settings.name))
    state = open_readonly(path)
    try:
        schedule = schedule_for(state, settings.sync)
        history = state.crawl_history(20) if state else []
        items = len(state.items()) if state else 0
    finally:
        if state is not None:
            state.close()
    now = datetime.now(UTC)
    due, why = schedule.due(now)
    recent_errors = [
        {"crawl_id": c.id, "started_at": c.started_at.isoformat(), **e}
        for c in history
        for e in c.errors
    ][:10]
    last = history[0] if history else None
    # A crawl running now is judged by the one before it; a `running` crawl whose process
    # died already reads as `interrupted` (state.py). Until a full crawl completes, there is
    # a problem to report (exit 1), whatever the last crawl was.
    settled = next((c for c in history if c.outcome != "running"), None)
    problems = (
        connection["state"] != "ready"
        or schedule.last_full is None
        or (settled is not None and settled.outcome != "succeeded")
    )
    code = ExitCode.REMOTE if remote_failed else (ExitCode.PROBLEMS if problems else ExitCode.OK)
    return {
        "instance": settings.name,
        "state_path": str(path),
        "connection": connection,
        "sync_running": lock.held_elsewhere(),
        "items": items,
        "last_crawl": _crawl(last),
        "last_full_crawl": _crawl(schedule.last_full),
        "last_incremental_crawl": _crawl(schedule.last_incremental),
        "next_crawl": {
            "kind_due_now": due,
            "reason": why,
            "due_at": schedule.next_due.isoformat() if schedule.next_due else None,
        },
        "recent_errors": recent_errors,
        "exit_code": int(code),
    }
