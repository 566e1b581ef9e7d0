"""coverage: the organization-wide funnel from badges issued to badges on profiles.

Every badge of the organization goes down the funnel (issued, accepted, public, not expired,
matched to a user, user active and licensed, user has a mailbox, synced) until the first stage
it fails. The rules are explain-user's and diagnose's own (`identity.outcome.badge_outcome`,
one decision per badge), so the three commands give one answer for one person. Mailboxes come
from one listing of users with their assignedPlans; when those cannot be read the badge's cause
is "could not tell" (`user_mailbox_unknown`), never "has a mailbox". "Synced" means the user's
item holds what the sync would write now (the planner's content hash), read from the sync
state, since Graph has no call that lists a connection's items.
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
from credly_connector.identity.eligibility import user_skip_reasons
from credly_connector.identity.entities import input_digest, item_id
from credly_connector.identity.matching import MatchResult, MatchStatus, match_email
from credly_connector.identity.near_miss import edit_distance
from credly_connector.identity.outcome import (
    MAILBOX_UNKNOWN,
    STAGES,
    Mailbox,
    badge_outcome,
    credly_outcome,
    mailbox_from_plans,
)
from credly_connector.sync.records import ItemRecord

__all__ = ["STAGES", "CoverageReport", "build_report", "gather"]


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
    people: list[Person] = field(default_factory=list)
    mailboxes_read: bool = True
    mailbox_problem: str | None = None  # why mailboxes could not be told, when they could not

    @property
    def mailbox_check(self) -> dict[str, Any]:
        """Whether mailboxes were told; "could not tell" says why."""
        if self.mailbox_problem is not None or not self.mailboxes_read:
            reason = self.mailbox_problem or "mailboxes were not looked up"
            return {"status": "could_not_tell", "reason": reason}
        unknown = self.causes.get(MAILBOX_UNKNOWN, 0)
        if unknown:
            return {
                "status": "could_not_tell",
                "reason": f"assignedPlans of some users could not be read ({unknown} badges)",
            }
        return {"status": "checked", "reason": None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "org_id": self.org_id,
            "generated_at": self.generated_at.isoformat(),
            "state_found": self.state_found,
            "funnel": [{"stage": s, "badges": self.funnel[s]} for s in STAGES],
            "causes": [{"cause": c, "badges": n} for c, n in self.causes.items()],
            "unmatched_emails": [u.to_dict() for u in self.unmatched],
            "stale_users": [s.to_dict() for s in self.stale],
            "mailbox_check": self.mailbox_check,
            "people": [p.to_dict() for p in self.people],
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


def _changed_at(badge: Badge) -> datetime | None:
    times = [t for t in (badge.accepted_at, badge.updated_at) if t is not None]
    return max(times) if times else badge.issued_at


@dataclass(frozen=True)
class _Written:
    """Whether the sync wrote a user's item as it would be written now (as the planner does)."""

    item: ItemRecord | None
    same_content: bool

    def synced(self, badge: Badge) -> bool:
        item = self.item
        if item is None or item.hash is None or item.last_write is None:
            return False
        if self.same_content:
            return True  # a content-neutral update (updated_at bumped) changes nothing
        changed = _changed_at(badge)
        return changed is None or item.last_write >= changed


@dataclass
class Person:
    """One address badges were issued to, with the causes of its badges (explain-user's view)."""

    email: str
    user: str | None
    causes: list[str] = field(default_factory=list)
    badges: int = 0

    @property
    def verdict(self) -> str:
        if not self.causes:
            return "visible"
        if self.causes == [MAILBOX_UNKNOWN]:
            return "could_not_tell"
        return "not_visible"

    def to_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "user": self.user,
            "badges": self.badges,
            "verdict": self.verdict,
            "causes": self.causes,
        }


