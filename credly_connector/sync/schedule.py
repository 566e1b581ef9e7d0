"""When a crawl is due: full when the last completed full crawl is too old, else incremental.

Our decision: a crawl counts as completed when it reached the end, even if some items failed
(outcome `partial`); the failed items keep an empty hash, so the next crawl rewrites them.
A crawl that held its deletions back (outcome `deletes_held`, see docs/sync.md) does not
count: the reconciliation it was meant to do is still pending, so the next call with `--if-due`
runs it again instead of waiting for the next interval. The same holds for a crawl that failed or
was interrupted (killed, Ctrl+C; a `running` crawl whose process died reads as `interrupted`,
see state.py): `--if-due` runs that kind of crawl again at once, so `status`, `diagnose` and the
scheduler agree that the last crawl did not complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from credly_connector.config.resolved import SyncSettings
from credly_connector.sync.state import CrawlRecord, SyncState

COMPLETED = ("succeeded", "partial")
UNFINISHED = ("interrupted", "failed", "deletes_held")


@dataclass(frozen=True)
class Schedule:
    last_full: CrawlRecord | None
    last_incremental: CrawlRecord | None
    next_full: datetime | None  # None: due now (never done)
    next_incremental: datetime | None
    # The latest full or incremental crawl, when it did not complete: it is due again now.
    unfinished: CrawlRecord | None = None

    def due(self, now: datetime) -> tuple[str | None, str]:
        """(kind due now or None, why)."""
        if self.last_full is None:
            return "full", "no full crawl has completed yet"
        if self.next_full is not None and now >= self.next_full:
            return (
                "full",
                f"the last full crawl started at {self.last_full.started_at:%Y-%m-%d %H:%M} UTC",
            )
        if self.next_incremental is not None and now >= self.next_incremental:
            return "incremental", "the incremental interval has passed"
        if self.unfinished is not None:
            crawl = self.unfinished
            return (
                crawl.kind,
                f"the last {crawl.kind} crawl (started {crawl.started_at:%Y-%m-%d %H:%M} UTC) "
                f"did not complete ({crawl.outcome})",
            )
        return None, "no crawl is due"

    @property
    def next_due(self) -> datetime | None:
        if self.next_full is None:
            return None
        if self.next_incremental is None:
            return self.next_full
        return min(self.next_full, self.next_incremental)


def _last_completed(state: SyncState | None, kind: str | None) -> CrawlRecord | None:
    if state is None:
        return None
    for crawl in state.crawl_history(500):
        if crawl.outcome in COMPLETED and (kind is None or crawl.kind == kind):
            return crawl
    return None


def _after(start: datetime, days: float) -> datetime:
    """`start` + `days`; an interval too long for the calendar (1e308, inf) means never."""
    try:
        return start + timedelta(days=days)
    except (OverflowError, ValueError):
        return datetime.max.replace(tzinfo=start.tzinfo)


def _unfinished(state: SyncState | None) -> CrawlRecord | None:
    """The latest full or incremental crawl if it did not complete (--user crawls aside)."""
    if state is None:
        return None
    for crawl in state.crawl_history(500):
        if crawl.kind in ("full", "incremental"):
            return crawl if crawl.outcome in UNFINISHED else None
    return None


def schedule_for(state: SyncState | None, settings: SyncSettings) -> Schedule:
    last_full = _last_completed(state, "full")
    last_incremental = _last_completed(state, "incremental")
    if last_full is None:
        return Schedule(None, last_incremental, None, None, _unfinished(state))
    latest = max(
        (c for c in (last_full, last_incremental) if c is not None), key=lambda c: c.started_at
    )
    return Schedule(
        last_full,
        last_incremental,
        _after(last_full.started_at, settings.full_interval_days),
        _after(latest.started_at, settings.incremental_interval_days),
        _unfinished(state),
    )
