"""One crawl of one instance: read Credly and Entra ID, plan, write, remember.

The CLI calls `run_sync`; clients come in through `SyncClients` so tests can pass fakes.
Order matters for crash safety (see state.py): the user snapshot and delta link are saved
only at the end, and each batch is bracketed by intent and result transactions.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from credly_connector.config.resolved import InstanceSettings
from credly_connector.credly.changes import ChangedBadges, FullReadNeeded
from credly_connector.credly.models import Badge
from credly_connector.errors import CredlyctlError, UsageError
from credly_connector.exit_codes import ExitCode
from credly_connector.graph.errors import DeltaExpiredError
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.addresses import match_keys, normalize_email
from credly_connector.net.retry import RetryWait
from credly_connector.sync.connection import require_people_data_cloud, require_ready
from credly_connector.sync.early import EarlyWrites, merged
from credly_connector.sync.head_start import (
    HEAD_START_MAX_ITEMS,
    SPOOL_CACHE_KIB,
    HeadStart,
    HeadStartWork,
)
from credly_connector.sync.incremental import (
    BADGES_READ_AT,
    PLAN_BASIS,
    changes_window,
    plan_basis,
    spool_changes,
)
from credly_connector.sync.log import CrawlLog
from credly_connector.sync.planner import (
    Action,
    BadgeStore,
    ItemSource,
    Plan,
    PlanInputs,
    PlannedOp,
    plan_sync,
)
from credly_connector.sync.ports import (
    NoProgress,
    Progress,
    SyncClients,
)
from credly_connector.sync.ratelimit import START_RATE, AdaptiveRateLimiter
from credly_connector.sync.records import BadgeObservation, ItemRecord
from credly_connector.sync.schedule import schedule_for
from credly_connector.sync.snapshot import apply_delta, from_snapshot, removed_id, to_snapshot
from credly_connector.sync.spool import BadgeSpool
from credly_connector.sync.state import (
    SyncLock,
    SyncState,
    UnmatchedBadgeRecord,
    lock_path,
    open_readonly,
    open_state,
    state_path,
)
from credly_connector.sync.streamed import StreamedWrites, StreamWork
from credly_connector.sync.writer import BatchHooks, BatchWriter, ItemFailure, WriteReport


@dataclass(frozen=True)
class SyncOptions:
    kind: str | None = None  # "full" | "incremental" | None (whatever is due)
    if_due: bool = False
    dry_run: bool = False
    users: tuple[str, ...] = ()
    log_file: Path | None = None
    allow_deletes: bool = False  # lifts sync.max_deletes for this run


@dataclass
class SyncReport:
    instance: str
    kind: str | None
    dry_run: bool
    started_at: datetime
    ended_at: datetime | None = None
    skipped_reason: str | None = None  # set when --if-due found nothing due
    crawl_id: int | None = None
    plan: Plan | None = None
    write: WriteReport | None = None
    warnings: list[str] = field(default_factory=list)
    requests: dict[str, Any] = field(default_factory=dict)
    error: CredlyctlError | None = None
    # Deletions the accidental-delete guard held back (a dry run: would hold back).
    deletes_held: int = 0

    @property
    def exit_code(self) -> ExitCode:
        if self.error is not None:
            return self.error.exit_code
        if self.write is not None and self.write.failures:
            return ExitCode.PROBLEMS
        if self.deletes_held and not self.dry_run:
            return ExitCode.PROBLEMS
        return ExitCode.OK

    @property
    def failures(self) -> list[ItemFailure]:
        return list(self.write.failures) if self.write else []

    def counts(self) -> dict[str, Any]:
        plan = self.plan
        actions = plan.actions() if plan else {}
        write = self.write
        return {
            "badges_read": plan.badges_read if plan else 0,
            "badges_indexed": plan.badges_indexed if plan else 0,
            "users_read": plan.users_read if plan else 0,
            "users_matched": plan.users_matched if plan else 0,
            "planned": {a: actions.get(a, 0) for a in ("create", "update", "delete", "unchanged")},
            "written": write.written if write else 0,
            "deleted": write.deleted if write else 0,
            "unchanged": actions.get("unchanged", 0),
            "failed": len(write.failures) if write else 0,
            "deletes_held": self.deletes_held,
            "skipped": dict(sorted(plan.badge_skips.items())) if plan else {},
        }

    @property
    def duration_seconds(self) -> float:
        end = self.ended_at or datetime.now(UTC)
        return round((end - self.started_at).total_seconds(), 3)


def _outcome(report: SyncReport) -> str:
    if report.error is not None:
        return "failed"
    if report.deletes_held:
        return "deletes_held"  # not a completed crawl: see schedule.py
    return "partial" if report.failures else "succeeded"


def _now() -> datetime:
    return datetime.now(UTC)


def _reads(clients: SyncClients) -> dict[str, Any]:
    return {name: counter() for name, counter in clients.counters.items()}


class SyncRunner:
    def __init__(
        self,
        settings: InstanceSettings,
        clients: SyncClients,
        options: SyncOptions,
        *,
        progress: Progress | None = None,
        warn: Callable[[str], None] = lambda message: None,
        clock: Callable[[], datetime] = _now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.options = options
        self.progress = progress or NoProgress()
        self._warn_cb = warn
        self.clock = clock
        self._sleep = sleep
        self.log = CrawlLog(options.log_file)
        self.path = state_path(settings.sync.state_dir, settings.name)
        self.lock = SyncLock(lock_path(settings.sync.state_dir, settings.name))

    def warn(self, report: SyncReport, message: str) -> None:
        report.warnings.append(message)
        self.log.event("warning", message=message)
        self._warn_cb(message)

    def run(self) -> SyncReport:
        stop_listening = [stats.listen(self._waited) for stats in self.clients.retry_stats]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            if self.options.dry_run:
                return self._run_dry()
            self.lock.acquire(self.settings.name)
            try:
                state = open_state(self.path, self.settings.name, locked=True)
                try:
                    return self._run(state)
                finally:
                    state.close()
            finally:
                self.lock.release()
        finally:
            sys.setswitchinterval(interval)
            for stop in stop_listening:
                stop()
            if self._spool is not None:
                self._spool.close()
            self.log.close()

    def _waited(self, wait: RetryWait) -> None:
        """A retry wait is never silent: it goes to the crawl log as it starts."""
        self.log.event("retry_wait", **wait.to_dict())

    # ---- choosing the crawl ----------------------------------------------------------------

    def _kind(self, state: SyncState | None, report: SyncReport) -> str | None:
        if self.options.users:
            return "user"
        schedule = schedule_for(state, self.settings.sync)
        due, why = schedule.due(self.clock())
        if self.options.kind == "incremental":
            if schedule.last_full is None or state is None or not state.users_snapshot():
                self.warn(report, "No completed full crawl yet: running a full crawl instead.")
                return "full"
            return "incremental"
        if self.options.kind == "full":
            return "full"
        if due is None:
            if self.options.if_due:
                report.skipped_reason = why
                return None
            return "incremental"
        return due

    # ---- reading ---------------------------------------------------------------------------

    def _read_badges(self, now: datetime, emails: Sequence[str] = ()) -> BadgeSpool:
        """Every badge (or those of `emails`) into a spool, page by page as pages arrive."""
        self.progress.phase("Reading Credly badges and Entra ID users")
        # With early writes (a head start, streamed writes), the writes are the critical path,
        # not reading and planning: a smaller page cache costs those a little time and the
        # crawl less memory (16 MB at 100,000 users / 500,000 badges, issue 12 goal 4).
        early = self._early is not None
        spool = BadgeSpool(SPOOL_CACHE_KIB) if early else BadgeSpool()
        try:
            if not emails:
                self._read_every_badge(spool, now)
            for email in emails:
                spool.add(self.clients.credly.iter_badges(recipient_email=email), now)
            self.log.event("credly_read", badges=spool.count())
        except BaseException:
            spool.close()
            raise
        return spool

    def _read_every_badge(self, spool: BadgeSpool, now: datetime) -> None:
        """Every page into `spool`; sorted by address and streamed when the crawl streams."""
        stream = self._early if isinstance(self._early, StreamedWrites) else None
        read_sorted = self.clients.read_sorted
        if stream is None or read_sorted is None:
            for _, page in self.clients.credly.iter_badge_pages():
                spool.add(page, now)
            return
        assert self._stream_work is not None
        stream.start(self._stream_work(spool))
        for number, page in read_sorted():
            spool.add(page, now)
            stream.page_read(number, page)
        stream.end_of_read()
        if self.clients.sort_refused():
            why = "Credly refused the sort (400 or 422): its pages were read in its own order"
            self.log.event(stream.EVENT, stopped=why)
        elif stream.stopped_because is not None:
            self.log.event(stream.EVENT, stopped=stream.stopped_because)

    def _require_ready(self) -> None:
        require_ready(self.clients.graph, self.settings.graph.connection_id)

    def _read_users(
        self, kind: str, state: SyncState | None, report: SyncReport, ready: Future[None]
    ) -> tuple[list[DirectoryUser], str | None]:
        """The directory, in full or as a delta; `ready` is the connection check, made at the
        same time: only /users/delta requests go out before it passes."""
        if kind == "incremental" and state is not None:
            link = state.delta_link()
            if link and state.has_users_snapshot():
                try:
                    delta = self.clients.graph.users_delta(link)
                except DeltaExpiredError:
                    ready.result()
                    self.warn(
                        report,
                        "The saved Entra ID delta link has expired: listing every user instead.",
                    )
                else:
                    ready.result()
                    changed, removed = list(delta.users), list(delta.removed)
                    touched = {u.id for u in changed} | {removed_id(g) for g in removed}
                    known = {u.id: u for u in map(from_snapshot, state.iter_users_snapshot())}
                    self._users_before = tuple(known[i] for i in touched if i in known)
                    users = apply_delta(known.values(), changed, removed)
                    # Only the change is saved at the end (plus every user a crawl changed
                    # again: a user both changed and removed ends removed).
                    self._user_changes = (changed, [removed_id(g) for g in removed])
                    self.log.event(
                        "users_delta", changed=len(delta.users), removed=len(delta.removed)
                    )
                    return users, delta.delta_link
        # Take the delta link before listing, so changes made while listing replay next time.
        link = None
        if self.clients.latest_delta_link is not None:
            try:
                link = self.clients.latest_delta_link()
            except CredlyctlError as exc:
                ready.result()  # a failed connection check is the error to report
                self.warn(
                    report,
                    f"Could not start an Entra ID delta link ({exc.message}); incremental "
                    "crawls will list every user.",
                )
        ready.result()
        users = list(self.clients.graph.iter_users())
        self.log.event("users_listed", users=len(users))
        return users, link

    def _read_named_users(self, report: SyncReport) -> list[DirectoryUser]:
        self.progress.phase("Looking up the named users")
        found = self.clients.graph.find_users_by_addresses(list(self.options.users))
        users: list[DirectoryUser] = []
        seen: set[str] = set()
        for value in found.values() if isinstance(found, dict) else found:
            for user in value if isinstance(value, list | tuple) else [value]:
                if isinstance(user, DirectoryUser) and user.id not in seen:
                    seen.add(user.id)
                    users.append(user)
        known = {a for u in users for a in match_keys(u)}
        for email in self.options.users:
            if normalize_email(email) not in known and not users:
                self.warn(report, f"No directory user has the address {email}.")
        return users

    # ---- the crawl -------------------------------------------------------------------------

    def _plan(
        self,
        kind: str,
        state: SyncState | None,
        report: SyncReport,
        spool: BadgeSpool,
        users: list[DirectoryUser],
        only: frozenset[str] | None,
    ) -> Plan:
        inputs = self._plan_inputs
        # The state streams its records in user order; 100,000 at once would weigh 50 MB.
        items: Mapping[str, ItemRecord] | ItemSource = state if state is not None else {}
        if isinstance(self._early, HeadStart):
            items = self._early.take_items()  # as before the head start wrote any
        if self._early is not None:
            inputs = partial(inputs, already_sent=self._early.already_sent)
        plan = plan_sync(inputs(kind, state, report, spool, users, items, only))
        for warning in plan.warnings:
            self.warn(report, warning)
        self.log.event("plan", kind=kind, **{k: v for k, v in plan.actions().items()})
        return plan

    def _plan_inputs(
        self,
        kind: str,
        state: SyncState | None,
        report: SyncReport,
        badges: BadgeStore,
        users: list[DirectoryUser],
        items: Mapping[str, ItemRecord] | ItemSource,
        only: frozenset[str] | None,
        already_sent: Callable[[str, str], str | None] | None = None,
    ) -> PlanInputs:
        cleanup = (
            kind == "full"
            and (state is None or state.is_new)
            and not (state is not None and state.get_meta("connection_created_empty") == "1")
        )
        return PlanInputs(
            badges=badges,
            users=users,
            items=items,
            tenant_id=self.settings.entra.tenant_id,
            now=self._now,
            opt_out=self.settings.sync.opt_out,
            refresh_before=self._refresh_before(kind, state, report),
            cleanup_unknown=cleanup,
            only_user_ids=only,
            already_sent=already_sent,
        )

    def _refresh_before(
        self, kind: str, state: SyncState | None, report: SyncReport
    ) -> datetime | None:
        """Full crawls rewrite every item last written before the full cycle began."""
        if kind != "full":
            return None
        cycle = state.full_cycle_start() if state is not None else None
        return cycle or report.started_at

    def _run_dry(self) -> SyncReport:
        state = open_readonly(self.path)
        try:
            report = SyncReport(self.settings.name, None, True, self.clock())
            kind = self._kind(state, report)
            report.kind = kind
            if kind is None:
                report.ended_at = self.clock()
                return report
            users, only, spool = self._read(kind, state, report)
            report.plan = self._plan(kind, state, report, spool, users, only)
            self._guard(report.plan, report)
            report.requests = _reads(self.clients)
            report.ended_at = self.clock()
            return report
        finally:
            if state is not None:
                state.close()

    def _read(
        self, kind: str, state: SyncState | None, report: SyncReport
    ) -> tuple[list[DirectoryUser], frozenset[str] | None, BadgeSpool]:
        # One moment for every rule that depends on time (expiry), however long reading takes.
        self._now = self.clock()
        if kind == "user":
            self._require_ready()
            users = self._read_named_users(report)
            emails = sorted(
                {normalize_email(e) for e in self.options.users}
                | {a for u in users for a in match_keys(u)}
            )
            named = self._spool = self._read_badges(self._now, emails)
            return users, frozenset(u.id for u in users), named
        # Credly and the directory are independent: read them at the same time. Each page
        # goes to the spool as it arrives; matching waits for the directory.
        if self.clients.sign_in is not None:
            # Signed in first, the connection check and the directory's first request go out
            # together instead of one after the other, and a refused sign-in is asked once.
            self.clients.sign_in()
        with ThreadPoolExecutor(1, thread_name_prefix="read-users") as pool:
            ready: Future[None] = Future()
            users_future = pool.submit(self._read_users, kind, state, report, ready)
            try:
                self._require_ready()
            except BaseException:
                ready.cancel()  # the directory is not listed for a crawl that cannot write
                raise
            ready.set_result(None)
            head = self._early if isinstance(self._early, HeadStart) else None
            if head is not None and state is not None:
                head.start(self._head_work(kind, state, report, users_future))
            if isinstance(self._early, StreamedWrites) and state is not None:
                self._stream_work = partial(
                    self._streaming, kind, state, report, lambda: users_future.result()[0]
                )
            changes = self._read_changes(kind, state)
            if head is not None:
                head.wait_until_writing()
            spool = None if changes is not None else self._read_badges(self._now)
            self._spool = spool
            users, self._delta_link = users_future.result()
        if changes is not None and state is not None:
            if self._user_changes is not None:
                return self._spool_changes(state, changes.badges, users)
            # The directory was listed in full (the delta link expired): every user may have
            # changed, so every badge is read after all.
            self.log.event("credly_changes", used=False, reason="users listed in full")
            spool = self._spool = self._read_badges(self._now)
        assert spool is not None
        return users, None, spool

    def _read_changes(self, kind: str, state: SyncState | None) -> ChangedBadges | None:
        """Only the badges Credly changed, when an incremental crawl can rely on that."""
        read = self.clients.read_changes
        if kind != "incremental" or state is None or read is None:
            return None
        since = changes_window(state, self._basis())
        if since is None:
            self.log.event("credly_changes", used=False, reason="no baseline in the state")
            return None
        self.progress.phase("Reading the Credly badges changed since the last crawl")
        found = read(since)
        if isinstance(found, FullReadNeeded):
            self.log.event("credly_changes", used=False, reason=found.reason, verdict=found.verdict)
            return None
        self.log.event(
            "credly_changes",
            used=True,
            since=since.isoformat(),
            changed=len(found.badges),
            total=found.total,
        )
        return found

    def _spool_changes(
        self, state: SyncState, changed: Sequence[Badge], users: list[DirectoryUser]
    ) -> tuple[list[DirectoryUser], frozenset[str] | None, BadgeSpool]:
        assert self._user_changes is not None
        spool, only = spool_changes(
            state,
            changed,
            users,
            [*self._users_before, *self._user_changes[0]],
            self._user_changes[1],
            self._now,
        )
        self._spool = spool
        self._changes_only = True
        self.log.event("credly_read", badges=spool.count(), changed_only=True, users=len(only))
        return users, only, spool

    def _basis(self) -> str:
        return plan_basis(self.settings.entra.tenant_id, self.settings.sync.opt_out)

    def _head_work(
        self,
        kind: str,
        state: SyncState,
        report: SyncReport,
        users: Future[tuple[list[DirectoryUser], str | None]],
    ) -> HeadStartWork:
        def plan(
            badges: BadgeStore, listed: list[DirectoryUser], items: Mapping[str, ItemRecord]
        ) -> Plan:
            return plan_sync(self._plan_inputs(kind, state, report, badges, listed, items, None))

        assert self._crawl_id is not None
        return HeadStartWork(
            users=lambda: users.result()[0],
            plan=plan,
            writer=lambda items: self._writer(state, items, head_start=True),
            hooks=self._hooks(state, self._crawl_id),
            now=self._now,
            skipped=lambda why: self.log.event("head_start", skipped=why),
        )

    def _streaming(
        self,
        kind: str,
        state: SyncState,
        report: SyncReport,
        users: Callable[[], list[DirectoryUser]],
        spool: BadgeSpool,
    ) -> StreamWork:
        assert self._crawl_id is not None
        has_items = state.item_count() > 0

        def existing(user_id: str) -> ItemRecord | None:
            with _STATE_LOCK:
                return state.item_for_user(user_id)

        return StreamWork(
            users=users,
            spool=spool,
            opt_out=self.settings.sync.opt_out,
            tenant_id=self.settings.entra.tenant_id,
            refresh_before=self._refresh_before(kind, state, report),
            existing=existing if has_items else None,
            writer=lambda: self._writer(state, 0, streamed=True),
            hooks=self._hooks(state, self._crawl_id),
        )

    def _early_writes(self, kind: str, state: SyncState) -> EarlyWrites | None:
        """A full crawl's head start, or else its streamed writes when Credly is read sorted."""
        head = self._head_start(kind, state)
        if head is not None or kind != "full" or self.clients.read_sorted is None:
            return head
        return StreamedWrites()

    def _head_start(self, kind: str, state: SyncState) -> HeadStart | None:
        """A full crawl's head start (sync/head_start.py), when the state can stand in and
        the organization is small enough for its memory."""
        if kind != "full" or changes_window(state, self._basis()) is None:
            return None
        items = state.item_count()
        if items > HEAD_START_MAX_ITEMS:
            self.log.event("head_start", skipped=f"{items} items, more than {HEAD_START_MAX_ITEMS}")
            return None
        return HeadStart(state, _STATE_LOCK)

    _delta_link: str | None = None
    _now: datetime
    # Set when a full crawl writes before its plan is made: a head start or streamed writes
    # (sync/early.py).
    _early: EarlyWrites | None = None
    # Makes the streamed writes' work once the crawl's spool exists (sync/streamed.py).
    _stream_work: Callable[[BadgeSpool], StreamWork] | None = None
    _crawl_id: int | None = None
    # One rate for the whole crawl, early writes included.
    _limiter: AdaptiveRateLimiter | None = None
    # The crawl's badges, closed (and its file deleted) when the run ends.
    _spool: BadgeSpool | None = None
    # Set when only the badges Credly changed were read (sync/incremental.py).
    _changes_only = False
    # The users /users/delta reported, as the snapshot had them.
    _users_before: tuple[DirectoryUser, ...] = ()
    # Set when the directory was read as a delta: (changed users, removed ids).
    _user_changes: tuple[list[DirectoryUser], list[str]] | None = None

    def _run(self, state: SyncState) -> SyncReport:
        report = SyncReport(self.settings.name, None, False, self.clock())
        kind = self._kind(state, report)
        report.kind = kind
        if kind is None:
            report.ended_at = self.clock()
            return report
        crawl_id = state.begin_crawl(kind, report.started_at)
        report.crawl_id = self._crawl_id = crawl_id
        self.log.event("crawl_start", instance=self.settings.name, kind=kind, crawl=crawl_id)
        users: list[DirectoryUser] = []
        spool: BadgeSpool | None = None
        try:
            self._early = self._early_writes(kind, state)
            users, only, spool = self._read(kind, state, report)
            plan = self._plan(kind, state, report, spool, users, only)
            report.plan = plan
            recorded = self._record_observations(state, spool, report.started_at)
            try:
                held = self._guard(plan, report)
                if held:
                    self._state_call(
                        lambda: state.hold_deletes((op.item_id, op.user_id, op.upn) for op in held)
                    )
                report.write = self._write(state, crawl_id, plan, hold_deletes=bool(held))
            except BaseException:
                recorded(cancel=True)
                raise
            recorded(cancel=False)
        except CredlyctlError as exc:
            report.error = exc
        except KeyboardInterrupt:
            self._stop_early_writes()
            self._record_interrupted(state, crawl_id, report)
            raise
        finally:
            self._stop_early_writes()
            report.ended_at = self.clock()
            report.requests = _reads(self.clients)
        error = report.error or (report.write.service_error if report.write else None)
        report.error = error
        errors = [
            {
                "item_id": f.item_id,
                "upn": f.user_principal_name,
                "status": f.status,
                "code": f.code,
                "message": f.message,
            }
            for f in report.failures
        ]
        if error is not None:
            errors.insert(0, {"message": error.message, "hint": error.hint, "id": error.error_id})
        elif report.deletes_held:
            message, hint = self._held_sentences(report.deletes_held, dry_run=False)
            errors.insert(0, {"message": message, "hint": hint, "id": "deletes_held"})
        outcome = _outcome(report)
        if spool is not None and report.plan is not None and error is None:
            self._record_badges(state, spool, kind, report.started_at)
        # A crawl that held deletions may have read a broken world (that is what the guard
        # suspects): keep the last good snapshot and delta link, so the next crawl reads the
        # same changes again and plans the same deletions.
        save_users = (
            error is None and kind != "user" and report.plan is not None and not report.deletes_held
        )
        state.finish_crawl(
            crawl_id,
            outcome,
            {
                **report.counts(),
                "duration_seconds": report.duration_seconds,
                "requests": report.requests,
            },
            errors,
            users=self._snapshot_rows(users) if save_users else None,
            users_removed=self._user_changes[1] if save_users and self._user_changes else None,
            delta_link=self._delta_link if save_users else None,
            now=report.ended_at,
        )
        self.log.event(
            "crawl_end", crawl=crawl_id, outcome=outcome, counts=report.counts(), errors=errors
        )
        return report

    def _record_observations(
        self, state: SyncState, spool: BadgeSpool, started: datetime
    ) -> Callable[..., None]:
        """Record how each badge was seen while the writes go on, and return the function
        that waits for it (re-raising its failure, or stopping it with `cancel=True`).

        The write phase waits on Graph's rate, not on the CPU, so the badge records (80,000
        rows at 20,000 users) cost the crawl no time there. Each chunk is its own short
        transaction, taken in turn with the writer's. Observations are facts about Credly:
        they are recorded once the read is complete, whatever the writes then meet.
        """
        failure: list[BaseException] = []
        stop = threading.Event()

        def record() -> None:
            try:
                chunk: list[BadgeObservation] = []
                for seen in spool.observations():
                    chunk.append(seen)
                    if len(chunk) == RECORD_CHUNK:
                        if stop.is_set():
                            return
                        self._state_call(partial(state.record_badges, chunk, started))
                        chunk = []
                if chunk and not stop.is_set():
                    self._state_call(partial(state.record_badges, chunk, started))
            except BaseException as exc:  # re-raised in the crawl's thread
                failure.append(exc)

        thread = threading.Thread(target=record, name="record-badges", daemon=True)
        thread.start()

        def wait(*, cancel: bool) -> None:
            if cancel:
                stop.set()
            thread.join()
            if failure and not cancel:
                raise failure[0]

        return wait

    def _record_badges(
        self, state: SyncState, spool: BadgeSpool, kind: str, started: datetime
    ) -> None:
        if kind == "user":
            return
        unmatched = (UnmatchedBadgeRecord(*row) for row in spool.reached_nobody())
        if self._changes_only:
            state.replace_unmatched_badges(unmatched, started, read=spool.ids())
        else:
            # This crawl read every badge: diagnosis searches the unmatched ones, and badges
            # it did not see are gone from Credly.
            state.replace_unmatched_badges(unmatched, started)
            forgotten = state.forget_badges_not_in(spool.ids())
            if forgotten:
                self.log.event("badges_gone", badges=forgotten)
        # The state now knows every badge as of `started`: the next incremental crawl may
        # read only what changed since.
        state.set_meta(BADGES_READ_AT, started.isoformat())
        state.set_meta(PLAN_BASIS, self._basis())

    def _stop_early_writes(self) -> None:
        """Whatever ended the crawl, early writes send nothing more once this returns."""
        if self._early is not None:
            self._early.close()

    def _record_interrupted(self, state: SyncState, crawl_id: int, report: SyncReport) -> None:
        """Ctrl+C: say so in the state (best effort; a crawl left `running` reads the same)."""
        message = "Stopped by the user (Ctrl+C) before the crawl completed."
        hint = "Run `credlyctl sync` again; it resumes where this one stopped."
        self.log.event("crawl_end", crawl=crawl_id, outcome="interrupted", message=message)
        try:
            with _STATE_LOCK:
                state.finish_crawl(
                    crawl_id,
                    "interrupted",
                    {**report.counts(), "duration_seconds": report.duration_seconds},
                    [{"message": message, "hint": hint, "id": "interrupted"}],
                )
        except CredlyctlError:
            pass

    def _snapshot_rows(self, users: list[DirectoryUser]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The snapshot rows to save: the changed users after a delta, else every user (one
        at a time: 100,000 snapshot dicts at once would cost as much as the users)."""
        if self._user_changes is not None:
            removed = set(self._user_changes[1])
            users = [u for u in self._user_changes[0] if u.id not in removed]
        return ((u.id, to_snapshot(u)) for u in users)

    # ---- the accidental-delete guard -------------------------------------------------------

    def _held_sentences(self, count: int, *, dry_run: bool) -> tuple[str, str]:
        limit = self.settings.sync.max_deletes
        if dry_run:
            message = (
                f"This crawl plans {count} deletions, more than sync.max_deletes ({limit}), so "
                "a real run would hold all of them back and delete nothing."
            )
        else:
            message = (
                f"{count} deletions were held back and nothing was deleted, because this crawl "
                f"planned more than sync.max_deletes ({limit})."
            )
        hint = (
            "Check the plan with `credlyctl sync --full --dry-run`, then run "
            "`credlyctl sync --full --allow-deletes` if the deletions are expected "
            "(or raise sync.max_deletes)."
        )
        return message, hint

    def _guard(self, plan: Plan, report: SyncReport) -> list[PlannedOp]:
        """The deletions to hold back: all of them when there are more than the limit."""
        limit = self.settings.sync.max_deletes
        deletes = [op for op in plan.ops if op.action is Action.DELETE]
        if self.options.allow_deletes or limit == 0 or len(deletes) <= limit:
            return []
        report.deletes_held = len(deletes)
        message, hint = self._held_sentences(len(deletes), dry_run=report.dry_run)
        self.warn(report, f"{message} {hint}")
        return deletes

    def _write(
        self, state: SyncState, crawl_id: int, plan: Plan, *, hold_deletes: bool = False
    ) -> WriteReport:
        writes = [op for op in plan.writes if not (hold_deletes and op.action is Action.DELETE)]
        # The writes sent early as planned (head start, streamed) are in the plan's counts,
        # not its ops.
        self.progress.phase("Writing items to Microsoft 365", len(writes) + sum(plan.sent.values()))
        first, early = self._early, None
        if first is not None:
            first.show_progress(self.progress)
            early = first.finish()
        if first is not None and early is not None:
            # The plan holds only what the early writes did not send as planned; it is sent
            # once they are over (finish), so no older body lands after a newer one.
            settled = first.settle(early, plan)
            early = settled.report
            self.log.event(
                first.EVENT,
                written=early.written,
                superseded=settled.superseded,
                failed=len(early.failures),
            )
            if early.service_error is not None:
                return early
        done = first.done if first is not None else 0
        writer = self._writer(state, len(writes))
        hooks = self._hooks(state, crawl_id)
        hooks.progress = lambda written: self.progress.advance(done + written)
        report = writer.write(writes, hooks)
        if early is not None:
            report = merged(early, report)
        if writes or early is not None:
            remember = f"{writer.limiter.rate_to_remember():.2f}"
            self._state_call(lambda: state.set_meta(WRITE_RATE_KEY, remember))
        return report

    def _writer(self, state: SyncState, items: int, **about: Any) -> BatchWriter:
        """A writer for `items` writes, sharing the crawl's one rate limiter."""
        if self._limiter is None:
            start = remembered_write_rate(state)
            self._limiter = AdaptiveRateLimiter(
                self.settings.sync.max_write_rate,
                start=start or START_RATE,
                resumed=start is not None,
                sleep=self._sleep,
            )
        self.log.event("write_start", items=items, rate=round(self._limiter.rate, 2), **about)
        return BatchWriter(
            self.clients.graph.batch,
            self.settings.graph.connection_id,
            concurrency=self.settings.sync.write_concurrency,
            sleep=self._sleep,
            limiter=self._limiter,
        )

    def _hooks(self, state: SyncState, crawl_id: int) -> BatchHooks:
        """Intent before each batch and results after it, in the state (crash safety)."""

        def before(batch: Sequence[PlannedOp]) -> None:
            state_ops = [
                (op.item_id, op.user_id, "delete" if op.action == "delete" else "put", op.upn)
                for op in batch
            ]
            self._state_call(lambda: state.mark_intents(state_ops))

        def after(
            written: Sequence[tuple[str, str]],
            deleted: Sequence[str],
            failed: Sequence[ItemFailure],
        ) -> None:
            self._state_call(
                lambda: state.record_results(
                    crawl_id, written, deleted, [(f.item_id, f.message) for f in failed]
                )
            )
            self.log.event("batch", written=len(written), deleted=len(deleted), failed=len(failed))
            for failure in failed:
                self.log.event("item_failed", **failure.to_dict())

        return BatchHooks(before, after, self.progress.advance, self._waited)

    def _state_call(self, call: Callable[[], None]) -> None:
        # One SQLite connection shared by writer threads: serialize access to it.
        with _STATE_LOCK:
            call()


_STATE_LOCK = threading.Lock()

# Seconds a thread may hold the GIL while another waits (Python's default: 0.005). SQLite
# gives the GIL up for every row it steps through and must then wait for it again, so a
# spool query in one thread can wait out the whole interval on each row while another thread
# computes (py-spy showed the head start's plan spending most of its time in row fetches
# while Credly pages were parsed).
SWITCH_INTERVAL = 0.0005

# The write rate the last crawl found Graph accepting (AdaptiveRateLimiter.rate_to_remember):
# the next one resumes a little under it instead of probing up from 25 items/s again (a
# tenant's allowance rarely changes between crawls; when it does, the limiter finds out).
WRITE_RATE_KEY = "write_rate"
RECORD_CHUNK = 2000  # badge observations per transaction while the writes go on


def remembered_write_rate(state: SyncState) -> float | None:
    try:
        rate = float(state.get_meta(WRITE_RATE_KEY) or "nan")
    except ValueError:
        return None
    return rate if math.isfinite(rate) and rate > 0 else None


def run_sync(
    settings: InstanceSettings,
    clients: SyncClients,
    options: SyncOptions,
    **kwargs: Any,
) -> SyncReport:
    if options.users and options.kind:
        raise UsageError(
            "--user cannot be combined with --full or --incremental.",
            "A --user run syncs only the named users; run it alone.",
            error_id="sync_usage",
        )
    require_people_data_cloud(settings)
    return SyncRunner(settings, clients, options, **kwargs).run()
