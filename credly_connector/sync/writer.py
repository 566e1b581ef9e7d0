"""Writes planned item operations through Graph's `$batch`, never more than 25 at once.

Graph documents two limits kept here: at most 20 requests per `$batch`, and at most 25
concurrent operations against one connection ("known limitations" of
https://learn.microsoft.com/graph/api/resources/connectors-api-overview), `$batch` entries
included. `write_concurrency` batches are in flight at a time, each of at most
25 // write_concurrency entries, so a connection never sees more than 25 of our operations.

Retries follow the one policy of `net/retry.py`, per entry, and do not nest: each entry has
6 attempts in all, whether an attempt failed as an entry (429, 503, 504, no answer) or with
the whole `$batch` (network, 503), because the Graph client's own retries of the envelope are
paid from the entries' attempts (`attempt_budget`). A throttled entry goes back in the queue
until its own Retry-After has passed while the other work goes on; every wait is reported to
`BatchHooks.waiting` (the sync log), never silent. A Retry-After above the cap stops the run
at once (exit 3) and says what Graph asked.

An entry refused for good (e.g. 400) is an item failure. An entry that used up its attempts
while other writes went through is an item failure too: its state row keeps an empty hash, so
the next sync writes it again (hardening finding L10). When nothing at all went through while
an entry used up its attempts, Graph is failing: the run stops (exit 3) after the work in
flight is recorded.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from credly_connector.errors import CredlyctlError, Retryable, is_retryable
from credly_connector.graph.batch import MAX_BATCH, BatchRequest, BatchResponse
from credly_connector.net.retry import (
    RetryAfterTooLong,
    RetryPolicy,
    RetryWait,
    WaitReason,
    attempt_budget,
    backoff_delay,
)
from credly_connector.sync.planner import Action, PlannedOp
from credly_connector.sync.ratelimit import AdaptiveRateLimiter

BATCH_LIMIT = MAX_BATCH
# Graph: "Applications are limited to 25 concurrent operations against a connection".
MAX_IN_FLIGHT = 25
# A batch carries at most this many seconds of writes at the current rate.
BATCH_SECONDS = 0.5


# Sends one $batch and returns its entries' answers; raises for a failure of the whole batch.
SendBatch = Callable[[list[BatchRequest]], list[BatchResponse]]
Clock = Callable[[], float]


@dataclass
class ItemFailure:
    item_id: str
    user_principal_name: str | None
    action: str
    status: int | None
    code: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "user_principal_name": self.user_principal_name,
            "action": self.action,
            "status": self.status,
            "code": self.code,
            "message": self.message,
        }


@dataclass
class WriteReport:
    written: int = 0
    deleted: int = 0
    failures: list[ItemFailure] = field(default_factory=list)
    batches: int = 0
    throttled_entries: int = 0
    throttle_wait_seconds: float = 0.0
    rate_wait_seconds: float = 0.0
    retries: int = 0
    final_rate: float = 0.0
    peak_rate: float = 0.0
    peak_in_flight: int = 0
    service_error: CredlyctlError | None = None


class WriteServiceError(Retryable):
    """Graph kept failing: the crawl cannot finish now."""


@dataclass
class BatchHooks:
    """Called around each batch; the runner records intent and results in the state."""

    before: Callable[[Sequence[PlannedOp]], None]
    after: Callable[[Sequence[tuple[str, str]], Sequence[str], Sequence[ItemFailure]], None]
    progress: Callable[[int], None] = lambda done: None
    # Entries wait before their next attempt (throttled or failed): one call per batch answer.
    waiting: Callable[[RetryWait], None] = lambda wait: None


def item_url(connection_id: str, item_id: str) -> str:
    return f"/external/connections/{connection_id}/items/{item_id}"


def _error_of(body: Any) -> tuple[str | None, str]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = error.get("message") if isinstance(error.get("message"), str) else ""
        return code, message[:300]
    return None, ""


def batch_size_for(concurrency: int) -> int:
    """Entries per `$batch` so that `concurrency` batches never exceed 25 in flight."""
    return max(1, min(BATCH_LIMIT, MAX_IN_FLIGHT // max(1, concurrency)))


@dataclass
class _Entry:
    op: PlannedOp
    attempts: int = 0
    not_before: float = 0.0
    # How many writes Graph had confirmed when this entry was first sent: if that number has
    # not moved when the entry runs out of attempts, Graph is failing for everyone.
    confirmed_mark: int | None = None


@dataclass
class _Outcome:
    """What one batch answer did to its entries."""

    written: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)
    retry: list[_Entry] = field(default_factory=list)
    waits: list[RetryWait] = field(default_factory=list)
    throttled: int = 0
    batch_confirmed: int = 0  # entries of this answer that went through
    error: CredlyctlError | None = None

    @property
    def confirmed(self) -> int:
        return len(self.written) + len(self.deleted)


class BatchWriter:
    def __init__(
        self,
        send: SendBatch,
        connection_id: str,
        *,
        max_rate: float | None = None,
        concurrency: int = 2,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock = time.monotonic,
        limiter: AdaptiveRateLimiter | None = None,
    ) -> None:
        self._send = send
        self.connection_id = connection_id
        self.concurrency = max(1, concurrency)
        self.batch_size = batch_size_for(self.concurrency)
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self.limiter = limiter or AdaptiveRateLimiter(max_rate, sleep=sleep, clock=clock)
        self._cond = threading.Condition()
        self._fresh: deque[_Entry] = deque()  # never sent yet, in plan order
        self._retrying: list[_Entry] = []  # sent, waiting for their next attempt
        self._healthy = True  # the last answer confirmed a write (or nothing answered yet)
        self._busy = 0  # batches taken and not yet answered
        self._in_flight = 0  # entries in those batches
        self._confirmed = 0
        self._done = 0
        self._error: CredlyctlError | None = None
        self._stop = False
        self._more = False  # `add` may still bring entries (`expect_more` ... `end`)

    def cancel(self) -> None:
        """Send nothing more: batches in flight are answered and recorded, the rest stays
        unsent (and unmarked in the state), and `write` returns."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def expect_more(self) -> None:
        """From now on `write` does not return when its queue runs dry, but waits for `add`
        until `end` is called (streamed writes, sync/streamed.py). Called before `write`."""
        with self._cond:
            self._more = True

    def add(self, ops: Iterable[PlannedOp]) -> None:
        """More operations for a `write` that expects them (from any thread)."""
        with self._cond:
            self._fresh.extend(_Entry(op) for op in ops if op.writes)
            self._cond.notify_all()

    def end(self) -> None:
        """No more `add`: `write` returns once what it has is written."""
        with self._cond:
            self._more = False
            self._cond.notify_all()

    def backlog(self) -> int:
        """Operations added and not sent yet."""
        with self._cond:
            return len(self._fresh)

    # ---- the work queue ---------------------------------------------------------------------

    def write(self, ops: Iterable[PlannedOp], hooks: BatchHooks) -> WriteReport:
        report = WriteReport()
        self.add(ops)

        def work() -> None:
            while (entries := self._take(report)) is not None:
                outcome: _Outcome | None = None
                try:
                    outcome = self._write_batch(entries, hooks)
                finally:
                    self._give_back(entries, outcome)
                self._record(outcome, report, hooks)

        if self.concurrency == 1 or (not self._more and len(self._fresh) <= self.batch_size):
            work()
        else:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="graph-write") as pool:
                for future in [pool.submit(work) for _ in range(self.concurrency)]:
                    future.result()
        report.service_error = self._error
        report.rate_wait_seconds = round(self.limiter.waited_seconds, 3)
        report.final_rate = round(self.limiter.rate, 2)
        report.peak_rate = round(self.limiter.peak_rate, 2)
        return report

    def _take(self, report: WriteReport) -> list[_Entry] | None:
        """The next batch of entries whose wait is over; None when everything is done."""
        while True:
            with self._cond:
                idle = not self._fresh and not self._retrying and self._busy == 0
                if self._stop or (idle and not self._more):
                    self._cond.notify_all()
                    return None
                now = self._clock()
                batch = self._ready(now)
                if batch:
                    self._busy += 1
                    self._in_flight += len(batch)
                    report.peak_in_flight = max(report.peak_in_flight, self._in_flight)
                    return batch
                if not self._retrying:
                    # A batch in flight may put entries back, or go through; `add` may bring
                    # more.
                    self._cond.wait()
                    continue
                pause = min(e.not_before for e in self._retrying) - now
                if self._busy or self._more:
                    self._cond.wait(pause)  # woken early when another batch answers, or `add`
                    continue
            # Nothing in flight, only entries waiting for their Retry-After or backoff.
            self._sleep(pause)

    def _ready(self, now: float) -> list[_Entry]:
        """Entries to send now: retries whose wait is over first, then new ones if Graph is
        taking writes. While nothing goes through, only the retries go out, so a failing
        Graph is not sent (and the state not marked for) the whole plan before we stop."""
        size = self._batch_size_now()
        # With no retry left to tell whether Graph recovered, new entries are the probe.
        probe = not self._retrying and self._busy == 0
        batch = [e for e in self._retrying if e.not_before <= now][:size]
        for entry in batch:
            self._retrying.remove(entry)
        while (self._healthy or probe) and self._fresh and len(batch) < size:
            batch.append(self._fresh.popleft())
        return batch

    def _batch_size_now(self) -> int:
        """Smaller batches at low rates: a `$batch` of 20 arrives all at once, which a limit
        of 10 items/s refuses in part however well the batches are spaced."""
        return max(1, min(self.batch_size, int(self.limiter.rate * BATCH_SECONDS)))

    def _give_back(self, entries: list[_Entry], outcome: _Outcome | None) -> None:
        with self._cond:
            self._busy -= 1
            self._in_flight -= len(entries)
            if outcome is None:  # the batch raised (a bug, or the state could not be written)
                self._stop = True
            else:
                self._retrying.extend(outcome.retry)
                self._confirmed += outcome.confirmed
                if outcome.confirmed:
                    self._healthy = True
                elif outcome.retry:
                    self._healthy = False
                if outcome.error is not None and self._error is None:
                    self._error = outcome.error
                    self._stop = True
            self._cond.notify_all()

    def _record(self, outcome: _Outcome, report: WriteReport, hooks: BatchHooks) -> None:
        hooks.after(outcome.written, outcome.deleted, outcome.failures)
        with self._cond:
            report.written += len(outcome.written)
            report.deleted += len(outcome.deleted)
            report.failures.extend(outcome.failures)
            report.batches += 1
            report.throttled_entries += outcome.throttled
            self._done += outcome.confirmed + len(outcome.failures)
            done = self._done
            if outcome.waits:
                longest = max(outcome.waits, key=lambda w: w.seconds)
                report.retries += 1
                if longest.reason == "throttled":
                    report.throttle_wait_seconds += longest.seconds
        if outcome.waits:
            hooks.waiting(max(outcome.waits, key=lambda w: w.seconds))
        hooks.progress(done)

    # ---- one batch ----------------------------------------------------------------------------

    def _requests(self, entries: Sequence[_Entry]) -> list[BatchRequest]:
        return [
            BatchRequest(
                str(n),
                "DELETE" if e.op.action is Action.DELETE else "PUT",
                item_url(self.connection_id, e.op.item_id),
                e.op.payload() if e.op.action is not Action.DELETE else None,
            )
            for n, e in enumerate(entries, start=1)
        ]

    def _write_batch(self, entries: list[_Entry], hooks: BatchHooks) -> _Outcome:
        hooks.before([e.op for e in entries])
        for entry in entries:
            if entry.confirmed_mark is None:
                entry.confirmed_mark = self._confirmed
        requests = self._requests(entries)
        ticket = self.limiter.acquire(len(requests))
        # What the entries have left is all the Graph client may spend on this envelope.
        allowed = self.policy.max_attempts - max(e.attempts for e in entries)
        outcome = _Outcome()
        try:
            with attempt_budget(allowed) as budget:
                answers = {a.id: a for a in self._send(requests)}
        except RetryAfterTooLong as exc:
            outcome.error = exc
            return outcome
        except httpx.TransportError:
            answers = _all_answered(requests, 0)
        except CredlyctlError as exc:
            status = _envelope_status(exc, self.policy)
            if status is None:
                outcome.error = exc
                return outcome
            answers = _all_answered(requests, status)
        spent = max(1, budget.used)
        paired = [
            (entry, answers.get(request.id) or BatchResponse(request.id, 0, {}, None))
            for request, entry in zip(requests, entries, strict=True)
        ]
        outcome.batch_confirmed = sum(1 for entry, answer in paired if _confirms(entry, answer))
        retry_after = 0.0
        for entry, answer in paired:
            self._judge(entry, answer, spent, outcome)
            if answer.status == 429:
                retry_after = max(retry_after, answer.retry_after or 0.0)
            if outcome.error is not None:
                break
        if outcome.retry:
            # Graph's advice for $batch: retry the failed entries after the largest wait.
            resume = self._clock() + max(w.seconds for w in outcome.waits)
            for entry in outcome.retry:
                entry.not_before = resume
        self.limiter.answered(ticket, outcome.confirmed, outcome.throttled, retry_after)
        return outcome

    def _judge(self, entry: _Entry, answer: BatchResponse, spent: int, outcome: _Outcome) -> None:
        op, status = entry.op, answer.status
        if _confirms(entry, answer):
            if op.action is Action.DELETE:
                outcome.deleted.append(op.item_id)
            else:
                outcome.written.append((op.item_id, op.hash or ""))
            return
        code, message = _error_of(answer.body)
        if status != 0 and not self.policy.retryable(status):
            outcome.failures.append(
                ItemFailure(
                    op.item_id,
                    op.upn,
                    str(op.action),
                    status,
                    code,
                    message or f"Graph answered {status}",
                )
            )
            return
        if status == 429:
            outcome.throttled += 1
        entry.attempts += spent
        if entry.attempts >= self.policy.max_attempts:
            self._exhausted(entry, status, code, outcome)
            return
        try:
            delay = self.policy.delay(
                status or 503, answer.retry_after, entry.attempts - 1, "Microsoft Graph"
            )
        except RetryAfterTooLong as exc:
            outcome.error = exc
            return
        seconds = delay if delay is not None else backoff_delay(entry.attempts - 1, self.policy)
        outcome.retry.append(entry)
        reason: WaitReason = (
            "throttled" if status == 429 else "network" if status == 0 else "unavailable"
        )
        outcome.waits.append(
            RetryWait(seconds, reason, "$batch entries", status or None, answer.retry_after)
        )

    def _exhausted(self, entry: _Entry, status: int, code: str | None, outcome: _Outcome) -> None:
        attempts = self.policy.max_attempts
        said = f"status {status}" if status else "no answer"
        with self._cond:
            went_through = self._confirmed + outcome.batch_confirmed
        nothing_went_through = went_through == entry.confirmed_mark
        if nothing_went_through:
            outcome.error = WriteServiceError(
                f"Graph kept refusing item writes ({said}) after {attempts} attempts, and no "
                "write went through meanwhile.",
                "Graph is throttling or unavailable; run the sync again later, it resumes "
                "where it stopped.",
                error_id="graph_write_unavailable",
            )
            return
        op = entry.op
        outcome.failures.append(
            ItemFailure(
                op.item_id,
                op.upn,
                str(op.action),
                status or None,
                code or "retriesExhausted",
                f"Graph answered with {said} {attempts} times while other writes went through; "
                "the item stays unconfirmed and the next sync writes it again.",
            )
        )


def _confirms(entry: _Entry, answer: BatchResponse) -> bool:
    deleting = entry.op.action is Action.DELETE
    return 200 <= answer.status < 300 or (deleting and answer.status == 404)


def _all_answered(requests: Sequence[BatchRequest], status: int) -> dict[str, BatchResponse]:
    """A `$batch` that failed as a whole, as if each entry had answered `status`."""
    return {r.id: BatchResponse(r.id, status, {}, None) for r in requests}


def _envelope_status(exc: CredlyctlError, policy: RetryPolicy) -> int | None:
    """The status to give every entry of a `$batch` that failed as a whole; None: stop."""
    if not is_retryable(exc):
        return None
    status = getattr(exc, "status", None)
    if getattr(exc, "kind", None) == "network":
        return 0
    return status if isinstance(status, int) and policy.retryable(status) else None
