"""Streamed writes: a full crawl writes a user's item as soon as Credly has sent all of that
user's badges, while later pages are still being read (issue 12, goal 2).

Why it is possible, and when:
- A user's item depends on every badge sent to the addresses that reach them. In a listing
  sorted by recipient address, once pages 1..p are in, every address below the last one on
  page p has all its badges read: a user whose addresses are all below it can be written.
- Credly documents `sort=key` for badge templates and employees, not for issued badges, so
  `sort=recipient_email` is inferred (docs/fidelity.md, C-BADGE-12) and nothing is taken on
  trust: every page is checked as it arrives (its addresses in order, and each page starting
  at or above the end of the one before), and at the first page out of order nothing more is
  streamed. The crawl's own plan, made from every badge, decides in the end (sync/early.py):
  a streamed item it would write the same is counted, anything else is written after.
- Addresses are compared as credlyctl normalizes them (trimmed, lower-cased), in code point
  order. A Credly that sorts by another collation, ignores the sort or refuses it fails the
  check on the first pages, and the crawl writes after the read, as it would without.
- Only full crawls without a head start stream: a first crawl, or one above the head start's
  size (sync/head_start.py). An incremental crawl writes only what changed; deciding that per
  user while reading would cost every unchanged user a state lookup (goal 3).

Memory (goal 4): users wait as references into the directory listing; an operation, with its
badge entries, is made only while the writer has fewer than `BACKLOG` waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import pairwise

from credly_connector.credly.models import Badge
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.addresses import normalize_email
from credly_connector.identity.entities import entries_digest, item_body_from_entries
from credly_connector.sync.early import WAKE_SECONDS, EarlyWrites
from credly_connector.sync.planner import (
    Action,
    AddressVerdicts,
    PlannedOp,
    user_write,
    write_decision,
)
from credly_connector.sync.records import ItemRecord
from credly_connector.sync.spool import BadgeSpool
from credly_connector.sync.writer import BatchHooks, BatchWriter

# Operations made ahead of the writer: 2 s of writes at 500 items/s, so the writer never
# runs dry between two checks of the backlog, and at most this many bodies' entries wait.
BACKLOG = 1000

# The sort credlyctl asks Credly for (credly/client.py sends it, C-BADGE-12).
SORT = "recipient_email"


class SortedPrefix:
    """Checks that pages come sorted by normalized recipient address, and says below which
    address every badge has been read."""

    def __init__(self) -> None:
        self._next = 1  # the first page not yet checked against the one before it
        self._spans: dict[int, tuple[str, str] | None] = {}  # pages waiting for earlier ones
        self.bound: str | None = None  # every address below it has all its badges read
        self.broken: str | None = None  # why the listing is not sorted, once it shows

    def add(self, number: int, badges: Sequence[Badge]) -> bool:
        """Page `number` has arrived (pages come in any order); True when `bound` rose."""
        if self.broken is not None:
            return False
        keys = [
            normalize_email(b.recipient_email)
            for b in badges
            if b.recipient_email and b.recipient_email.strip()
        ]
        if any(a > b for a, b in pairwise(keys)):
            self.broken = f"page {number} is not sorted by recipient address"
            return False
        self._spans[number] = (keys[0], keys[-1]) if keys else None
        rose = False
        while self._next in self._spans:
            span = self._spans.pop(self._next)
            if span is not None:
                if self.bound is not None and span[0] < self.bound:
                    self.broken = f"page {self._next} starts below the end of the page before"
                    return False
                self.bound, rose = span[1], True
            self._next += 1
        return rose


@dataclass(frozen=True)
class StreamWork:
    """What streamed writes need from the crawl, handed over when its spool exists."""

    users: Callable[[], list[DirectoryUser]]  # waits for the directory listing
    spool: BadgeSpool  # the crawl's own, filled as pages arrive
    opt_out: Collection[str]
    tenant_id: str
    refresh_before: datetime | None  # as the crawl's plan has it (planner.PlanInputs)
    existing: Callable[[str], ItemRecord | None] | None  # a user's item record; None: no items
    writer: Callable[[], BatchWriter]
    hooks: BatchHooks


class StreamedWrites(EarlyWrites):
    """One crawl's streamed writes: a planning thread and a writing thread, from `start` to
    `end_of_read` (no more streaming) and `finish` (written)."""

    EVENT = "streamed"

    def __init__(self) -> None:
        super().__init__()
        self._prefix = SortedPrefix()
        self._cond = threading.Condition()
        self._bound: str | None = None
        self._frozen = False  # the read is over, or the listing is not sorted
        self._planned_all = threading.Event()
        self.stopped_because: str | None = None

    # ---- the crawl's side -----------------------------------------------------------------

    def start(self, work: StreamWork) -> None:
        self._start("stream-plan", self._plan, work)

    def page_read(self, number: int, badges: Sequence[Badge]) -> None:
        """Page `number` of the sorted listing is in the spool."""
        rose = self._prefix.add(number, badges)
        if rose or self._prefix.broken is not None:
            with self._cond:
                self._bound = self._prefix.bound
                if self._prefix.broken is not None and not self._frozen:
                    self._frozen = True
                    self.stopped_because = self._prefix.broken
                self._cond.notify_all()

    def end_of_read(self) -> None:
        """Every page is in: stream nothing more. Once this returns, `already_sent` knows
        every streamed write, and the crawl's plan may be made."""
        with self._cond:
            self._frozen = True
            self._cond.notify_all()
        while self._threads and not self._planned_all.wait(WAKE_SECONDS):
            pass

    def close(self) -> None:
        with self._cond:
            self._frozen = True
            self._cond.notify_all()
        super().close()

    # ---- the planning thread --------------------------------------------------------------

    def _plan(self, work: StreamWork) -> None:
        writer: BatchWriter | None = None
        try:
            try:
                users = work.users()
            except BaseException:  # the crawl meets the same failure and reports it
                return
            verdicts = AddressVerdicts([u for u in users if u.id], work.opt_out)
            waiting = sorted(
                (
                    (max(keys), user, keys)
                    for user in users
                    if user.id and (keys := verdicts.addresses_of(user))
                ),
                key=lambda waiting_user: waiting_user[0],
            )
            del users, verdicts
            taken = 0
            while taken < len(waiting):
                bound = self._wait_for_room(waiting[taken][0], writer)
                if bound is None:
                    return
                while taken < len(waiting) and waiting[taken][0] < bound:
                    if writer is not None and writer.backlog() >= BACKLOG:
                        break
                    _, user, keys = waiting[taken]
                    taken += 1
                    op = _op(work, user, keys)
                    if op is None:
                        continue
                    if writer is None:
                        writer = self._start_writer(work)
                        if writer is None:
                            return
                    with self._cond:
                        if self._frozen:
                            return
                        self._register(op)
                    writer.add([op])
        except BaseException as exc:  # re-raised in the crawl's thread by `finish`
            self._failure = exc
        finally:
            if writer is not None:
                if self._stopped.is_set():
                    writer.cancel()
                writer.end()
            self._planned_all.set()

    def _wait_for_room(self, address: str, writer: BatchWriter | None) -> str | None:
        """The bound, once `address` is below it and the writer has room; None: stop."""
        with self._cond:
            while True:
                if self._frozen or self._stopped.is_set():
                    return None
                bound = self._bound
                full = writer is not None and writer.backlog() >= BACKLOG
                if bound is not None and address < bound and not full:
                    return bound
                self._cond.wait(WAKE_SECONDS)

    def _start_writer(self, work: StreamWork) -> BatchWriter | None:
        writer = self._take_writer(work.writer)
        if writer is None:
            return None
        writer.expect_more()
        hooks = BatchHooks(
            work.hooks.before, work.hooks.after, self._progress.update, work.hooks.waiting
        )
        self._start("stream-write", self._write, writer, hooks)
        return writer

    # ---- the writing thread ---------------------------------------------------------------

    def _write(self, writer: BatchWriter, hooks: BatchHooks) -> None:
        try:
            self.report = writer.write((), hooks)
        except BaseException as exc:  # re-raised in the crawl's thread by `finish`
            self._failure = exc


def _op(work: StreamWork, user: DirectoryUser, addresses: list[str]) -> PlannedOp | None:
    """The user's write as the crawl's plan would make it now, or None (nothing to write)."""
    entries = work.spool.entries_for_addresses(addresses)
    if not entries:
        return None
    digest = entries_digest(user, entries, work.tenant_id)
    existing = work.existing(user.id) if work.existing is not None else None
    action, reason = write_decision(existing, digest, work.refresh_before)
    if action is Action.UNCHANGED:
        return None
    build = partial(item_body_from_entries, user, entries, work.tenant_id)
    return user_write(user, action, reason, digest, len(entries), build)
