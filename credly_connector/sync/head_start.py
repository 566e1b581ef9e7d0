"""A full crawl's head start: refresh the items the state can rebuild while Credly is read.

A user's item depends on all of their badges, which may be on any Credly page, so a crawl
that waits for the last page before writing spends the whole read on top of its write floor
(issue 12, goal 2). But a full crawl rewrites every item anyway, and after a crawl that read
every badge the state holds each indexable badge's item entry (records.BadgeDetail). So as
soon as the directory is listed, the items as last known can be rebuilt and written while
Credly is still being read. What this may and may not do:

- It runs only when the state can stand in for Credly, as for a changed-only incremental
  crawl (`incremental.changes_window`): a crawl of this version read every badge, and the
  tenant, opt-out list and item format are the same.
- It rewrites only items the state says exist, for users of the fresh directory listing:
  no item is created and none deleted, so the accidental-delete guard still sees every
  deletion of the crawl's own plan first.
- Credly is read once the head start writes (`wait_until_writing`).
- The crawl's own plan, made from what Credly says now, decides. An item the head start wrote
  with the same digest is counted, not written again; every other write of that plan (a changed
  user, a new item, a deletion) is sent only once the head start is over, so an older body
  can never land after a newer one.
- A head-start failure for an item the plan then writes differently or deletes is not the
  crawl's failure: the plan's own write supersedes it.

A crawl that stops at any moment leaves what the writer always leaves: intents marked before
each batch and results after it (state.py), and the next crawl resumes the full cycle.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from credly_connector.graph.models import DirectoryUser
from credly_connector.sync.early import WAKE_SECONDS, EarlyWrites
from credly_connector.sync.planner import Action, BadgeStore, Plan, PlannedOp
from credly_connector.sync.records import ItemRecord
from credly_connector.sync.spool import BadgeSpool
from credly_connector.sync.state import SyncState
from credly_connector.sync.writer import BatchHooks, BatchWriter

# Memory (issue 12, goal 4: 200 MB at 20,000 users, 300 MB at 100,000). The head start's
# spool is read one user at a time by key: a small page cache does (its file stays in the
# system's cache). The crawl's own spool is only read off the critical path when there is a
# head start, so it gets a smaller cache too.
CACHE_KIB = 2 * 1024
SPOOL_CACHE_KIB = 16 * 1024
# Beyond this many items the head start is skipped: while it writes, its plan's operations
# and the state's item records live beside the crawl's own plan (measured against a first
# crawl: +150 MB at 100,000 users / 84,499 items before the smaller caches above; +7 MB at
# 20,000 users / 16,076 items with them). Such a crawl streams its writes instead when
# Credly sorts its listing (sync/streamed.py), or writes after the read, as a first crawl.
HEAD_START_MAX_ITEMS = 40_000

_TAKEN: Future[dict[str, ItemRecord]] = Future()
_TAKEN.set_exception(RuntimeError("the items were taken already"))

PlanFrom = Callable[[BadgeStore, list[DirectoryUser], Mapping[str, ItemRecord]], Plan]


@dataclass(frozen=True)
class HeadStartWork:
    """What the head start needs from the crawl, handed over when it starts."""

    users: Callable[[], list[DirectoryUser]]  # waits for the directory listing
    plan: PlanFrom
    writer: Callable[[int], BatchWriter]  # a writer for this many items
    hooks: BatchHooks
    now: datetime  # the crawl's one moment for expiry
    skipped: Callable[[str], None]  # why there is no head start after all


class HeadStart(EarlyWrites):
    """One crawl's head start, in its own thread from `start` to `finish` (or `close`)."""

    EVENT = "head_start"

    def __init__(self, state: SyncState, lock: threading.Lock) -> None:
        super().__init__()
        self._state, self._lock = state, lock
        self._items: Future[dict[str, ItemRecord]] = Future()
        self._spool: BadgeSpool | None = None
        self._writing = threading.Event()  # set when the writes begin, or there are none

    # ---- the crawl's side -----------------------------------------------------------------

    def start(self, work: HeadStartWork) -> None:
        self._start("head-start", self._run, work)

    def take_items(self) -> dict[str, ItemRecord]:
        """The state's items as they were before any head-start write: what the crawl's own
        plan compares with, so that it is the plan the crawl would make without one. Taken
        once: the head start keeps no reference (100,000 records weigh about 40 MB)."""
        items = self._items.result()
        self._items = _TAKEN
        return items

    def wait_until_writing(self) -> None:
        """Return once the head start is writing (or will not write).

        The crawl reads Credly only then: parsing pages and planning the head start both need
        the interpreter, and only the head start's writes are on the crawl's critical path
        (they take items ÷ rate; reading and planning the rest take far less at any rate
        Graph has allowed, and happen while they run)."""
        while not self._writing.wait(WAKE_SECONDS):
            pass

    def close(self) -> None:
        """Stop (if still running), wait, and delete the head start's spool."""
        super().close()
        if not self._items.done():
            self._items.cancel()
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    # ---- the head start's thread ----------------------------------------------------------

    def _run(self, work: HeadStartWork) -> None:
        try:
            self._run_to_the_end(work)
        finally:
            self._writing.set()

    def _run_to_the_end(self, work: HeadStartWork) -> None:
        try:
            with self._lock:
                items = self._state.items()
            self._items.set_result(items)
            try:
                self._spool = self._rebuild(work.now)
            except sqlite3.Error as exc:  # a head start is a gain, never a crawl's failure
                work.skipped(f"the state's badges could not be read ({exc})")
                return
            try:
                users = work.users()
            except BaseException:  # the crawl meets the same failure and reports it
                return
            if self._stopped.is_set():
                return
            ops = [op for op in work.plan(self._spool, users, items).ops if _refresh(op)]
            del items, users  # the writes take long: hold only what they need
            for op in ops:
                self._register(op)
            count = len(ops)
            writer = self._take_writer(lambda: work.writer(count))
            if writer is None:
                return
            hooks = BatchHooks(
                work.hooks.before, work.hooks.after, self._progress.update, work.hooks.waiting
            )
            self._writing.set()
            # Handed over, not kept: the writer's queue then holds each op until it is sent.
            queue = deque(ops)
            del ops
            self.report = writer.write(_drained(queue), hooks)
        except BaseException as exc:  # re-raised in the crawl's thread by `finish`
            self._failure = exc
            if not self._items.done():
                self._items.set_exception(exc)

    def _rebuild(self, now: datetime) -> BadgeSpool:
        """Every badge an item was last built from, its expiry checked again."""
        spool = BadgeSpool(cache_kib=CACHE_KIB)
        try:
            spool.add_indexed_from(self._state.path, now)
        except BaseException:
            spool.close()
            raise
        return spool


def _drained(queue: deque[PlannedOp]) -> Iterator[PlannedOp]:
    while queue:
        yield queue.popleft()


def _refresh(op: PlannedOp) -> bool:
    return op.action is Action.UPDATE
