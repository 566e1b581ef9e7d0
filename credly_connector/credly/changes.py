"""Badges changed since a day, read through a filter Credly may not honour, and checked.

Credly documents `updated_at_min` (YYYY-MM-DD, inclusive, day granularity) for badge
*templates* only; on issued badges it is inferred (../shared/reference/credly-api.md §4.2,
§5.3; docs/fidelity.md C-BADGE-11). So `read_changed_badges` never trusts it blindly: it
reads the organization's total, then the filtered listing, and returns `ChangedBadges` only
when Credly demonstrably narrowed the list:

- the filtered `total_count` is smaller than the unfiltered one (a silently ignored filter
  returns everything). The unfiltered total is read first, so badges issued in between only
  make an ignored filter's total larger, never smaller;
- every returned badge has an `updated_at` inside the window. Credly's day may be another
  time zone's, which moves a day's start by at most 14 hours, so a badge counts as outside
  only when its `updated_at` (UTC) falls before the day preceding `since`;
- Credly did not refuse the filter: a 400 or 422 (to page 1 or any later page) means "not
  honoured", never an error.

Otherwise it returns `FullReadNeeded` with a one-sentence reason, and the caller reads every
badge. It also returns `FullReadNeeded("not_worth_it", ...)` when more than `max_share` of
the badges changed, or the organization has none: the filtered pages are read one after the
other (they chain through `next_page_url`) while a full read fetches 8 pages at once, so
beyond about 1/8 of the badges the filtered read is the slower one.

Failures that are not about the filter still raise, exactly as a full read would: 401 and
403 (`CredlyAuthError`), a 404 for the organization, 429 or 5xx after retries, a malformed
answer (`CredlyUnavailable`). Retrying the same run with a full read would meet them too.

The window, for the caller: `since = window_start(started)`, where `started` is when the last
successful crawl that read every badge *started* (not ended: a badge changed while that crawl
was reading may have been read before the change), and `window_start` takes its UTC day minus
one day, because Credly compares whole days in a time zone we do not know. Overlap is
harmless: the planner compares content, so a badge read twice is written at most once.

What the filter cannot see: changes that do not move a badge's `updated_at` on Credly (for
example a template renamed, or the issuer's name) are unknown. The scheduled full crawl
(`sync.full_interval_days`, weekly by default) stays the safety net for those.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol

from credly_connector.credly.errors import CredlyUnavailable
from credly_connector.credly.models import Badge

FILTER_KEY = "updated_at_min"
# Beyond this share of changed badges a full read (8 pages in parallel) is faster than the
# filtered read (one page after the other): see the module docstring.
DEFAULT_MAX_SHARE = 0.10
# How far before `since` a returned badge may have been updated (UTC) and still be inside
# Credly's window: the largest difference between a time zone's day and the UTC day.
ZONE_SLACK = timedelta(days=1)
# Answers to the filtered request that mean "this endpoint does not take that filter".
REFUSED_STATUSES = frozenset({400, 422})

Verdict = Literal["not_honoured", "not_worth_it"]


class BadgeReader(Protocol):
    """What `read_changed_badges` needs from a Credly client (`CredlyClient` has both)."""

    def badge_total(self, filters: Mapping[str, str] | None = None) -> int | None: ...

    def iter_badges(
        self,
        *,
        recipient_email: str | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> Iterator[Badge]: ...


@dataclass(frozen=True, slots=True)
class ChangedBadges:
    """Credly honoured the filter: `badges` are every badge updated since `since`."""

    since: date
    badges: tuple[Badge, ...]  # each badge once, in Credly's order
    total: int  # badges in the organization (unfiltered total_count)
    changed_total: int  # total_count of the filtered listing

    @property
    def share(self) -> float:
        return self.changed_total / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class FullReadNeeded:
    """Read every badge instead: `reason` says why in one sentence (for logs and --json)."""

    verdict: Verdict
    reason: str
    since: date
    total: int | None = None  # the unfiltered total_count, when it was read
    changed_total: int | None = None  # the filtered total_count, when it was read
    status: int | None = None  # Credly's HTTP status when it refused the filter


def window_start(last_full_read_started: datetime) -> date:
    """`since` for a crawl after one that read every badge and started at that moment."""
    moment = last_full_read_started
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # credlyctl's state keeps UTC
    return moment.astimezone(UTC).date() - timedelta(days=1)


def changed_since_filter(since: date) -> dict[str, str]:
    """The filter mapping for `CredlyClient.iter_badges(filters=...)`."""
    return {FILTER_KEY: since.isoformat()}


def read_changed_badges(
    client: BadgeReader, since: date, *, max_share: float = DEFAULT_MAX_SHARE
) -> ChangedBadges | FullReadNeeded:
    """The badges updated on or after `since` (day granularity), if Credly verifiably says.

    Three requests when nothing changed (the organization's total, the filtered total, the
    filtered page 1), plus one per further filtered page.
    """
    shown = since.isoformat()
    total = client.badge_total()
    if total is None:
        return FullReadNeeded(
            "not_honoured",
            "Credly reported no total_count for the badge listing, so a filtered read cannot "
            "be checked.",
            since,
        )
    if total == 0:
        return FullReadNeeded(
            "not_worth_it",
            "The organization has no badges, so there is nothing to narrow.",
            since,
            0,
        )
    filters = changed_since_filter(since)
    try:
        changed_total = client.badge_total(filters)
        if changed_total is None:
            return FullReadNeeded(
                "not_honoured",
                f"Credly reported no total_count for {FILTER_KEY}::{shown}, so the filter "
                "cannot be checked.",
                since,
                total,
            )
        if changed_total >= total:
            return FullReadNeeded(
                "not_honoured",
                f"Credly counted {changed_total} badges for {FILTER_KEY}::{shown}, not fewer "
                f"than the {total} of the whole organization, so it may have ignored the filter.",
                since,
                total,
                changed_total,
            )
        if changed_total > max_share * total:
            return FullReadNeeded(
                "not_worth_it",
                f"{changed_total} of {total} badges ({changed_total / total:.0%}) changed since "
                f"{shown}, more than the {max_share:.0%} a filtered read pays off for.",
                since,
                total,
                changed_total,
            )
        earliest = datetime.combine(since, time.min, UTC) - ZONE_SLACK
        found: dict[str, Badge] = {}
        for badge in client.iter_badges(filters=filters):
            if badge.updated_at is None:
                return FullReadNeeded(
                    "not_honoured",
                    f"Credly returned badge {badge.id} without updated_at for "
                    f"{FILTER_KEY}::{shown}, so the filter cannot be checked.",
                    since,
                    total,
                    changed_total,
                )
            if badge.updated_at < earliest:
                return FullReadNeeded(
                    "not_honoured",
                    f"Credly returned badge {badge.id} updated on "
                    f"{badge.updated_at.astimezone(UTC).date().isoformat()} for "
                    f"{FILTER_KEY}::{shown}, outside the window, so it does not honour the "
                    "filter.",
                    since,
                    total,
                    changed_total,
                )
            # Pages shift when badges change mid-read: the id keeps each badge once.
            found.setdefault(badge.id, badge)
    except CredlyUnavailable as exc:
        if exc.kind != "unexpected" or exc.status not in REFUSED_STATUSES:
            raise
        return FullReadNeeded(
            "not_honoured",
            f"Credly refused {FILTER_KEY}::{shown} on issued badges (HTTP {exc.status}).",
            since,
            total,
            status=exc.status,
        )
    return ChangedBadges(since, tuple(found.values()), total, changed_total)
