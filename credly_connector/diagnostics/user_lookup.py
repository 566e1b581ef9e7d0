"""What the user checks find out about one person, each lookup done once per diagnosis.

The identity, account, badge and sync checks all start from the same facts (which directory
user the email belongs to, which badges Credly holds for that person's addresses), so those
facts are computed here, memoised on the `DiagnosticContext`, and shared by the checks.
The rules themselves come from `credly_connector.identity`, so an explanation always describes
what the sync actually does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from credly_connector.config.resolved import InstanceSettings
from credly_connector.credly.models import Badge
from credly_connector.diagnostics.context import BadgeScan
from credly_connector.errors import UsageError
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.addresses import (
    MatchKey,
    all_addresses,
    build_index,
    match_keys,
    normalize_email,
    primary_smtp,
    secondary_smtp,
)
from credly_connector.identity.eligibility import BadgeSkip, badge_skip_reasons
from credly_connector.identity.entities import BadgeCategory, badge_category, item_id
from credly_connector.identity.matching import MatchStatus, match_email
from credly_connector.identity.near_miss import (
    NearMiss,
    Person,
    PersonName,
    UnmatchedBadge,
    edit_distance,
    find_near_misses,
    near_miss,
)

if TYPE_CHECKING:
    from credly_connector.diagnostics.context import DiagnosticContext
    from credly_connector.sync.state import SyncState

T = TypeVar("T")

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
    if not pairs and _crawl_saw_badges(ctx, addresses) is not False:
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


def _crawl_saw_badges(ctx: DiagnosticContext, addresses: list[str]) -> bool | None:
    """Whether the last crawl that read every badge saw one at these addresses (any case);
    None when no such crawl is recorded. When it saw none, the filtered lookups' empty answer
    is not a case-sensitivity artefact, and the unfiltered scan (one more round, and a long
    one in a large organization) is not needed."""

    def read(state: SyncState) -> bool | None:
        if state.unmatched_badges_at() is None:
            return None
        return any(state.badges_for_email(a) for a in addresses)

    try:
        return _with_state(ctx.require_settings(), read)
    except Exception:  # an unreadable state is reported by the sync checks; scan as before
        return None


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


# -- every configured instance and the organizations credlyctl can see ----------------------


class BadgeSync(StrEnum):
    """What an instance's state says about one badge."""

    SYNCED = "synced"  # the instance's last crawl put it on a profile
    NOT_INDEXED = "not_indexed"  # the last crawl saw it and left it out (see skip reason)
    NOT_SYNCED_YET = "not_synced_yet"  # no crawl of that instance has seen it yet
    NO_INSTANCE = "no_instance"  # no configured instance reads its organization


@dataclass(frozen=True)
class BadgeSource:
    """One Credly organization to look in: the instance reading it (None: no instance does)."""

    org_id: str
    instance: str | None
    settings: InstanceSettings | None
    client: Any

    def sync_states(self, badge_ids: Iterable[str]) -> list[tuple[BadgeSync, str | None]]:
        """(status, skip reason) of each badge in this instance's state store."""
        ids = list(badge_ids)
        if self.settings is None or self.instance is None:
            return [(BadgeSync.NO_INSTANCE, None) for _ in ids]
        records = _with_state(self.settings, lambda state: [state.badge(i) for i in ids])
        return [_sync_of(r) for r in (records or [None] * len(ids))]


def _sync_of(record: Any) -> tuple[BadgeSync, str | None]:
    if record is None:
        return BadgeSync.NOT_SYNCED_YET, None
    if record.skip_reason is None and record.user_id:
        return BadgeSync.SYNCED, None
    return BadgeSync.NOT_INDEXED, record.skip_reason


def own_source(ctx: DiagnosticContext) -> BadgeSource:
    """The instance being diagnosed, as a source (its client is the context's own)."""
    settings = ctx.require_settings()
    return BadgeSource(settings.credly.org_id.lower(), settings.name, settings, None)


def _with_state(settings: InstanceSettings, read: Callable[[Any], T]) -> T | None:
    """`read(state)` on a fresh read-only connection (sqlite connections belong to a thread)."""
    from credly_connector.sync.state import open_readonly, state_path

    try:
        state = open_readonly(state_path(settings.sync.state_dir, settings.name))
    except UsageError:  # unreadable or too new: the sync checks say so; read as no state
        return None
    if state is None:
        return None
    try:
        return read(state)
    finally:
        state.close()


