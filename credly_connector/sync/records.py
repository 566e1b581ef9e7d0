"""Plain records the planner and the state store exchange: no SQLite here, so the pure
planner can use them without importing the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ItemRecord:
    item_id: str
    user_id: str
    upn: str | None
    hash: str | None  # None: the content in Graph is unknown (write pending or failed)
    intent: str | None  # "put" | "delete" while a write is in flight or failed
    last_write: datetime | None
    last_error: str | None
    written_crawl: int | None


@dataclass(frozen=True, slots=True)
class BadgeObservation:
    """One badge as a crawl saw it, for `record_badges`."""

    id: str
    state: str
    public: bool
    recipient_email: str | None
    user_id: str | None
    skip_reason: str | None
    # What rebuilding the owner's item needs without reading Credly again (an incremental
    # crawl that reads only the changed badges): see BadgeDetail.
    detail: BadgeDetail | None = None


@dataclass(frozen=True, slots=True)
class BadgeDetail:
    email: str | None  # the recipient address, normalized
    badge_skip: str | None  # the badge's own first skip reason, expiry included, when read
    expires_at: str | None  # ISO text: expiry is checked again at each crawl
    sort_key: str | None  # the item entry (None unless the badge could be indexed)
    certification: bool | None
    entry: str | None
    issued_to: str | None
    first_name: str | None
    last_name: str | None
