"""JSON batching (`POST /$batch`): up to 20 requests, answers matched back by id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from credly_connector.net.retry import parse_retry_after

MAX_BATCH = 20
RETRYABLE_STATUSES = frozenset({0, 429, 503, 504})


@dataclass(frozen=True)
class BatchRequest:
    id: str
    method: str
    url: str  # relative to the version root, starting with "/"
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.id, "method": self.method.upper(), "url": self.url}
        headers = dict(self.headers)
        if self.body is not None:
            entry["body"] = self.body
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"  # required with a body
        if headers:
            entry["headers"] = headers
        return entry


@dataclass(frozen=True)
class BatchResponse:
    id: str
    status: int  # 0 when Graph returned no answer for this id
    headers: Mapping[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUSES

    @property
    def retry_after(self) -> float | None:
        for name, value in self.headers.items():
            if name.lower() == "retry-after":
                return parse_retry_after(str(value))
        return None

    @property
    def error_code(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        return code if isinstance(code, str) else None

    @property
    def error_message(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        return message if isinstance(message, str) else None


def build_batch_body(requests: Sequence[BatchRequest]) -> dict[str, Any]:
    if not requests:
        raise ValueError("a batch needs at least one request")
    if len(requests) > MAX_BATCH:
        raise ValueError(f"a batch holds at most {MAX_BATCH} requests, got {len(requests)}")
    ids = [r.id.lower() for r in requests]
    if len(set(ids)) != len(ids):
        raise ValueError("batch request ids must be unique (case-insensitively)")
    return {"requests": [r.to_json() for r in requests]}


def match_responses(requests: Sequence[BatchRequest], document: Any) -> list[BatchResponse]:
    """One response per request, in request order; a missing answer becomes status 0."""
    by_id: dict[str, BatchResponse] = {}
    entries = document.get("responses") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        entry_id = str(entry.get("id", ""))
        status = entry.get("status")
        headers = entry.get("headers")
        by_id[entry_id.lower()] = BatchResponse(
            id=entry_id,
            status=status if isinstance(status, int) and not isinstance(status, bool) else 0,
            headers={str(k): str(v) for k, v in headers.items()}
            if isinstance(headers, dict)
            else {},
            body=entry.get("body"),
        )
    missing = {"error": {"code": "missingResponse", "message": "no answer for this request"}}
    return [
        by_id.get(r.id.lower()) or BatchResponse(id=r.id, status=0, headers={}, body=missing)
        for r in requests
    ]
