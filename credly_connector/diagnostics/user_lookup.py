"""What the user checks find out about one person, each lookup done once per diagnosis.

The identity, account, badge and sync checks all start from the same facts (which directory
user the email belongs to, which badges Credly holds for that person's addresses), so those
facts are computed here, memoised on the `DiagnosticContext`, and shared by the checks.
The rules themselves come from `credly_connector.identity`, so an explanation always describes
what the sync actually does.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from credly_connector.credly.models import Badge
from credly_connector.diagnostics.context import BadgeScan
from credly_connector.errors import UsageError
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.addresses import (
    MatchKey,
    build_index,
    match_keys,
    normalize_email,
    primary_smtp,
    secondary_smtp,
)
from credly_connector.identity.eligibility import BadgeSkip, badge_skip_reasons
from credly_connector.identity.entities import BadgeCategory, badge_category
from credly_connector.identity.matching import MatchStatus, match_email
from credly_connector.identity.near_miss import edit_distance

if TYPE_CHECKING:
    from credly_connector.diagnostics.context import DiagnosticContext

# A directory listing for "closest user" suggestions stops after this many users, so a no-match
# on a huge tenant stays a few requests; the evidence says when the search was partial.
SUGGESTION_SCAN_LIMIT = 5000
MAX_SUGGESTIONS = 5
MAX_PARALLEL_LOOKUPS = 8


class IdentityStatus(StrEnum):
    MATCHED = "matched"
    ALIAS_ONLY = "alias_only"  # a secondary address (smtp: alias, or mail that is not primary)
    NO_USER = "no_user"
    SEVERAL_USERS = "several_users"


@dataclass(frozen=True)
class Identity:
    email: str  # as the admin typed it
    status: IdentityStatus
    user: DirectoryUser | None = None
    key: MatchKey | None = None
    directory_form: str | None = None  # the matched address exactly as the directory holds it
    alias_owners: tuple[DirectoryUser, ...] = ()
    candidates: tuple[DirectoryUser, ...] = ()

    @property
    def case_only_difference(self) -> bool:
        return self.directory_form is not None and self.directory_form.strip() != self.email


def target_email(ctx: DiagnosticContext) -> str:
    email = ctx.email
    if email is None or "@" not in email:
        raise UsageError(
            "The user checks need an email address.",
            "Give one: `credlyctl explain-user someone@contoso.com`.",
            error_id="email-required",
        )
    return email.strip()


def user_summary(user: DirectoryUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "displayName": user.display_name,
        "mail": user.mail,
        "primarySmtp": primary_smtp(user),
        "aliases": list(secondary_smtp(user)),
    }


def describe_user(user: DirectoryUser) -> str:
    name = f"{user.display_name} " if user.display_name else ""
    return f"{name}({user.user_principal_name})"


# -- identity -------------------------------------------------------------------------------


def identity(ctx: DiagnosticContext) -> Identity:
    return ctx.memo("user:identity", lambda: _resolve_identity(ctx, target_email(ctx)))


def _directory_form(user: DirectoryUser, key: MatchKey) -> str:
    if key is MatchKey.UPN:
        return user.user_principal_name
    return primary_smtp(user) or user.user_principal_name


def _holds_address(user: DirectoryUser, wanted: str) -> bool:
    addresses = [*secondary_smtp(user), user.mail or ""]
    return any(normalize_email(a) == wanted for a in addresses if a)


def _resolve_identity(ctx: DiagnosticContext, email: str) -> Identity:
    found: list[DirectoryUser] = list(ctx.users_by_addresses((email,)))
    result = match_email(email, build_index(found))
    if result.status is MatchStatus.MATCHED and result.user and result.key:
        return Identity(
            email,
            IdentityStatus.MATCHED,
            result.user,
            result.key,
            _directory_form(result.user, result.key),
        )
    if result.status is MatchStatus.SEVERAL_USERS:
        return Identity(email, IdentityStatus.SEVERAL_USERS, candidates=result.candidates)
    wanted = normalize_email(email)
    owners = tuple(u for u in found if _holds_address(u, wanted))
    if owners:
        return Identity(email, IdentityStatus.ALIAS_ONLY, alias_owners=owners)
    return Identity(email, IdentityStatus.NO_USER)


# -- suggestions for an email that matches nobody -------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    user: DirectoryUser
    reason: str  # "name on the badge", "same local part", "close spelling"
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "userPrincipalName": self.user.user_principal_name,
            "displayName": self.user.display_name,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass
class SuggestionSearch:
    suggestions: list[Suggestion] = field(default_factory=list)
    users_scanned: int = 0
    complete: bool = True  # False when the directory listing stopped at the scan limit
    names_searched: list[str] = field(default_factory=list)
    tenant_domains: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suggestions": [s.to_dict() for s in self.suggestions],
            "users_scanned": self.users_scanned,
            "directory_search_complete": self.complete,
            "names_searched": self.names_searched,
            "tenant_domains": self.tenant_domains,
        }


def suggestions(ctx: DiagnosticContext, email: str, names: Iterable[str]) -> SuggestionSearch:
    name_list = sorted({n.strip() for n in names if n and n.strip()})
    return ctx.memo(
        "user:suggestions:" + email.lower() + "|" + "|".join(name_list),
        lambda: _suggest(ctx, email, name_list),
    )


def _suggest(ctx: DiagnosticContext, email: str, names: list[str]) -> SuggestionSearch:
    search = SuggestionSearch(names_searched=names)
    picked: dict[str, Suggestion] = {}
    graph = ctx.graph()
    for name in names:
        for user in graph.search_users_by_name(name, limit=MAX_SUGGESTIONS):
            picked.setdefault(user.id, Suggestion(user, "name on the badge", name))
    wanted = normalize_email(email)
    local = wanted.split("@", 1)[0]
    domains: set[str] = set()
    for user in graph.iter_users():
        search.users_scanned += 1
        addresses = {normalize_email(a) for a in (user.user_principal_name, *_all_forms(user)) if a}
        for address in addresses:
            domains.add(address.split("@", 1)[-1])
        if user.id not in picked:
            picked_one = _compare(user, addresses, wanted, local)
            if picked_one is not None:
                picked[user.id] = picked_one
        if search.users_scanned >= SUGGESTION_SCAN_LIMIT:
            search.complete = False
            break
    order = {"name on the badge": 0, "same local part": 1, "close spelling": 2}
    search.suggestions = sorted(
        picked.values(), key=lambda s: (order.get(s.reason, 9), s.user.user_principal_name)
    )[:MAX_SUGGESTIONS]
    search.tenant_domains = sorted(domains)
    return search


def _all_forms(user: DirectoryUser) -> list[str]:
    return [a for a in (primary_smtp(user), user.mail, *secondary_smtp(user)) if a]


def _compare(
    user: DirectoryUser, addresses: set[str], wanted: str, local: str
) -> Suggestion | None:
    for address in sorted(addresses):
        if address.split("@", 1)[0] == local and address != wanted:
            return Suggestion(user, "same local part", address)
    for address in sorted(addresses):
        distance = edit_distance(wanted, address, limit=2)
        if 0 < distance <= 2:
            return Suggestion(user, "close spelling", address)
    return None


# -- badges ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadgeFinding:
    badge: Badge
    looked_up_as: str  # the address form whose lookup returned it
    category: BadgeCategory
    skip_reasons: tuple[BadgeSkip, ...]
    recipient_matches_user: bool  # the recipient email is the person's UPN or primary SMTP

    @property
    def indexable(self) -> bool:
        return not self.skip_reasons and self.recipient_matches_user

    @property
    def changed_at(self) -> datetime | None:
        """When the badge last changed in a way a crawl must pick up."""
        times = [t for t in (self.badge.accepted_at, self.badge.updated_at) if t is not None]
        return max(times) if times else self.badge.issued_at

    def to_dict(self) -> dict[str, Any]:
        badge = self.badge
        return {
            "id": badge.id,
            "name": badge.template_name,
            "recipient_email": badge.recipient_email,
            "issued_to": badge.issued_to,
            "state": badge.state,
            "public": badge.public,
            "expires_at": badge.expires_at.isoformat() if badge.expires_at else None,
            "category": str(self.category),
            "skip_reasons": [str(r) for r in self.skip_reasons],
            "recipient_matches_user": self.recipient_matches_user,
            "indexable": self.indexable,
        }


def person_addresses(ident: Identity) -> list[str]:
    """Every form to look badges up by: as typed, as the directory holds it, and lower-cased.

    Credly does not document whether its recipient_email filter ignores case, so each spelling
    the directory holds is asked for as it is, plus its lower-case form.
    """
    forms: list[str] = [ident.email]
    people = [ident.user] if ident.user else list(ident.alias_owners)
    for user in people:
        if user is not None:
            forms += [user.user_principal_name, *_all_forms(user)]
    ordered: list[str] = []
    for form in forms:
        for variant in (form.strip(), form.strip().lower()):
            if variant and "@" in variant and variant not in ordered:
                ordered.append(variant)
    return ordered


def badges(ctx: DiagnosticContext) -> list[BadgeFinding]:
    return ctx.memo("user:badges", lambda: _collect_badges(ctx, _identity_with_prefetch(ctx)))


def _identity_with_prefetch(ctx: DiagnosticContext) -> Identity:
    # The typed address's badges do not depend on the directory: ask Credly for them while
    # Graph answers the identity lookup (memoised, so the later lookup costs nothing).
    email = target_email(ctx)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(ctx.badges_by_email, email)
        try:
            return identity(ctx)
        finally:
            pending.exception()  # wait; a failure is memoised and re-raised by the real lookup


def _collect_badges(ctx: DiagnosticContext, ident: Identity) -> list[BadgeFinding]:
    addresses = person_addresses(ident)
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_LOOKUPS, len(addresses))) as pool:
        answers = list(pool.map(ctx.badges_by_email, addresses))
    keys = match_keys(ident.user) if ident.user else {}
    pairs = [(a, b) for a, found in zip(addresses, answers, strict=True) for b in found]
    if not pairs:
        pairs = _scan_without_filter(ctx, addresses)
    seen: dict[str, BadgeFinding] = {}
    for address, badge in pairs:
        if badge.id not in seen:
            recipient = normalize_email(badge.recipient_email or "")
            seen[badge.id] = BadgeFinding(
                badge=badge,
                looked_up_as=address,
                category=badge_category(badge),
                skip_reasons=tuple(badge_skip_reasons(badge, ctx.now)),
                recipient_matches_user=bool(recipient) and recipient in keys,
            )
    return sorted(seen.values(), key=lambda f: (f.badge.template_name.lower(), f.badge.id))


# When the filtered lookups find nothing, the organization's badges are listed and compared
# ignoring case, up to this many: Credly's filter may compare case-sensitively (not documented).
SCAN_LIMIT = 2500


def _scan_without_filter(ctx: DiagnosticContext, addresses: list[str]) -> list[tuple[str, Badge]]:
    wanted = {normalize_email(a): a for a in addresses}
    found: list[tuple[str, Badge]] = []
    scanned = 0
    for badge in ctx.credly().iter_badges():
        scanned += 1
        recipient = normalize_email(badge.recipient_email or "")
        if recipient in wanted:
            found.append((wanted[recipient], badge))
        if scanned >= SCAN_LIMIT:
            break
    ctx.badge_scan = BadgeScan(scanned=scanned, complete=scanned < SCAN_LIMIT)
    return found


# -- badges in other Credly organizations ---------------------------------------------------


@dataclass(frozen=True)
class OtherOrgBadges:
    org_id: str
    instance: str | None  # the configured instance that reads this organization, if any
    badges: tuple[Badge, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "org_id": self.org_id,
            "instance": self.instance,
            "badges": [
                {"id": b.id, "name": b.template_name, "recipient_email": b.recipient_email}
                for b in self.badges
            ],
        }


def other_org_badges(ctx: DiagnosticContext) -> list[OtherOrgBadges]:
    """The person's badges in the other Credly organizations credlyctl can read.

    Those are the organizations of the other instances in the configuration file and those the
    instance's own credential can see; each instance serves exactly one organization.
    """
    return ctx.memo("user:other_orgs", lambda: _other_orgs(ctx, person_addresses(identity(ctx))))


def _other_sources(ctx: DiagnosticContext) -> list[tuple[str, str | None, Any]]:
    from dataclasses import replace

    from credly_connector.config.load import list_instances, load_instance

    settings = ctx.require_settings()
    build = ctx.credly_for
    own = settings.credly.org_id.lower()
    sources: dict[str, tuple[str, str | None, Any]] = {}
    try:
        names = list_instances(settings.config_path or ctx.config_path)
    except Exception:  # no file (settings built in code): nothing else is configured
        names = []
    for name in names:
        if name == settings.name:
            continue
        try:
            other = load_instance(settings.config_path or ctx.config_path, name)
        except Exception:  # an unusable instance is validate-config's business, not ours
            continue
        org = other.credly.org_id.lower()
        if org != own and org not in sources:
            sources[org] = (org, name, build(other))
    try:
        visible = ctx.credly().list_organizations()
    except Exception:  # listing is a bonus; the instance's own org was already read
        visible = []
    for organization in visible:
        org = str(organization.id).lower()
        if org and org != own and org not in sources:
            moved = replace(settings, credly=replace(settings.credly, org_id=org))
            sources[org] = (org, None, build(moved))
    return list(sources.values())


def _other_orgs(ctx: DiagnosticContext, addresses: list[str]) -> list[OtherOrgBadges]:
    found: list[OtherOrgBadges] = []
    for org, instance, client in _other_sources(ctx):
        badges: dict[str, Badge] = {}
        for address in addresses:
            try:
                for badge in client.iter_badges(recipient_email=address):
                    badges.setdefault(badge.id, badge)
            except Exception:  # this organization cannot be read with these credentials
                break
        if badges:
            found.append(OtherOrgBadges(org, instance, tuple(badges.values())))
    return found
