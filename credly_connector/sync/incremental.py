"""An incremental crawl that reads only the badges Credly changed (issue 12, goal 3).

Credly documents no "changed since" filter for issued badges; `credly/changes.py` tries
`updated_at_min` and checks at run time that Credly honoured it. When it did, the crawl does
not read every page: it plans only the people a change can concern, and takes their other
badges from the state, where every crawl that read every badge recorded what rebuilding an
item needs (records.BadgeDetail).

The people concerned are those reached by an address of:
- a changed badge, now or when the state recorded it (a badge re-sent to another address
  leaves its former owner);
- a badge that was indexable when recorded and has expired since (time, not Credly, changed);
- a directory user /users/delta reported, before and after the change;
plus every user /users/delta reported and every user whose last write is unconfirmed.

What the state cannot stand in for sends the crawl back to a full read: no crawl with this
credlyctl read every badge yet, or the tenant, the opt-out list or the item format changed
since (`plan_basis`). A badge deleted from Credly outright is invisible to the filter; the
next crawl that reads every page forgets it (`SyncState.forget_badges_not_in`), and the
scheduled full crawl stays the safety net.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from datetime import date, datetime

from credly_connector.credly.changes import window_start
from credly_connector.credly.models import Badge
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.addresses import build_index, match_keys, normalize_email
from credly_connector.identity.eligibility import normalize_opt_out
from credly_connector.identity.entities import ITEM_FORMAT
from credly_connector.sync.spool import BadgeSpool
from credly_connector.sync.state import SyncState

# meta keys: when the last crawl that brought every badge up to date started, and what its
# plan depended on besides badges and users.
BADGES_READ_AT = "badges_read_at"
PLAN_BASIS = "plan_basis"


def plan_basis(tenant_id: str, opt_out: Collection[str]) -> str:
    text = repr((ITEM_FORMAT, tenant_id, sorted(normalize_opt_out(opt_out))))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def changes_window(state: SyncState, basis: str) -> date | None:
    """The day to read changes from, or None when the state cannot stand in for a full read."""
    if state.get_meta(PLAN_BASIS) != basis:
        return None
    started = state.get_meta(BADGES_READ_AT)
    if not started:
        return None
    try:
        return window_start(datetime.fromisoformat(started))
    except ValueError:
        return None


def spool_changes(
    state: SyncState,
    changed: Iterable[Badge],
    users: list[DirectoryUser],
    directory_changes: Iterable[DirectoryUser],
    removed_ids: Iterable[str],
    now: datetime,
) -> tuple[BadgeSpool, frozenset[str]]:
    """A spool with every badge of the people concerned, and those people's user ids.

    `directory_changes` holds the users /users/delta reported, as the snapshot had them and
    as they are now; `removed_ids` the users it removed.
    """
    changed = list(changed)
    addresses: set[str] = set(state.expired_since(now))
    for badge in changed:
        if badge.recipient_email and badge.recipient_email.strip():
            addresses.add(normalize_email(badge.recipient_email))
        known = state.known_badge(badge.id)
        if known is not None and known.detail is not None and known.detail.email:
            addresses.add(known.detail.email)
    user_ids = state.unconfirmed_users()
    user_ids.update(removed_ids)
    for user in directory_changes:
        user_ids.add(user.id)
        addresses.update(match_keys(user))
    index = build_index(users)
    for address in list(addresses):
        user_ids.update(entry.user.id for entry in index.lookup(address))
    for user_id in user_ids:
        concerned = index.by_id.get(user_id)
        if concerned is not None:
            addresses.update(match_keys(concerned))
    spool = BadgeSpool()
    try:
        spool.add_known(state.known_badges(addresses), now)
        spool.add(changed, now)  # a changed badge replaces the state's copy
    except BaseException:
        spool.close()
        raise
    return spool, frozenset(user_ids)