def build_report(
    *,
    org_id: str,
    badges: Iterable[Badge],
    users: Iterable[DirectoryUser],
    items: dict[str, ItemRecord] | None,
    now: datetime,
    opt_out: frozenset[str] = frozenset(),
    mailboxes: dict[str, Mailbox] | None = None,
    tenant_id: str = "",
) -> CoverageReport:
    """The funnel from data already read (pure: unit-testable without any service).

    `mailboxes`: per user id, whether they have a mailbox (identity.outcome's rule); a user
    missing from it counts as "could not tell". None: mailboxes were not looked up at all.
    `tenant_id`: with it, a badge counts as synced when the user's item holds what the sync
    would write now (the planner's content hash), whatever its timestamps say.
    """
    user_list = list(users)
    index = build_index(user_list)
    aliases = {
        normalize_email(a) for u in user_list for a in (*secondary_smtp(u), u.mail or "") if a
    }
    item_by_user = {r.user_id: r for r in (items or {}).values()}
    badge_list = list(badges)
    matches = {b.id: match_email(b.recipient_email, index) for b in badge_list}
    written = _written(badge_list, matches, item_by_user, now, opt_out, tenant_id)
    funnel = Counter[str]()
    causes = Counter[str]()
    rows: list[BadgeRow] = []
    people: dict[str, Person] = {}
    no_user: Counter[str] = Counter()
    names: dict[str, str] = {}
    wanted: dict[str, tuple[DirectoryUser, datetime | None]] = {}
    for badge in badge_list:
        match = matches[badge.id]
        user = match.user if match.status is MatchStatus.MATCHED else None
        email = normalize_email(badge.recipient_email or "")
        mailbox = (mailboxes or {}).get(user.id) if user is not None else None
        state = written.get(user.id, _Written(None, False)) if user is not None else None
        outcome = badge_outcome(
            badge,
            now,
            match,
            opt_out=opt_out,
            mailbox=mailbox,
            synced=state.synced(badge) if state is not None else False,
            is_alias=email in aliases,
        )
        reached, cause = outcome.reached, outcome.cause
        if user is not None and STAGES.index(reached) >= STAGES.index("user_active_and_licensed"):
            changed = _changed_at(badge)
            known = wanted.get(user.id, (user, None))[1]
            if state is not None and state.same_content:
                changed = known  # the item holds this badge as it is now
            latest = max((t for t in (known, changed) if t), default=None)
            wanted[user.id] = (user, latest)
        if cause in ("email_no_user", "email_secondary_alias"):
            no_user[email] += 1
            if badge.issued_to:
                names.setdefault(email, badge.issued_to)
        for stage in STAGES[: STAGES.index(reached) + 1]:
            funnel[stage] += 1
        if cause:
            causes[cause] += 1
        if email:
            person = people.setdefault(
                email, Person(email, user.user_principal_name if user else None)
            )
            person.badges += 1
            if cause and cause not in person.causes:
                person.causes.append(cause)
        rows.append(BadgeRow(badge, reached, cause, user))
    closest = _ClosestIndex(user_list)
    unmatched = [
        closest.find(email, count, names.get(email)) for email, count in sorted(no_user.items())
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
        people=sorted(people.values(), key=lambda p: p.email),
        mailboxes_read=mailboxes is not None,
    )


def _written(
    badges: list[Badge],
    matches: dict[str, MatchResult],
    item_by_user: dict[str, ItemRecord],
    now: datetime,
    opt_out: frozenset[str],
    tenant_id: str,
) -> dict[str, _Written]:
    """Per user with indexable badges: their item and whether it holds them as they are now."""
    indexed: dict[str, list[Badge]] = {}
    owners: dict[str, DirectoryUser] = {}
    for badge in badges:
        match = matches[badge.id]
        if match.status is not MatchStatus.MATCHED or match.user is None:
            continue
        if credly_outcome(badge, now) is not None or user_skip_reasons(match.user, opt_out):
            continue
        indexed.setdefault(match.user.id, []).append(badge)
        owners[match.user.id] = match.user
    found: dict[str, _Written] = {}
    for user_id, user_badges in indexed.items():
        item = item_by_user.get(user_id)
        same = bool(
            tenant_id
            and item is not None
            and item.hash is not None
            and item.hash == input_digest(owners[user_id], user_badges, tenant_id)
        )
        found[user_id] = _Written(item, same)
    return found


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


