"""coverage: the organization-wide funnel from badges issued to badges on profiles.

Every badge of the organization goes down the funnel (issued, accepted, public, not expired,
matched to a user, user active and licensed, synced) until the first stage it fails; that
stage's cause is counted with the same cause ids explain-user reports. The rules are the
sync's own (`credly_connector.identity`); "synced" is read from the sync state (what credlyctl
wrote and when), since Graph has no call that lists a connection's items. Mailboxes are not
checked here (that takes one request per user); explain-user checks them for one person.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from credly_connector.credly.models import Badge
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.addresses import (
    build_index,
    normalize_email,
    primary_smtp,
    secondary_smtp,
)
from credly_connector.identity.eligibility import UserSkip, user_skip_reasons
from credly_connector.identity.entities import item_id
from credly_connector.identity.matching import MatchStatus, match_email
from credly_connector.sync.records import ItemRecord

STAGES: tuple[str, ...] = (
    "issued",
    "accepted",
    "public",
    "not_expired",
    "matched_to_user",
    "user_active_and_licensed",
    "synced",
)

_STATE_CAUSES = {
    "pending": "badge_pending",
    "rejected": "badge_rejected",
    "revoked": "badge_revoked",
    "replaced": "badge_replaced",
}


@dataclass(frozen=True)
class BadgeRow:
    """One badge and how far down the funnel it got."""

    badge: Badge
    reached: str  # the last stage passed
    cause: str | None  # why it stopped there; None when synced
    user: DirectoryUser | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "badge_id": self.badge.id,
            "badge_name": self.badge.template_name,
            "recipient_email": self.badge.recipient_email,
            "state": self.badge.state,
            "public": self.badge.public,
            "reached": self.reached,
            "cause": self.cause,
            "user": self.user.user_principal_name if self.user else None,
        }


@dataclass(frozen=True)
class Unmatched:
    email: str
    badges: int
    suggestion: str | None  # the closest directory user's UPN
    reason: str | None  # "secondary alias", "name on the badge", "same local part", ...

    def to_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "badges": self.badges,
            "closest_user": self.suggestion,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class StaleUser:
    user_principal_name: str
    item_id: str
    reason: str  # "item missing", "badge changed after the last write", "item to delete"
    last_write: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "userPrincipalName": self.user_principal_name,
            "item_id": self.item_id,
            "reason": self.reason,
            "last_write": self.last_write.isoformat() if self.last_write else None,
        }


@dataclass
class CoverageReport:
    org_id: str
    generated_at: datetime
    funnel: dict[str, int]
    causes: dict[str, int]
    unmatched: list[Unmatched]
    stale: list[StaleUser]
    rows: list[BadgeRow] = field(default_factory=list)
    state_found: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "org_id": self.org_id,
            "generated_at": self.generated_at.isoformat(),
            "state_found": self.state_found,
            "funnel": [{"stage": s, "badges": self.funnel[s]} for s in STAGES],
            "causes": [{"cause": c, "badges": n} for c, n in self.causes.items()],
            "unmatched_emails": [u.to_dict() for u in self.unmatched],
            "stale_users": [s.to_dict() for s in self.stale],
        }

    def markdown(self) -> str:
        lines = [f"### Credly badge coverage ({self.org_id})", "", "| stage | badges |"]
        lines.append("|---|---:|")
        lines += [f"| {s.replace('_', ' ')} | {self.funnel[s]} |" for s in STAGES]
        lines += ["", "| cause | badges |", "|---|---:|"]
        lines += [f"| {c} | {n} |" for c, n in self.causes.items()] or ["| none | 0 |"]
        if self.unmatched:
            lines += [
                "",
                "| recipient email with no user | badges | closest user |",
                "|---|---:|---|",
            ]
            for u in self.unmatched:
                closest = f"{u.suggestion} ({u.reason})" if u.suggestion else "-"
                lines.append(f"| {u.email} | {u.badges} | {closest} |")
        if self.stale:
            lines += ["", "| user with a stale item | why |", "|---|---|"]
            lines += [f"| {s.user_principal_name} | {s.reason} |" for s in self.stale]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        """One row per badge: how far it got and why it stopped."""
        out = io.StringIO()
        columns = ["badge_id", "badge_name", "recipient_email", "state", "public"]
        columns += ["reached", "cause", "user"]
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow(row.to_dict())
        return out.getvalue()


# -- the funnel ------------------------------------------------------------------------------


def _badge_cause(badge: Badge, now: datetime) -> tuple[str, str | None]:
    """(last stage passed, cause) for the Credly-side stages."""
    if badge.state != "accepted":
        return "issued", _STATE_CAUSES.get(badge.state, "badge_unknown_state")
    if not badge.public:
        return "accepted", "badge_private"
    if badge.expires_at is not None and badge.expires_at <= now:
        return "public", "badge_expired"
    if not badge.recipient_email or not badge.recipient_email.strip():
        return "not_expired", "badge_no_recipient_email"
    return "not_expired", None


def _changed_at(badge: Badge) -> datetime | None:
    times = [t for t in (badge.accepted_at, badge.updated_at) if t is not None]
    return max(times) if times else badge.issued_at


def _synced(item: ItemRecord | None, badge: Badge) -> bool:
    if item is None or item.hash is None or item.last_write is None:
        return False
    changed = _changed_at(badge)
    return changed is None or item.last_write >= changed


_USER_CAUSES = {
    UserSkip.DISABLED: "user_disabled",
    UserSkip.UNLICENSED: "user_unlicensed",
    UserSkip.OPTED_OUT: "user_opted_out",
}


def build_report(
    *,
    org_id: str,
    badges: Iterable[Badge],
    users: Iterable[DirectoryUser],
    items: dict[str, ItemRecord] | None,
    now: datetime,
    opt_out: frozenset[str] = frozenset(),
) -> CoverageReport:
    """The funnel from data already read (pure: unit-testable without any service)."""
    user_list = list(users)
    index = build_index(user_list)
    aliases = {
        normalize_email(a) for u in user_list for a in (*secondary_smtp(u), u.mail or "") if a
    }
    item_by_user = {r.user_id: r for r in (items or {}).values()}
    funnel = Counter[str]()
    causes = Counter[str]()
    rows: list[BadgeRow] = []
    no_user: Counter[str] = Counter()
    names: dict[str, str] = {}
    wanted: dict[str, tuple[DirectoryUser, datetime | None]] = {}
    for badge in badges:
        reached, cause = _badge_cause(badge, now)
        user: DirectoryUser | None = None
        if cause is None:
            match = match_email(badge.recipient_email, index)
            if match.status is MatchStatus.MATCHED and match.user is not None:
                user, reached = match.user, "matched_to_user"
                reasons = user_skip_reasons(user, opt_out)
                if reasons:
                    cause = _USER_CAUSES[reasons[0]]
                else:
                    reached = "user_active_and_licensed"
                    changed = _changed_at(badge)
                    known = wanted.get(user.id, (user, None))[1]
                    latest = max((t for t in (known, changed) if t), default=None)
                    wanted[user.id] = (user, latest)
                    if _synced(item_by_user.get(user.id), badge):
                        reached = "synced"
                    else:
                        cause = "not_synced_yet"
            elif match.status is MatchStatus.SEVERAL_USERS:
                cause = "email_several_users"
            else:
                email = normalize_email(badge.recipient_email or "")
                cause = "email_secondary_alias" if email in aliases else "email_no_user"
                no_user[email] += 1
                if badge.issued_to:
                    names.setdefault(email, badge.issued_to)
        for stage in STAGES[: STAGES.index(reached) + 1]:
            funnel[stage] += 1
        if cause:
            causes[cause] += 1
        rows.append(BadgeRow(badge, reached, cause, user))
    unmatched = [
        _closest(email, count, names.get(email), user_list)
        for email, count in sorted(no_user.items())
    ]
    return CoverageReport(
        org_id=org_id,
        generated_at=now,
        funnel={s: funnel[s] for s in STAGES},
        causes={c: n for c, n in sorted(causes.items(), key=lambda kv: (-kv[1], kv[0])) if n},
        unmatched=unmatched,
        stale=_stale(wanted, item_by_user, items or {}),
        rows=rows,
        state_found=items is not None,
    )


def _stale(
    wanted: dict[str, tuple[DirectoryUser, datetime | None]],
    item_by_user: dict[str, ItemRecord],
    items: dict[str, ItemRecord],
) -> list[StaleUser]:
    stale: list[StaleUser] = []
    for user_id, (user, changed) in sorted(
        wanted.items(), key=lambda kv: kv[1][0].user_principal_name
    ):
        item = item_by_user.get(user_id)
        if item is None or item.hash is None or item.last_write is None:
            stale.append(
                StaleUser(user.user_principal_name, item_id(user_id), "item missing", None)
            )
        elif changed is not None and item.last_write < changed:
            reason = "badge changed after the last write"
            stale.append(
                StaleUser(user.user_principal_name, item_id(user_id), reason, item.last_write)
            )
    for record in sorted(items.values(), key=lambda r: r.upn or r.user_id):
        if record.user_id not in wanted and record.hash is not None and record.intent != "delete":
            name = record.upn or record.user_id
            stale.append(StaleUser(name, record.item_id, "item to delete", record.last_write))
    return stale


def _closest(email: str, count: int, name: str | None, users: list[DirectoryUser]) -> Unmatched:
    """The directory user an unmatched recipient email most likely belongs to, if any."""
    from credly_connector.identity.near_miss import edit_distance

    local = email.split("@", 1)[0]
    for user in users:
        if any(normalize_email(a) == email for a in (*secondary_smtp(user), user.mail or "") if a):
            return Unmatched(email, count, user.user_principal_name, "secondary alias")
    if name:
        for user in users:
            if (user.display_name or "").strip().lower() == name.strip().lower():
                return Unmatched(email, count, user.user_principal_name, "name on the badge")
    best: tuple[int, DirectoryUser] | None = None
    for user in users:
        for address in {user.user_principal_name, primary_smtp(user) or ""} - {""}:
            address = normalize_email(address)
            if address.split("@", 1)[0] == local:
                return Unmatched(email, count, user.user_principal_name, "same local part")
            distance = edit_distance(email, address, limit=2)
            if distance <= 2 and (best is None or distance < best[0]):
                best = (distance, user)
    if best is not None:
        return Unmatched(email, count, best[1].user_principal_name, "close spelling")
    return Unmatched(email, count, None, None)


def gather(settings: Any, now: datetime) -> CoverageReport:
    """Read the organization's badges, the directory and the sync state, then build the funnel."""
    from concurrent.futures import ThreadPoolExecutor

    from credly_connector.sync.clients import build_clients
    from credly_connector.sync.state import open_readonly, state_path

    clients = build_clients(settings)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            badges = pool.submit(clients.credly.list_badges)
            users = pool.submit(lambda: list(clients.graph.iter_users()))
            badge_list, user_list = badges.result(), users.result()
    finally:
        clients.close()
    state = open_readonly(state_path(settings.sync.state_dir, settings.name))
    try:
        items = state.items() if state is not None else None
    finally:
        if state is not None:
            state.close()
    return build_report(
        org_id=settings.credly.org_id,
        badges=badge_list,
        users=user_list,
        items=items,
        now=now,
        opt_out=settings.sync.opt_out,
    )
