"""From badges, users and what the state remembers to a per-user plan. Pure: no SQLite, no
network; the badges come through a `BadgeStore` (the crawl's spool, sync/spool.py).

Every item operation carries a reason an admin can read; every badge that is not indexed is
counted under exactly one skip reason (the first that applies, in the order of the rules).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any, Protocol

from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.addresses import build_index, match_keys
from credly_connector.identity.eligibility import normalize_opt_out, user_skip_reasons
from credly_connector.identity.entities import (
    BadgeEntry,
    entries_digest,
    item_body_from_entries,
    item_id,
)
from credly_connector.identity.matching import MatchStatus, match_email
from credly_connector.sync.records import ItemRecord


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"


class Reason(StrEnum):
    NEW_ITEM = "new_item"
    CONTENT_CHANGED = "content_changed"
    UNCONFIRMED_WRITE = "previous_write_unconfirmed"
    FULL_REFRESH = "full_crawl_refresh"
    SAME_CONTENT = "same_content"
    NO_INDEXABLE_BADGE = "no_indexable_badge"
    USER_DISABLED = "user_disabled"
    USER_UNLICENSED = "user_unlicensed"
    USER_OPTED_OUT = "user_opted_out"
    USER_DELETED = "user_deleted"
    STATE_MISSING_CLEANUP = "state_missing_cleanup"


@dataclass(frozen=True, slots=True)  # one per directory user with an item: no __dict__
class PlannedOp:
    item_id: str
    user_id: str
    upn: str | None
    action: Action
    reason: Reason
    body: dict[str, Any] | None = None  # for create/update (or built on demand: `build`)
    hash: str | None = None
    badge_count: int = 0
    # Builds the body where it is written, so a crawl never holds every body at once.
    build: Callable[[], dict[str, Any]] | None = field(default=None, compare=False, repr=False)

    def payload(self) -> dict[str, Any] | None:
        """The PUT body: the one given, or built now."""
        if self.body is None and self.build is not None:
            return self.build()
        return self.body

    @property
    def writes(self) -> bool:
        return self.action is not Action.UNCHANGED

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "user_id": self.user_id,
            "user_principal_name": self.upn,
            "action": str(self.action),
            "reason": str(self.reason),
            "badges": self.badge_count,
        }


@dataclass
class Plan:
    ops: list[PlannedOp] = field(default_factory=list)
    badge_skips: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    badges_read: int = 0
    badges_indexed: int = 0
    users_read: int = 0
    users_matched: int = 0
    # Writes planned and already sent by the crawl's head start: counted, not kept.
    sent: Counter[str] = field(default_factory=Counter)

    def actions(self) -> Counter[str]:
        return Counter(str(op.action) for op in self.ops) + self.sent

    @property
    def writes(self) -> list[PlannedOp]:
        return [op for op in self.ops if op.writes]


class BadgeStore(Protocol):
    """The badges a crawl read, with their own checks and item entries: `sync/spool.py`.

    The planner asks it questions instead of holding every badge (issue 12, goal 4)."""

    def assign(self, verdict: Callable[[str], tuple[str | None, str | None]]) -> None: ...

    def skip_counts(self) -> dict[str | None, int]: ...

    def entries_by_user(self) -> Iterator[tuple[str, list[BadgeEntry]]]: ...

    def entries_for(self, user_id: str) -> list[BadgeEntry]: ...


class ItemSource(Protocol):
    """What the state says may exist in Graph, one record at a time (sync/state.py): 85,000
    records held at once weigh about 45 MB (issue 12, goal 4)."""

    def items_by_user(self) -> Iterator[ItemRecord]:
        """Every record, in ascending user id order (code point order, as `sorted`)."""
        ...


@dataclass(frozen=True)
class PlanInputs:
    badges: BadgeStore
    users: Iterable[DirectoryUser]
    items: Mapping[str, ItemRecord] | ItemSource  # what the state says may exist in Graph
    tenant_id: str
    now: datetime
    opt_out: Collection[str] = ()
    # Full crawls rewrite every item last written before this moment (None: only changes).
    refresh_before: datetime | None = None
    # Missing state on a connection credlyctl did not just create: delete the deterministic
    # item id of every directory user who does not qualify, since it may exist.
    cleanup_unknown: bool = False
    # Only these users are planned (--user); items of other users are left alone.
    only_user_ids: frozenset[str] | None = None
    # (user id, digest) -> the action ("create", "update") of that very write when it was
    # sent already (sync/early.py): the op is counted in `Plan.sent` instead of kept, so a
    # crawl holds no second op per user.
    already_sent: Callable[[str, str], str | None] | None = None


_USER_REASONS = {
    "user_disabled": Reason.USER_DISABLED,
    "user_unlicensed": Reason.USER_UNLICENSED,
    "user_opted_out": Reason.USER_OPTED_OUT,
}


class AddressVerdicts:
    """Who each recipient address reaches and why its badges are not indexed: the matching
    rules in order, after the badge's own (state, visibility, expiry, address)."""

    def __init__(self, users: Sequence[DirectoryUser], opt_out: Collection[str]) -> None:
        self._index = build_index(users)
        self._opt_out = normalize_opt_out(opt_out)
        self.user_reasons = {u.id: user_skip_reasons(u, self._opt_out) for u in users}

    def __call__(self, email: str) -> tuple[str | None, str | None]:
        match = match_email(email, self._index)
        user_id = match.user.id if match.user else None
        if email in self._opt_out:
            return user_id, "user_opted_out"
        if not match.matched:
            several = match.status is MatchStatus.SEVERAL_USERS
            return user_id, "badge_several_users" if several else "badge_no_matching_user"
        if user_id is not None and self.user_reasons[user_id]:
            return user_id, str(self.user_reasons[user_id][0])
        return user_id, None

    def addresses_of(self, user: DirectoryUser) -> list[str]:
        """The user's addresses whose badges are indexed on their item (none for a user who
        does not qualify), normalized."""
        return [a for a in match_keys(user) if self(a) == (user.id, None)]