class _ClosestIndex:
    """The directory user an unmatched recipient email most likely belongs to, if any.

    Indexed once (aliases, display names, local parts, pieces of local parts) so each lookup
    compares only addresses that can be close, not every user (L12: 4,000 unmatched addresses
    x 20,000 users took 115 s; benchmarks/coverage_closest.py).
    """

    def __init__(self, users: list[DirectoryUser]) -> None:
        self.alias: dict[str, DirectoryUser] = {}
        self.name: dict[str, DirectoryUser] = {}
        self.local: dict[str, DirectoryUser] = {}
        # Pigeonhole: split a local part into MAX_EDITS + 1 pieces; a local part at most
        # MAX_EDITS edits away keeps at least one piece intact, shifted by at most MAX_EDITS
        # places. (Local parts only: the domain is the same for most users.)
        self.pieces: dict[tuple[int, int, str], list[int]] = {}
        self.entries: list[tuple[str, DirectoryUser]] = []
        for user in users:
            for alias in (*secondary_smtp(user), user.mail or ""):
                if alias:
                    self.alias.setdefault(normalize_email(alias), user)
            name = (user.display_name or "").strip().lower()
            if name:
                self.name.setdefault(name, user)
            for address in sorted({user.user_principal_name, primary_smtp(user) or ""} - {""}):
                address = normalize_email(address)
                local = address.split("@", 1)[0]
                self.local.setdefault(local, user)
                for piece, (start, end) in enumerate(_pieces(len(local))):
                    key = (len(local), piece, local[start:end])
                    self.pieces.setdefault(key, []).append(len(self.entries))
                self.entries.append((address, user))

    def find(self, email: str, count: int, name: str | None) -> Unmatched:
        user = self.alias.get(email)
        if user is not None:
            return Unmatched(email, count, user.user_principal_name, "secondary alias")
        user = self.name.get(name.strip().lower()) if name else None
        if user is not None:
            return Unmatched(email, count, user.user_principal_name, "name on the badge")
        user = self.local.get(email.split("@", 1)[0])
        if user is not None:
            return Unmatched(email, count, user.user_principal_name, "same local part")
        best: tuple[int, int] | None = None
        for order in sorted(self._near(email.split("@", 1)[0])):
            distance = edit_distance(email, self.entries[order][0], limit=_MAX_EDITS)
            if distance <= _MAX_EDITS and (best is None or distance < best[0]):
                best = (distance, order)
        if best is not None:
            user = self.entries[best[1]][1]
            return Unmatched(email, count, user.user_principal_name, "close spelling")
        return Unmatched(email, count, None, None)

    def _near(self, local: str) -> set[int]:
        """Entries whose local part shares an intact piece with `local` (all close ones)."""
        found: set[int] = set()
        for length in range(max(1, len(local) - _MAX_EDITS), len(local) + _MAX_EDITS + 1):
            for piece, (start, end) in enumerate(_pieces(length)):
                for shift in range(-_MAX_EDITS, _MAX_EDITS + 1):
                    if start + shift < 0 or end + shift > len(local):
                        continue
                    text = local[start + shift : end + shift]
                    found.update(self.pieces.get((length, piece, text), ()))
        return found


_MAX_EDITS = 2


def _pieces(length: int) -> list[tuple[int, int]]:
    """MAX_EDITS + 1 consecutive slices covering a string of `length` characters."""
    count = _MAX_EDITS + 1
    bounds = [length * i // count for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(count)]


def _read_directory(graph: Any) -> tuple[list[DirectoryUser], dict[str, Mailbox], str | None]:
    """Users with their mailbox (one listing with assignedPlans); when the plans cannot be
    listed, the users alone and why mailboxes could not be told."""
    from credly_connector.graph.errors import GraphError

    try:
        listed = list(graph.iter_users_with_plans())
    except GraphError as exc:
        users = list(graph.iter_users())
        return users, {}, f"assignedPlans could not be listed ({type(exc).__name__})"
    mailboxes = {user.id: mailbox_from_plans(user, plans) for user, plans in listed}
    return [user for user, _ in listed], mailboxes, None


def gather(settings: Any, now: datetime) -> CoverageReport:
    """Read the organization's badges, the directory and the sync state, then build the funnel."""
    from concurrent.futures import ThreadPoolExecutor

    from credly_connector.sync.clients import build_clients
    from credly_connector.sync.state import open_readonly, state_path

    clients = build_clients(settings)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            badges = pool.submit(clients.credly.list_badges)
            directory = pool.submit(_read_directory, clients.graph)
            badge_list = badges.result()
            user_list, mailboxes, problem = directory.result()
    finally:
        clients.close()
    state = open_readonly(state_path(settings.sync.state_dir, settings.name))
    try:
        items = state.items() if state is not None else None
    finally:
        if state is not None:
            state.close()
    report = build_report(
        org_id=settings.credly.org_id,
        badges=badge_list,
        users=user_list,
        items=items,
        now=now,
        opt_out=settings.sync.opt_out,
        mailboxes=mailboxes,
        tenant_id=settings.entra.tenant_id,
    )
    report.mailbox_problem = problem
    return report
