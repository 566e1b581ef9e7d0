"""Connection-level sync checks: the last crawl, the next one due, and expected delays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from credly_connector.config.resolved import InstanceSettings
from credly_connector.diagnostics.checks._common import settings_or_skip
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import CheckResult, fail, note, ok, warn
from credly_connector.diagnostics.registry import register

DATA_DELAY = timedelta(hours=6)  # people data can take this long after connection creation
RUN_NOW = "Run `credlyctl sync` now, and schedule `credlyctl sync --if-due` (e.g. hourly)."


def _when(value: Any) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else None


@register(
    "sync.last_crawl",
    "Last crawl",
    scope="connection",
    table_rows=("initial-sync-incomplete",),
    cause="No crawl has completed yet, the last crawl failed or held its deletions back, or "
    "crawls are overdue.",
    fix="Run `credlyctl sync` and look at its errors; schedule `credlyctl sync --if-due`.",
)
def last_crawl(ctx: DiagnosticContext) -> CheckResult:
    from credly_connector.sync.schedule import schedule_for

    settings = settings_or_skip(ctx)
    if not isinstance(settings, InstanceSettings):
        return settings
    state = ctx.state()
    if state is None:
        return fail(
            "No crawl has run from this machine yet (there is no sync state), so the initial "
            "sync has not completed.",
            RUN_NOW,
            evidence={"state_dir": str(settings.sync.state_dir)},
            table_row="initial-sync-incomplete",
            cause="no_completed_crawl",
        )
    history = ctx.memo("state:history", lambda: list(state.crawl_history(20)))
    schedule = ctx.memo("state:schedule", lambda: schedule_for(state, settings.sync))
    latest = history[0] if history else None
    evidence: dict[str, Any] = {
        "last_crawl": latest.to_dict() if latest else None,
        "last_full": _when(schedule.last_full.started_at) if schedule.last_full else None,
        "last_incremental": _when(schedule.last_incremental.started_at)
        if schedule.last_incremental
        else None,
        "next_due": _when(schedule.next_due),
    }
    if latest is not None and latest.outcome == "deletes_held":
        held = latest.counts.get("deletes_held", "its")
        return warn(
            f"The last crawl ({latest.kind}, started {_when(latest.started_at)}) held {held} "
            "deletions back because they were more than sync.max_deletes, so profiles may "
            "still show badges that should be gone.",
            "Check the plan with `credlyctl sync --full --dry-run`, then run `credlyctl sync "
            "--full --allow-deletes` if the deletions are expected (or raise sync.max_deletes).",
            evidence=evidence,
            cause="deletes_held",
        )
    if schedule.last_full is None:
        what = f" (the last one {latest.outcome})" if latest else ""
        return fail(
            f"No full crawl has completed yet{what}, so the initial sync is incomplete.",
            RUN_NOW,
            evidence=evidence,
            table_row="initial-sync-incomplete",
            cause="no_completed_crawl",
        )
    if latest is not None and latest.outcome in ("failed", "interrupted"):
        errors = "; ".join(str(e.get("message", e)) for e in latest.errors[:2])
        return fail(
            f"The last crawl ({latest.kind}, started {_when(latest.started_at)}) "
            f"{latest.outcome}{': ' + errors if errors else ''}.",
            "Run `credlyctl sync` to see the error and retry; `credlyctl status` lists recent "
            "errors.",
            evidence=evidence,
            cause="last_crawl_failed",
        )
    if latest is not None and latest.outcome == "partial":
        return warn(
            f"The last crawl ({_when(latest.started_at)}) finished, but some items failed.",
            "Run `credlyctl status` for the failed items; the next crawl retries them.",
            evidence=evidence,
            cause="last_crawl_partial",
        )
    due = schedule.next_due
    overdue_after = timedelta(days=settings.sync.incremental_interval_days)
    if due is not None and ctx.now > due + overdue_after:
        return warn(
            f"Crawls are overdue: the next one was due {_when(due)}.",
            "Check that the scheduler runs `credlyctl sync --if-due`, or run `credlyctl sync`.",
            evidence=evidence,
            cause="crawls_overdue",
        )
    return ok(
        f"The last crawl completed {_when(latest.started_at if latest else None)}; the next "
        f"is due {_when(due) or 'now'}.",
        evidence=evidence,
    )


@register(
    "sync.data_delay",
    "Time since the first crawl",
    scope="connection",
    requires=("sync.last_crawl",),
    table_rows=("not-synced-yet",),
    cause="Not a fault: Microsoft 365 can take up to 6 hours after a people-data connection is "
    "created before its data shows on profiles and in Copilot.",
    fix="Wait; nothing to fix.",
)
def data_delay(ctx: DiagnosticContext) -> CheckResult:
    state = ctx.state()

    def oldest() -> Any:
        crawls = state.crawl_history(100_000) if state is not None else []
        return crawls[-1].started_at if crawls else None

    first = ctx.memo("state:first-crawl", oldest)
    if first is not None and ctx.now - first < DATA_DELAY:
        return note(
            f"The first crawl ran at {_when(first)}: data can take up to 6 hours after the "
            "connection is created to appear on profiles and in Copilot (expected behaviour).",
            evidence={"first_crawl": _when(first)},
            table_row="not-synced-yet",
            cause="data_delay_after_creation",
        )
    return ok(
        "The first crawl is more than 6 hours old, so Microsoft 365's initial delay is over.",
        evidence={"first_crawl": _when(first)},
    )


@register(
    "copilot.cites_office",
    "Copilot cites office.com (expected)",
    scope="connection",
    table_rows=("copilot-cites-office",),
    cause="Not a fault: Microsoft 365 aggregates profile data from several sources and "
    "attributes answers to the unified profile (office.com), not to Credly.",
    fix="Nothing to fix.",
)
def copilot_cites_office(ctx: DiagnosticContext) -> CheckResult:
    return note(
        "When Copilot answers from profile data, it cites office.com rather than Credly: this is "
        "expected, because Microsoft 365 attributes aggregated profile data to the unified "
        "profile.",
        table_row="copilot-cites-office",
        cause="copilot_cites_office_com",
    )
