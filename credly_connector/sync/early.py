"""Writes a full crawl sends before its own plan is made, and how the plan then counts them.

Two kinds (issue 12, goal 2: the crawl within 1.15 × max(write floor, read floor)):
- the head start (sync/head_start.py) rewrites the items the state can rebuild while
  Credly is read, after a crawl that read every badge;
- streamed writes (sync/streamed.py) write the item of each user whose badges Credly has all
  sent, when Credly lists badges sorted by recipient address.

What they share, and why it keeps a crawl correct:
- Each registers the user and digest of every write it sends (or tries) before sending it.
- The crawl's own plan, made from every badge, counts a write it would make with the same
  digest as already sent (`already_sent`) instead of keeping it; every other write of that
  plan (a changed body, a deletion) is sent only after the early writes are over (`finish`),
  so an older body never lands after a newer one.
- An early write or failure that the plan then replaces is reported as superseded, not as
  the crawl's (`settle`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from credly_connector.identity.entities import item_id
from credly_connector.sync.planner import Action, Plan, PlannedOp
from credly_connector.sync.ports import Progress
from credly_connector.sync.writer import BatchWriter, WriteReport

# In short waits: on Windows a wait without a timeout holds Ctrl+C back until it ends, and
# early writes may go on for minutes.
WAKE_SECONDS = 0.25

# What is kept of an early write: its digest's first 64 bits (as good as the whole to tell
# two bodies of one user's item apart), times two, plus 1 for a create. A small int rather
# than bytes: 84,000 streamed users at 100,000 cost about 10 MB with the dict's share.
_DIGEST_HEX = 16


class EarlyWrites:
    """The bookkeeping of one crawl's early writes; subclasses run them in their threads."""

    EVENT = "early_writes"  # the crawl log's event for them

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._writer: BatchWriter | None = None
        self._stopped = threading.Event()
        self._guard = threading.Lock()  # between `close` and a thread taking its writer
        self._failure: BaseException | None = None
        self._progress = Relay()
        # user id -> what was sent early (`_sent_key`), keyed by the directory's own id
        # strings
        self._planned: dict[str, int] = {}
        self.report: WriteReport | None = None

    # ---- the crawl's side -----------------------------------------------------------------

    def already_sent(self, user_id: str, digest: str) -> str | None:
        """The action ("create", "update") of the early write of this very item, if one was
        sent (or tried: see `settle`); None when the plan must write it itself."""
        sent = self._planned.get(user_id)
        if sent is None or sent >> 1 != _short(digest):
            return None
        return str(Action.CREATE if sent & 1 else Action.UPDATE)

    def show_progress(self, progress: Progress) -> None:
        """From now on, the early writes' confirmed writes move `progress`."""
        self._progress.attach(progress)

    @property
    def done(self) -> int:
        return self._progress.done

    def finish(self) -> WriteReport | None:
        """Wait for the early writes; their report (None when none was sent). Re-raises what
        stopped them, except a failed directory listing, which the crawl meets itself."""
        self._join()
        if self._failure is not None:
            raise self._failure
        return self.report

    def settle(self, report: WriteReport, plan: Plan) -> Settled:
        """Count, of the early writes and failures, those the crawl's own plan stands by
        (made with `already_sent`, its ops are only what it writes differently or deletes:
        those replace the early ones)."""
        replaced = {item_id(op.user_id) for op in plan.ops if op.user_id in self._planned}
        failed = {f.item_id for f in report.failures}
        superseded = len(replaced - failed)
        kept = replace(
            report,
            written=report.written - superseded,
            failures=[f for f in report.failures if f.item_id not in replaced],
        )
        return Settled(kept, superseded)

    def close(self) -> None:
        """Stop (if still running) and wait: nothing more is sent once this returns."""
        self._stopped.set()
        with self._guard:
            if self._writer is not None:
                self._writer.cancel()
        self._join()

    # ---- for the subclasses ---------------------------------------------------------------

    def _start(self, name: str, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _register(self, op: PlannedOp) -> None:
        """Before `op` is handed to a writer: the plan must know it may have been sent."""
        create = 1 if op.action is Action.CREATE else 0
        self._planned[op.user_id] = _short(op.hash or "") << 1 | create

    def _take_writer(self, make: Callable[[], BatchWriter]) -> BatchWriter | None:
        """A writer, unless the crawl already stopped the early writes."""
        with self._guard:
            if self._stopped.is_set():
                return None
            self._writer = make()
            return self._writer

    def _join(self) -> None:
        # Threads may start threads (the streamed writer's): look again until none is alive.
        while alive := [t for t in list(self._threads) if t.is_alive()]:
            alive[0].join(WAKE_SECONDS)


def _short(digest: str) -> int:
    try:
        return int(digest[:_DIGEST_HEX], 16)
    except ValueError:  # not a hex digest (tests' stand-ins): compared whole
        return hash(digest)


@dataclass(frozen=True)
class Settled:
    """The early writes' part of the crawl, once the crawl's plan is known."""

    report: WriteReport  # counting only the writes the plan stands by
    superseded: int  # early writes the plan then rewrote or deleted


def merged(first: WriteReport, then: WriteReport) -> WriteReport:
    """Two write phases of one crawl as one report."""
    return WriteReport(
        written=first.written + then.written,
        deleted=first.deleted + then.deleted,
        failures=[*first.failures, *then.failures],
        batches=first.batches + then.batches,
        throttled_entries=first.throttled_entries + then.throttled_entries,
        throttle_wait_seconds=first.throttle_wait_seconds + then.throttle_wait_seconds,
        rate_wait_seconds=max(first.rate_wait_seconds, then.rate_wait_seconds),
        retries=first.retries + then.retries,
        final_rate=then.final_rate or first.final_rate,
        peak_rate=max(first.peak_rate, then.peak_rate),
        peak_in_flight=max(first.peak_in_flight, then.peak_in_flight),
        service_error=first.service_error or then.service_error,
    )


class Relay:
    """Early writes' progress: counted from the start, shown once the crawl's write phase
    begins (until then the crawl's progress shows the reading)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: Progress | None = None
        self.done = 0

    def update(self, done: int) -> None:
        with self._lock:
            self.done = done
            target = self._target
        if target is not None:
            target.advance(done)

    def attach(self, progress: Progress) -> None:
        with self._lock:
            self._target = progress
            done = self.done
        progress.advance(done)
