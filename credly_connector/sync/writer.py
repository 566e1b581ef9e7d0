"""Writes planned item operations through Graph's `$batch`, at most 20 per batch.

The Graph client does not retry inside a batch, so this module does: entries answered 429
wait for their own Retry-After (the largest in the batch), 503/504 and network failures back
off, each with a limit. An entry refused for good (e.g. 400) is an item error (exit 1); a
service that keeps failing stops the run (exit 3) after the work in flight is recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from credly_connector.errors import CredlyctlError, RemoteError, is_retryable
from credly_connector.graph.batch import MAX_BATCH, BatchRequest, BatchResponse
from credly_connector.net.retry import RetryPolicy, backoff_delay
from credly_connector.sync.planner import Action, PlannedOp
from credly_connector.sync.ratelimit import AdaptiveRateLimiter

BATCH_LIMIT = MAX_BATCH
# 0: Graph gave no answer for the entry.
RETRYABLE = frozenset({0, 429, 500, 502, 503, 504})


# Sends one $batch and returns its entries' answers; raises for a failure of the whole batch.
SendBatch = Callable[[list[BatchRequest]], list[BatchResponse]]


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
    service_error: CredlyctlError | None = None


class WriteServiceError(RemoteError):
    """Graph kept failing: the crawl cannot finish now."""


@dataclass
class BatchHooks:
    """Called around each batch; the runner records intent and results in the state."""

    before: Callable[[Sequence[PlannedOp]], None]
    after: Callable[[Sequence[tuple[str, str]], Sequence[str], Sequence[ItemFailure]], None]
    progress: Callable[[int], None] = lambda done: None


def item_url(connection_id: str, item_id: str) -> str:
    return f"/external/connections/{connection_id}/items/{item_id}"


def _error_of(body: Any) -> tuple[str | None, str]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = error.get("message") if isinstance(error.get("message"), str) else ""
        return code, message[:300]
    return None, ""


class BatchWriter:
    def __init__(
        self,
        send: SendBatch,
        connection_id: str,
        *,
        max_rate: float,
        concurrency: int = 4,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        limiter: AdaptiveRateLimiter | None = None,
    ) -> None:
        self._send = send
        self.connection_id = connection_id
        self.concurrency = max(1, concurrency)
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self.limiter = limiter or AdaptiveRateLimiter(max_rate, sleep=sleep)
        self._lock = threading.Lock()
        self._abort = threading.Event()

    def write(self, ops: Sequence[PlannedOp], hooks: BatchHooks) -> WriteReport:
        report = WriteReport()
        todo = [op for op in ops if op.writes]
        batches = [todo[i : i + BATCH_LIMIT] for i in range(0, len(todo), BATCH_LIMIT)]
        done_count = 0

        def run(batch: list[PlannedOp]) -> None:
            nonlocal done_count
            if self._abort.is_set():
                return
            hooks.before(batch)
            written, deleted, failures, error = self._write_batch(batch, report)
            hooks.after(written, deleted, failures)
            with self._lock:
                report.written += len(written)
                report.deleted += len(deleted)
                report.failures.extend(failures)
                report.batches += 1
                done_count += len(batch)
                current = done_count
                if error is not None and report.service_error is None:
                    report.service_error = error
                    self._abort.set()
            hooks.progress(current)

        if self.concurrency == 1 or len(batches) <= 1:
            for batch in batches:
                run(batch)
        else:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="graph-write") as pool:
                for future in [pool.submit(run, b) for b in batches]:
                    future.result()
        report.rate_wait_seconds = round(self.limiter.waited_seconds, 3)
        report.final_rate = round(self.limiter.rate, 2)
        return report

    def _requests(self, ops: Sequence[PlannedOp]) -> list[BatchRequest]:
        return [
            BatchRequest(
                str(n),
                "DELETE" if op.action is Action.DELETE else "PUT",
                item_url(self.connection_id, op.item_id),
                op.body if op.action is not Action.DELETE else None,
            )
            for n, op in enumerate(ops, start=1)
        ]

    def _write_batch(
        self, batch: list[PlannedOp], report: WriteReport
    ) -> tuple[list[tuple[str, str]], list[str], list[ItemFailure], CredlyctlError | None]:
        pending = {r.id: (r, op) for r, op in zip(self._requests(batch), batch, strict=True)}
        written: list[tuple[str, str]] = []
        deleted: list[str] = []
        failures: list[ItemFailure] = []
        attempt = 0
        while pending:
            self.limiter.acquire(len(pending))
            requests = [request for request, _ in pending.values()]
            try:
                answers = {a.id: a for a in self._send(requests)}
            except CredlyctlError as exc:
                if not is_retryable(exc) or attempt + 1 >= self.policy.max_attempts:
                    return written, deleted, failures, exc
                self._wait(backoff_delay(attempt, self.policy), report, throttled=False)
                attempt += 1
                continue
            except httpx.TransportError as exc:
                if attempt + 1 >= self.policy.max_attempts:
                    return (
                        written,
                        deleted,
                        failures,
                        WriteServiceError(
                            "Graph could not be reached while writing items "
                            f"({type(exc).__name__}).",
                            "Check the network and run the sync again; it resumes where it "
                            "stopped.",
                            error_id="graph_write_network",
                        ),
                    )
                self._wait(backoff_delay(attempt, self.policy), report, throttled=False)
                attempt += 1
                continue
            retry: dict[str, tuple[BatchRequest, PlannedOp]] = {}
            waits: list[float] = []
            throttled = False
            for request, op in pending.values():
                answer = answers.get(request.id)
                status = answer.status if answer else 0
                if 200 <= status < 300 or (op.action is Action.DELETE and status == 404):
                    if op.action is Action.DELETE:
                        deleted.append(op.item_id)
                    else:
                        written.append((op.item_id, op.hash or ""))
                    continue
                if answer is None or status in RETRYABLE:
                    retry[request.id] = (request, op)
                    after = answer.retry_after if answer else None
                    if status == 429:
                        throttled = True
                        with self._lock:
                            report.throttled_entries += 1
                    waits.append(
                        after if after is not None else backoff_delay(attempt, self.policy)
                    )
                    continue
                code, message = _error_of(answer.body)
                failures.append(
                    ItemFailure(
                        op.item_id,
                        op.upn,
                        str(op.action),
                        status,
                        code,
                        message or f"Graph answered {status}",
                    )
                )
            if throttled:
                self.limiter.throttled()
            elif not retry:
                self.limiter.succeeded()
            if not retry:
                break
            if attempt + 1 >= self.policy.max_attempts:
                statuses = sorted({answers[i].status for i in retry if i in answers})
                return (
                    written,
                    deleted,
                    failures,
                    WriteServiceError(
                        f"Graph kept refusing item writes (status {statuses or 'none'}) after "
                        f"{self.policy.max_attempts} attempts.",
                        "Graph is throttling or unavailable; run the sync again later, it "
                        "resumes where it stopped.",
                        error_id="graph_write_unavailable",
                    ),
                )
            self._wait(max(waits), report, throttled=throttled)
            pending = retry
            attempt += 1
        return written, deleted, failures, None

    def _wait(self, seconds: float, report: WriteReport, *, throttled: bool) -> None:
        seconds = min(seconds, self.policy.max_retry_after)
        with self._lock:
            report.retries += 1
            if throttled:
                report.throttle_wait_seconds += seconds
        if seconds > 0:
            self._sleep(seconds)