def plan_sync(inputs: PlanInputs) -> Plan:
    spool = inputs.badges
    plan = Plan()
    users = [u for u in inputs.users if u.id]
    plan.users_read = len(users)
    verdicts = AddressVerdicts(users, inputs.opt_out)
    user_reasons = verdicts.user_reasons
    spool.assign(verdicts)
    for reason, count in spool.skip_counts().items():
        plan.badges_read += count
        if reason is None:
            plan.badges_indexed += count
        else:
            plan.badge_skips[reason] += count
    sent = inputs.already_sent
    # Users, records and the spool's indexed badges, all three in user id order: each user
    # meets their record and their badges as they are walked side by side, so no map of
    # every user's content is held; a record no user meets belongs to a user gone from the
    # directory. The digest of the inputs stands for the content: the body is built only for
    # the items that are written, by the writer (`PlannedOp.payload`), from the spool.
    records = _records_by_user(inputs.items)
    record = next(records, None)
    badges = spool.entries_by_user()
    held = next(badges, None)
    gone: list[ItemRecord] = []
    previous: str | None = None

    for user in sorted(users, key=lambda u: u.id):
        if user.id == previous:  # listed twice (the directory changed while it was paged)
            continue
        previous = user.id
        existing: ItemRecord | None = None
        while record is not None and record.user_id <= user.id:
            if record.user_id < user.id:
                gone.append(record)
            elif existing is None:  # a second record of one user: left alone, as before
                existing = record
            record = next(records, None)
        entries: list[BadgeEntry] = []
        while held is not None and held[0] <= user.id:
            if held[0] == user.id:
                entries = held[1]
                plan.users_matched += 1
            held = next(badges, None)
        if inputs.only_user_ids is not None and user.id not in inputs.only_user_ids:
            continue
        if entries:
            digest, count = entries_digest(user, entries, inputs.tenant_id), len(entries)
            # Asked first: the state may already hold what an early write sent.
            sent_as = sent(user.id, digest) if sent is not None else None
            if sent_as is not None:
                plan.sent[sent_as] += 1
                continue
            action, reason = write_decision(existing, digest, inputs.refresh_before)
            build = (
                partial(_build_body, spool, user, inputs.tenant_id)
                if action is not Action.UNCHANGED
                else None
            )
            plan.ops.append(user_write(user, action, reason, digest, count, build))
            continue
        reasons = user_reasons[user.id]
        why = _USER_REASONS[str(reasons[0])] if reasons else Reason.NO_INDEXABLE_BADGE
        if existing is not None:
            plan.ops.append(
                PlannedOp(existing.item_id, user.id, user.user_principal_name, Action.DELETE, why)
            )
        elif inputs.cleanup_unknown:
            plan.ops.append(
                PlannedOp(
                    item_id(user.id),
                    user.id,
                    user.user_principal_name,
                    Action.DELETE,
                    Reason.STATE_MISSING_CLEANUP,
                )
            )

    if record is not None:
        gone.append(record)
    gone.extend(records)
    for record in sorted(gone, key=lambda r: r.item_id):
        if inputs.only_user_ids is not None and record.user_id not in inputs.only_user_ids:
            continue
        plan.ops.append(
            PlannedOp(
                record.item_id, record.user_id, record.upn, Action.DELETE, Reason.USER_DELETED
            )
        )

    if inputs.cleanup_unknown:
        plan.warnings.append(
            "No local state: items of users who qualify no longer are deleted by their "
            "deterministic id, but items of users already deleted from the directory cannot "
            "be found without the old state and stay until the connection is recreated."
        )
    return plan


def user_write(
    user: DirectoryUser,
    action: Action,
    reason: Reason,
    digest: str,
    badge_count: int,
    build: Callable[[], dict[str, Any]] | None,
) -> PlannedOp:
    """The operation on a directory user's own item, its body built where it is written."""
    return PlannedOp(
        item_id(user.id),
        user.id,
        user.user_principal_name,
        action,
        reason,
        None,
        digest,
        badge_count,
        build,
    )


def _records_by_user(items: Mapping[str, ItemRecord] | ItemSource) -> Iterator[ItemRecord]:
    if isinstance(items, Mapping):
        return iter(sorted(items.values(), key=lambda r: r.user_id))
    return items.items_by_user()


def _build_body(spool: BadgeStore, user: DirectoryUser, tenant_id: str) -> dict[str, Any]:
    return item_body_from_entries(user, spool.entries_for(user.id), tenant_id)


def write_decision(
    existing: ItemRecord | None, digest: str, refresh_before: datetime | None
) -> tuple[Action, Reason]:
    if existing is None:
        return Action.CREATE, Reason.NEW_ITEM
    if existing.hash is None:
        return Action.UPDATE, Reason.UNCONFIRMED_WRITE
    if existing.hash != digest:
        return Action.UPDATE, Reason.CONTENT_CHANGED
    if refresh_before is not None and (
        existing.last_write is None or existing.last_write < refresh_before
    ):
        return Action.UPDATE, Reason.FULL_REFRESH
    return Action.UNCHANGED, Reason.SAME_CONTENT