@dataclass(frozen=True)
class OtherOrgBadges:
    org_id: str
    instance: str | None  # the configured instance that reads this organization, if any
    badges: tuple[Badge, ...]
    sync: tuple[tuple[BadgeSync, str | None], ...] = ()  # per badge, same order

    def to_dict(self) -> dict[str, Any]:
        states = self.sync or tuple((BadgeSync.NO_INSTANCE, None) for _ in self.badges)
        return {
            "org_id": self.org_id,
            "instance": self.instance,
            "badges": [
                {
                    "id": b.id,
                    "name": b.template_name,
                    "recipient_email": b.recipient_email,
                    "sync": str(status),
                    "skip_reason": reason,
                }
                for b, (status, reason) in zip(self.badges, states, strict=True)
            ],
        }


@dataclass
class SourceSurvey:
    """Where else credlyctl looked, and what it could not see."""

    sources: list[BadgeSource] = field(default_factory=list)
    organizations_listed: bool = True  # False: the credential may not list organizations
    unusable_instances: list[str] = field(default_factory=list)
    narrowed: bool = False  # --instance given: other configured instances left out

    def to_dict(self) -> dict[str, Any]:
        return {
            "instances": [s.instance for s in self.sources if s.instance],
            "unconfigured_organizations": [s.org_id for s in self.sources if not s.instance],
            "organizations_listed": self.organizations_listed,
            "unusable_instances": self.unusable_instances,
            "narrowed_to_one_instance": self.narrowed,
        }


def other_sources(ctx: DiagnosticContext) -> SourceSurvey:
    """The organizations besides the instance's own: those of the other configured instances
    (unless `--instance` narrowed the diagnosis) and those the instance's credential can see."""
    return ctx.memo("user:sources", lambda: _survey(ctx))


def configured_sources(ctx: DiagnosticContext) -> SourceSurvey:
    """The other configured instances only (read from the file: no request)."""
    return ctx.memo("user:configured_sources", lambda: _configured(ctx))


def _configured(ctx: DiagnosticContext) -> SourceSurvey:
    from credly_connector.config.load import list_instances, load_instance

    settings = ctx.require_settings()
    own = settings.credly.org_id.lower()
    survey = SourceSurvey(narrowed=not ctx.all_instances)
    path = settings.config_path or ctx.config_path
    try:
        names = [] if survey.narrowed else list_instances(path)
    except Exception:  # no file (settings built in code): nothing else is configured
        names = []
    found: dict[str, BadgeSource] = {}
    for name in names:
        if name == settings.name:
            continue
        try:
            other = load_instance(path, name)
        except Exception:  # an unusable instance is validate-config's business
            survey.unusable_instances.append(name)
            continue
        org = other.credly.org_id.lower()
        if org != own and org not in found:
            found[org] = BadgeSource(org, name, other, ctx.credly_for(other))
    survey.sources = list(found.values())
    return survey


def _survey(ctx: DiagnosticContext) -> SourceSurvey:
    from dataclasses import replace

    settings = ctx.require_settings()
    configured = configured_sources(ctx)
    survey = replace(configured, sources=list(configured.sources))
    taken = {settings.credly.org_id.lower()} | {s.org_id for s in survey.sources}
    try:
        visible = ctx.credly().list_organizations()
    except Exception:  # listing is a bonus; Credly may refuse it for this credential
        visible = []
        survey.organizations_listed = False
    for organization in visible:
        org = str(organization.id).lower()
        if org and org not in taken:
            taken.add(org)
            moved = replace(settings, credly=replace(settings.credly, org_id=org))
            survey.sources.append(BadgeSource(org, None, None, ctx.credly_for(moved)))
    return survey


def source_badges(ctx: DiagnosticContext, source: BadgeSource, address: str) -> list[Badge]:
    """The badges one organization holds for one address (memoised; [] when unreadable)."""

    def read() -> list[Badge]:
        try:
            return list(source.client.iter_badges(recipient_email=address))
        except Exception:  # this organization cannot be read with these credentials
            return []

    return ctx.memo(f"credly:{source.org_id}:badges:{address}", read)


def other_org_badges(ctx: DiagnosticContext) -> list[OtherOrgBadges]:
    """The person's badges in every other organization credlyctl reads or can see, each with
    the instance that handles it and whether that instance has synced it."""
    return ctx.memo("user:other_orgs", lambda: _other_orgs(ctx, person_addresses(identity(ctx))))


def _other_orgs(ctx: DiagnosticContext, addresses: list[str]) -> list[OtherOrgBadges]:
    sources = other_sources(ctx).sources
    pairs = [(s, a) for s in sources for a in addresses]
    if not pairs:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_LOOKUPS, len(pairs))) as pool:
        answers = list(pool.map(lambda p: source_badges(ctx, *p), pairs))
    found: list[OtherOrgBadges] = []
    for source in sources:
        badges: dict[str, Badge] = {}
        for (owner, _), answer in zip(pairs, answers, strict=True):
            if owner is source:
                for badge in answer:
                    badges.setdefault(badge.id, badge)
        if badges:
            ordered = tuple(badges.values())
            found.append(
                OtherOrgBadges(
                    source.org_id,
                    source.instance,
                    ordered,
                    tuple(source.sync_states(b.id for b in ordered)),
                )
            )
    return found


# -- near-miss badges: issued to an address that is probably the person's ----------------


@dataclass(frozen=True)
class NearMissFinding:
    miss: NearMiss
    org_id: str
    instance: str | None
    badges: tuple[Badge, ...]  # as Credly holds them now (confirmed live)

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.miss.address,
            "kind": str(self.miss.kind),
            "evidence": [str(e) for e in self.miss.evidence],
            "reason": self.miss.reason(),
            "resembles": self.miss.related_to,
            "org_id": self.org_id,
            "instance": self.instance,
            "badges": [
                {"id": b.id, "name": b.template_name, "state": b.state, "public": b.public}
                for b in self.badges
            ],
        }


@dataclass
class NearMissSearch:
    findings: list[NearMissFinding] = field(default_factory=list)
    searched: list[dict[str, Any]] = field(default_factory=list)  # per instance searched
    limited: list[str] = field(default_factory=list)  # instances without a crawl's list
    dropped: list[str] = field(default_factory=list)  # candidates Credly no longer holds

    @property
    def complete(self) -> bool:
        return not self.limited

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": [f.to_dict() for f in self.findings],
            "searched": self.searched,
            "search_complete": self.complete,
            "limited_instances": self.limited,
            "no_longer_in_credly": self.dropped,
        }


def person_of(user: DirectoryUser) -> Person:
    addresses = all_addresses(user)
    return Person(
        addresses=addresses,
        other_mails=frozenset(normalize_email(a) for a in user.other_mails if a.strip()),
        name=PersonName.parse(user.given_name, user.surname, user.display_name),
        tenant_domains=frozenset(a.rpartition("@")[2] for a in addresses),
    )


def near_misses(ctx: DiagnosticContext) -> NearMissSearch:
    """Badges at addresses that are probably the person's, from every instance's last crawl,
    confirmed against Credly."""
    return ctx.memo("user:near_misses", lambda: _search_near_misses(ctx, identity(ctx)))


def _unmatched(
    ctx: DiagnosticContext, settings: InstanceSettings
) -> tuple[list[UnmatchedBadge], datetime] | None:
    """The instance's unmatched badges as its last full read of Credly saw them (memoised);
    None when no crawl has recorded them yet."""

    def read(state: SyncState) -> tuple[list[UnmatchedBadge], datetime] | None:
        at = state.unmatched_badges_at()
        if at is None:
            return None
        rows = [
            UnmatchedBadge(
                r.badge_id, r.address, PersonName.parse(r.first_name, r.last_name, r.name)
            )
            for r in state.unmatched_badges()
        ]
        return rows, at

    return ctx.memo(f"state:unmatched:{settings.name}", lambda: _with_state(settings, read))


def _name_count(settings: InstanceSettings, name: PersonName) -> int | None:
    """How many directory users carry `name`, from the last crawl's snapshot (None: unknown)."""

    def read(state: SyncState) -> int | None:
        mentioning = state.snapshot_users_mentioning(name.last) if name.last.isascii() else None
        entries = mentioning if mentioning is not None else list(state.users_snapshot().values())
        if not entries and state.last_crawl() is None:
            return None
        return sum(1 for d in entries if PersonName.parse(None, None, d.get("name")) == name)

    return _with_state(settings, read)


def _candidates(
    ctx: DiagnosticContext, user: DirectoryUser
) -> tuple[NearMissSearch, list[tuple[BadgeSource, NearMiss]]]:
    """The near-miss candidates of every instance's last crawl (not yet confirmed)."""
    search = NearMissSearch()
    settings = ctx.require_settings()
    person = person_of(user)
    stores = [own_source(ctx)] + [s for s in configured_sources(ctx).sources]
    counts: dict[PersonName, int] | None = None
    if person.name is not None:
        count = _name_count(settings, person.name)
        counts = None if count is None else {person.name: count}
    candidates: list[tuple[BadgeSource, NearMiss]] = []
    for store in stores:
        assert store.settings is not None
        recorded = _unmatched(ctx, store.settings)
        if recorded is None:
            search.limited.append(store.settings.name)
            continue
        rows, at = recorded
        search.searched.append(
            {"instance": store.instance, "unmatched_badges": len(rows), "recorded_at": str(at)}
        )
        candidates += [(store, m) for m in find_near_misses(person, rows, name_counts=counts)]
    # otherMails are the person's by the directory's word: ask Credly even without a crawl.
    known = {m.address for _, m in candidates}
    for address in sorted(person.other_mails - known - person.addresses):
        miss = near_miss(person, address, None, name_is_unique=False)
        if miss is not None:
            candidates += [(store, miss) for store in stores]
    return search, candidates


def _search_near_misses(ctx: DiagnosticContext, ident: Identity) -> NearMissSearch:
    user = ident.user or (ident.alias_owners[0] if ident.alias_owners else None)
    if user is None:
        return NearMissSearch()
    search, candidates = _candidates(ctx, user)
    if not candidates:
        return search
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_LOOKUPS, len(candidates))) as pool:
        answers = list(pool.map(lambda c: _confirm(ctx, *c), candidates))
    for (store, miss), badges in zip(candidates, answers, strict=True):
        if badges:
            search.findings.append(NearMissFinding(miss, store.org_id, store.instance, badges))
        elif miss.badge_ids:
            search.dropped.append(miss.address)
    return search


def _confirm(ctx: DiagnosticContext, store: BadgeSource, miss: NearMiss) -> tuple[Badge, ...]:
    """The badges Credly holds at the candidate address right now."""
    if store.client is None:
        found = ctx.badges_by_email(miss.address)
    else:
        found = source_badges(ctx, store, miss.address)
    wanted = miss.address
    return tuple(b for b in found if normalize_email(b.recipient_email or "") == wanted)


# -- start every independent lookup at once ----------------------------------------------


def prefetch(ctx: DiagnosticContext) -> ThreadPoolExecutor:
    """Ask for everything that needs only the typed address, before any check waits on it:
    the Entra sign-in, the directory lookup, the badges of every organization for the
    address, and, when the last crawl's snapshot knows the person, their item, mailbox plans,
    other addresses' badges and near-miss confirmations (the checks verify the person is still
    the same).

    Failures are memoised and reported by the checks that need them. The caller waits for the
    returned pool (`shutdown()`) before closing the context."""
    email = target_email(ctx)
    pool = ThreadPoolExecutor(max_workers=2 * MAX_PARALLEL_LOOKUPS, thread_name_prefix="prefetch")
    tasks: list[Callable[[], Any]] = [
        # First, on its own: every Graph read waits for the token, and this builds only the
        # Entra session on the way (the directory lookup would build Graph's first).
        ctx.sign_in,
        lambda: identity(ctx),
        lambda: ctx.badges_by_email(email),
        lambda: other_sources(ctx),
    ]
    for source in configured_sources(ctx).sources:
        tasks.append(partial(source_badges, ctx, source, email))
    # An unreadable state is the sync checks' to report: the other lookups start anyway.
    with suppress(Exception):
        tasks += _snapshot_tasks(ctx, email)
    for task in tasks:
        pool.submit(quietly, task)
    return pool


def _snapshot_tasks(ctx: DiagnosticContext, email: str) -> list[Callable[[], Any]]:
    """The lookups the last crawl's snapshot lets start before the directory answers."""
    user = snapshot_user(ctx, email)
    if user is None:
        return []
    tasks: list[Callable[[], Any]] = [
        partial(user_item, ctx, user.id),
        partial(user_plans, ctx, user.id),
    ]
    addresses = person_addresses(Identity(email, IdentityStatus.MATCHED, user))
    tasks += [partial(ctx.badges_by_email, a) for a in addresses]
    for source in configured_sources(ctx).sources:
        tasks += [partial(source_badges, ctx, source, a) for a in addresses]
    _, candidates = _candidates(ctx, user)
    tasks += [partial(_confirm, ctx, store, miss) for store, miss in candidates]
    return tasks


def snapshot_user(ctx: DiagnosticContext, email: str) -> DirectoryUser | None:
    """The user the last crawl's directory snapshot holds for the address, if exactly one."""
    from credly_connector.sync.snapshot import from_snapshot

    wanted = normalize_email(email)

    def read(state: SyncState) -> DirectoryUser | None:
        users = [from_snapshot(d) for d in state.snapshot_users_mentioning(wanted)]
        owners = [u for u in users if wanted in all_addresses(u)]
        return owners[0] if len(owners) == 1 else None

    try:
        return _with_state(ctx.require_settings(), read)
    except Exception:  # an unreadable state is reported by the sync checks
        return None


def user_item(ctx: DiagnosticContext, user_id: str) -> dict[str, Any] | None:
    """The person's external item in credlyctl's connection (one GET, memoised)."""
    connection_id = ctx.require_settings().graph.connection_id
    return ctx.memo(
        f"graph:item:{user_id}",
        lambda: ctx.graph().get_item(connection_id, item_id(user_id)),
    )


def user_plans(ctx: DiagnosticContext, user_id: str) -> list[dict[str, Any]] | None:
    """The user's assignedPlans (one GET, memoised)."""
    return ctx.memo(f"graph:plans:{user_id}", lambda: ctx.graph().get_user_plans(user_id))


def quietly(task: Callable[[], Any]) -> None:
    try:
        task()
    except Exception:  # memoised: the check that needs the answer reports it
        return
