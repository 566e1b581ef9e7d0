"""User checks: why one person's badges do (not) show on their Microsoft 365 profile.

They walk Microsoft's troubleshooting table for one email: identity (UPN or primary SMTP),
account (enabled, licensed, mailbox), the badges Credly holds for every address of the person,
whether a crawl has written them since they changed, and the expected-behaviour notes.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from credly_connector.diagnostics import user_lookup as lookup
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import PASSING, CheckResult, fail, note, ok, skipped, warn
from credly_connector.diagnostics.registry import register
from credly_connector.identity.addresses import MatchKey, primary_smtp
from credly_connector.identity.eligibility import BadgeSkip, UserSkip, user_skip_reasons
from credly_connector.identity.entities import BadgeCategory, item_id
from credly_connector.identity.item_schema import AWARDS_PROPERTY, CERTIFICATIONS_PROPERTY
from credly_connector.identity.near_miss import AddressKind
from credly_connector.identity.outcome import MAILBOX_UNKNOWN, Mailbox, mailbox_from_plans

IDENTITY = "user.identity"
ACCOUNT = "user.account"
BADGES = "user.badges"
CONNECTION = "user.connection"
SYNCED = "user.synced"
NOTES = "user.notes"

# Rows of Microsoft's table are in model.TABLE_ROWS; causes the table does not list have none.
ROW_EMAIL = "email-mismatch"
ROW_BADGE = "badge-not-accepted-or-private"
ROW_INACTIVE = "user-inactive"
ROW_INITIAL = "initial-sync-incomplete"
ROW_NOT_SYNCED = "not-synced-yet"
ROW_MULTIPLE_ORGS = "multiple-orgs"

# How long Microsoft says data can take to show after the connection is created.
PROPAGATION = timedelta(hours=6)


def _sync_now(email: str) -> str:
    return f"run `credlyctl sync --user {email}` to write it now"


# -- identity -------------------------------------------------------------------------------


@register(
    IDENTITY,
    "Directory user for the email",
    scope="user",
    table_rows=("email-mismatch",),
    cause="The email matches no user's UPN or primary SMTP address (only an alias, nobody, "
    "or several users).",
    fix="Reissue the badge to the person's UPN or primary SMTP address, or make the address "
    "the user's primary SMTP address.",
)
def check_identity(ctx: DiagnosticContext) -> CheckResult:
    ident = lookup.identity(ctx)
    email = ident.email
    if ident.status is lookup.IdentityStatus.MATCHED and ident.user and ident.key:
        user = ident.user
        how = "UPN" if ident.key is MatchKey.UPN else "primary SMTP address"
        evidence: dict[str, Any] = {
            "email": email,
            "matched_by": str(ident.key),
            "directory_form": ident.directory_form,
            "case_only_difference": ident.case_only_difference,
            "user": lookup.user_summary(user),
        }
        sentence = f"{email} is the {how} of {lookup.describe_user(user)}."
        if ident.case_only_difference:
            sentence = (
                f"{email} differs only in letter case from the {how} {ident.directory_form} of "
                f"{lookup.describe_user(user)}; matching ignores case, so it still matches."
            )
        return ok(sentence, evidence=evidence, table_row=ROW_EMAIL)
    if ident.status is lookup.IdentityStatus.SEVERAL_USERS:
        names = ", ".join(lookup.describe_user(u) for u in ident.candidates)
        return fail(
            f"{email} is the UPN or primary SMTP address of several users ({names}), so no "
            "badge issued to it is put on any profile.",
            "Keep the address on one user only (Entra admin center > Users), then run a sync.",
            evidence={
                "email": email,
                "users": [lookup.user_summary(u) for u in ident.candidates],
            },
            table_row=ROW_EMAIL,
            cause="email_several_users",
        )
    if ident.status is lookup.IdentityStatus.ALIAS_ONLY:
        owner = ident.alias_owners[0]
        upn = owner.user_principal_name
        primary = primary_smtp(owner) or upn
        return fail(
            f"{email} is only a secondary address of {lookup.describe_user(owner)}; badges "
            f"match the UPN ({upn}) or the primary SMTP address ({primary}) only.",
            f"Ask the issuer to reissue the badge to {upn}, or make {email} the primary SMTP "
            "address of that user.",
            evidence={
                "email": email,
                "alias_of": [lookup.user_summary(u) for u in ident.alias_owners],
            },
            table_row=ROW_EMAIL,
            cause="email_secondary_alias",
        )
    badge_names = [f.badge.issued_to for f in lookup.badges(ctx) if f.badge.issued_to]
    search = lookup.suggestions(ctx, email, badge_names)
    closest = search.suggestions[0] if search.suggestions else None
    fix = "Reissue the badge to the person's work address (UPN or primary SMTP)"
    if closest is not None:
        fix += (
            f"; the closest directory user is {lookup.describe_user(closest.user)} "
            f"({closest.reason}: {closest.detail})"
        )
    elif search.complete:
        fix += (
            "; no directory user has the name on the badge or a similar address, so the "
            "person may not be in this tenant (for example a former employee)"
        )
    return fail(
        f"{email} is not the UPN, primary SMTP address or alias of any user in the directory "
        "(for example a personal address or a typo).",
        fix + ".",
        evidence={"email": email, **search.to_dict()},
        table_row=ROW_EMAIL,
        cause="email_no_user",
    )


# -- account --------------------------------------------------------------------------------


def _has_mailbox(ctx: DiagnosticContext, user: Any) -> Mailbox:
    """The shared mailbox rule (identity.outcome) on the user's assignedPlans."""
    try:
        plans = lookup.user_plans(ctx, user.id)
    except Exception as exc:  # the account check still concludes on the other facts
        return mailbox_from_plans(user, None, error=type(exc).__name__)
    return mailbox_from_plans(user, plans)


@register(
    ACCOUNT,
    "Account enabled, licensed, with a mailbox",
    scope="user",
    requires=(IDENTITY,),
    table_rows=(ROW_INACTIVE,),
    cause="The account is disabled, has no license, has no Exchange Online mailbox, or is on "
    "the opt-out list.",
    fix="Enable the account and assign a Microsoft 365 license that includes Exchange Online.",
)
def check_account(ctx: DiagnosticContext) -> list[CheckResult]:
    ident = lookup.identity(ctx)
    user = ident.user
    assert user is not None  # the identity check passed
    settings = ctx.require_settings()
    reasons = user_skip_reasons(user, settings.sync.opt_out)
    upn = user.user_principal_name
    evidence: dict[str, Any] = {
        "userPrincipalName": upn,
        "accountEnabled": user.account_enabled,
        "assigned_license_count": user.license_count,
        "userType": user.user_type,
        "primary_smtp": primary_smtp(user),
        "opted_out": UserSkip.OPTED_OUT in reasons,
    }
    results: list[CheckResult] = []
    if UserSkip.DISABLED in reasons:
        results.append(
            fail(
                f"The account {upn} is disabled (accountEnabled is false); only active users "
                "are indexed.",
                "Enable the account if the person is still with the company (Microsoft 365 "
                "admin center > Users), then run a sync.",
                evidence=evidence,
                table_row=ROW_INACTIVE,
                cause="user_disabled",
            )
        )
    if UserSkip.UNLICENSED in reasons:
        results.append(
            fail(
                f"The account {upn} has no Microsoft 365 license; only licensed users are indexed.",
                "Assign a license that includes Exchange Online (Microsoft 365 admin center > "
                "Users > Licenses), then run a sync.",
                evidence=evidence,
                table_row=ROW_INACTIVE,
                cause="user_unlicensed",
            )
        )
    else:
        # Without a license there is no mailbox either; that cause is the license.
        with ThreadPoolExecutor(max_workers=1) as pool:
            # The sync check reads the item next; fetch it while Graph answers this one.
            prefetch = pool.submit(lookup.user_item, ctx, user.id)
            found = _has_mailbox(ctx, user)
            prefetch.exception()
        mailbox, how = found.present, found.how
        evidence["has_mailbox"] = mailbox
        evidence["mailbox_detection"] = how
        if mailbox is False:
            results.append(
                fail(
                    f"{upn} has no Exchange Online mailbox: {how}; Microsoft 365 profiles "
                    "ignore people data of accounts without one.",
                    "Assign a license that includes Exchange Online, or create the mailbox.",
                    evidence=evidence,
                    table_row=ROW_INACTIVE,
                    cause="user_no_mailbox",
                )
            )
    if UserSkip.OPTED_OUT in reasons:
        results.append(
            fail(
                f"{upn} is on this instance's opt-out list, so their badges are never indexed.",
                "Remove the address from sync.opt_out in the configuration if the person "
                "agrees, then run a sync.",
                evidence=evidence,
                cause="user_opted_out",
            )
        )
    if results:
        return results
    if evidence.get("has_mailbox") is None:
        return [
            warn(
                f"{upn} is enabled and has {user.license_count} license(s); whether it has an "
                f"Exchange Online mailbox could not be told: {evidence['mailbox_detection']}.",
                "Grant User.Read.All so credlyctl can read assignedPlans, or check the mailbox "
                "in the Exchange admin center.",
                evidence=evidence,
                table_row=ROW_INACTIVE,
                cause=MAILBOX_UNKNOWN,
            )
        ]
    return [
        ok(
            f"{upn} is enabled and has {user.license_count} license(s) and a mailbox.",
            evidence=evidence,
        )
    ]


# -- badges ---------------------------------------------------------------------------------


def _names(findings: list[lookup.BadgeFinding]) -> str:
    return ", ".join(f"'{f.badge.template_name}' ({f.badge.recipient_email})" for f in findings)


# (skip reason, cause id, explanation start, fix) for badges the person can or cannot act on.
_BADGE_CAUSES: tuple[tuple[BadgeSkip, str, str, str], ...] = (
    (
        BadgeSkip.PENDING,
        "badge_pending",
        "Not accepted yet on Credly (pending)",
        "Ask the person to accept the badge on their Credly profile; it is indexed at the next "
        "sync.",
    ),
    (
        BadgeSkip.REJECTED,
        "badge_rejected",
        "Rejected by the person on Credly",
        "Only the person can change this, by claiming a reissued badge.",
    ),
    (
        BadgeSkip.REVOKED,
        "badge_revoked",
        "Revoked by the issuer",
        "Nothing to fix unless the revocation was a mistake: then the issuer reissues it.",
    ),
    (
        BadgeSkip.REPLACED,
        "badge_replaced",
        "Replaced by a newer badge",
        "Look for the replacing badge; it is the one that can be indexed.",
    ),
    (
        BadgeSkip.UNKNOWN_STATE,
        "badge_unknown_state",
        "In a state credlyctl does not know, so not indexed",
        "Check the badge in Credly and report the state to credlyctl's maintainers.",
    ),
)


def _badge_results(
    findings: list[lookup.BadgeFinding], evidence: dict[str, Any]
) -> list[CheckResult]:
    results: list[CheckResult] = []
    for reason, cause, what, fix in _BADGE_CAUSES:
        hit = [f for f in findings if reason in f.skip_reasons]
        if hit:
            results.append(
                fail(
                    f"{what}: {_names(hit)}; only accepted, public badges are indexed.",
                    fix,
                    evidence=evidence,
                    table_row=ROW_BADGE,
                    cause=cause,
                )
            )
    accepted = [f for f in findings if f.badge.state == "accepted"]
    private = [f for f in accepted if BadgeSkip.PRIVATE in f.skip_reasons]
    if private:
        results.append(
            fail(
                f"Accepted but private on Credly: {_names(private)}; private badges are not "
                "indexed.",
                "Ask the person to make the badge public on their Credly profile (badge "
                "settings > public), then run a sync.",
                evidence=evidence,
                table_row=ROW_BADGE,
                cause="badge_private",
            )
        )
    expired = [f for f in accepted if BadgeSkip.EXPIRED in f.skip_reasons]
    if expired:
        dates = ", ".join(
            f"'{f.badge.template_name}' on {f.badge.expires_at:%Y-%m-%d}"
            for f in expired
            if f.badge.expires_at
        )
        results.append(
            fail(
                f"Expired ({dates}); an expired credential is not shown as current.",
                "The person renews the credential with the issuer; the renewed badge is "
                "indexed at the next sync.",
                evidence=evidence,
                table_row=ROW_BADGE,
                cause="badge_expired",
            )
        )
    return results


def _synced_elsewhere(elsewhere: list[lookup.OtherOrgBadges]) -> bool:
    """Every badge found in other organizations is on a profile through its own instance."""
    return bool(elsewhere) and all(
        status is lookup.BadgeSync.SYNCED for o in elsewhere for status, _ in o.sync
    )


def _other_org_result(
    email: str, elsewhere: list[lookup.OtherOrgBadges], evidence: dict[str, Any]
) -> CheckResult:
    first = next(
        (o for o in elsewhere if any(s is not lookup.BadgeSync.SYNCED for s, _ in o.sync)),
        elsewhere[0],
    )
    names = ", ".join(f"'{b.template_name}'" for b in first.badges)
    if first.instance:
        fix = (
            f"That organization is read by instance '{first.instance}', which has not synced "
            f"the badge yet: run `credlyctl sync --instance {first.instance}` (after "
            f"`credlyctl setup --instance {first.instance}` if it was never set up), then "
            f"`credlyctl explain-user {email} --instance {first.instance}`."
        )
    else:
        fix = (
            f"Add a connector instance for organization {first.org_id} (one instance per "
            "Credly organization), then run `credlyctl setup` and `credlyctl sync` for it."
        )
    return fail(
        f"This instance's organization holds no badge for the person, but Credly "
        f"organization {first.org_id} does ({names}); each instance reads one organization.",
        fix,
        evidence=evidence,
        table_row=ROW_MULTIPLE_ORGS,
        cause="badge_in_other_organization",
    )


def _no_badges(
    ctx: DiagnosticContext, email: str, evidence: dict[str, Any], limited: list[str]
) -> CheckResult:
    survey = lookup.other_sources(ctx)
    unseen = (
        ""
        if survey.organizations_listed
        else " credlyctl cannot list the Credly organizations this credential can see, so "
        "badges in organizations no instance reads could not be looked for."
    )
    widen = ""
    if limited:
        names = ", ".join(limited)
        widen = (
            f" The search for badges at the person's other addresses was limited: instance(s) "
            f"{names} have no completed crawl to search; run `credlyctl sync` for them to "
            "widen it."
        )
    return fail(
        f"Credly holds no badge for {email} or any other address the directory holds for the "
        f"person, and none at an address that looks like theirs.{unseen}",
        "Ask the person which email address their badge was issued to and run "
        f"`credlyctl explain-user` with it; check with the badge issuer.{widen}",
        evidence=evidence,
        cause="no_badges",
    )


def _near_miss_result(
    ident: lookup.Identity, search: lookup.NearMissSearch, evidence: dict[str, Any]
) -> CheckResult:
    user = ident.user or ident.alias_owners[0]
    work = primary_smtp(user) or user.user_principal_name
    lines = []
    for finding in search.findings:
        names = ", ".join(f"'{b.template_name}'" for b in finding.badges)
        where = f" (instance {finding.instance})" if finding.instance else ""
        lines.append(f"{finding.miss.address}{where}: {names}; {finding.miss.reason()}")
    kinds = {f.miss.kind for f in search.findings}
    fixes = [f"ask the issuer to reissue the badge to {work}, the address credlyctl matches"]
    if kinds - {AddressKind.WORK}:
        fixes.append(
            f"ask the person to add {work} to their Credly account as an additional email "
            "(Credly: Settings > Account > Add Email Address, then confirm the verification "
            "email), so later badges sent to either address reach the same account"
        )
    return fail(
        f"Credly holds badge(s) at an address that is probably {describe(user)}'s but is not "
        f"their UPN or primary SMTP address: " + " | ".join(lines) + ".",
        _sentence("; ".join(fixes)) + " A badge keeps the address it was issued to.",
        evidence=evidence,
        table_row=ROW_EMAIL,
        cause="email_mismatch",
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def describe(user: Any) -> str:
    return str(user.display_name or user.user_principal_name)


@register(
    BADGES,
    "Badges in Credly",
    scope="user",
    table_rows=(ROW_BADGE, ROW_EMAIL, ROW_MULTIPLE_ORGS),
    cause="Badges are pending, private, rejected, revoked, expired, issued to an address that "
    "is not the UPN or primary SMTP, in another Credly organization, or there are none.",
    fix="Ask the person to accept the badge and share it publicly on Credly; reissue badges "
    "sent to another address.",
)
def check_badges(ctx: DiagnosticContext) -> list[CheckResult]:
    ident = lookup.identity(ctx)
    findings = lookup.badges(ctx)
    search = lookup.near_misses(ctx)
    elsewhere = lookup.other_org_badges(ctx)
    own = lookup.own_source(ctx)
    states = own.sync_states(f.badge.id for f in findings)
    evidence: dict[str, Any] = {
        "addresses_looked_up": lookup.person_addresses(ident),
        "badges": [
            {**f.to_dict(), "instance": own.instance, "sync": str(status), "sync_skip": skip}
            for f, (status, skip) in zip(findings, states, strict=True)
        ],
        "near_miss_search": search.to_dict(),
        "other_organizations": [o.to_dict() for o in elsewhere],
        "sources": lookup.other_sources(ctx).to_dict(),
    }
    if ctx.badge_scan is not None:
        evidence["unfiltered_scan"] = ctx.badge_scan.to_dict()
    results: list[CheckResult] = []
    if search.findings:
        results.append(_near_miss_result(ident, search, evidence))
    if elsewhere and not findings and not _synced_elsewhere(elsewhere):
        results.append(_other_org_result(ident.email, elsewhere, evidence))
    if not findings:
        if results:
            return results
        if _synced_elsewhere(elsewhere):
            return [_elsewhere_ok(elsewhere, evidence)]
        return [_no_badges(ctx, ident.email, evidence, search.limited)]
    results += _badge_results(findings, evidence)
    if ident.user is not None:
        elsewhere_address = [f for f in findings if not f.recipient_matches_user]
        if elsewhere_address:
            upn = ident.user.user_principal_name
            results.append(
                fail(
                    f"Issued to an address that is not {upn}'s UPN or primary SMTP address, so "
                    f"it does not reach the profile: {_names(elsewhere_address)}.",
                    f"Ask the issuer to reissue the badge to {upn}, or have the person change "
                    "the badge's email on Credly.",
                    evidence=evidence,
                    table_row=ROW_EMAIL,
                    cause="email_badge_to_other_address",
                )
            )
    if results:
        return results
    awards = sum(1 for f in findings if f.category is BadgeCategory.AWARD)
    synced = sum(1 for status, _ in states if status is lookup.BadgeSync.SYNCED)
    also = "".join(
        f"; also {len(o.badges)} in instance '{o.instance or 'none'}' ({o.org_id}), "
        f"{sum(1 for s, _ in o.sync if s is lookup.BadgeSync.SYNCED)} synced there"
        for o in elsewhere
    )
    return [
        ok(
            f"{len(findings)} badge(s) accepted, public and current: {awards} award(s), "
            f"{len(findings) - awards} certification(s); instance '{own.instance}' has "
            f"synced {synced} of them{also}.",
            evidence=evidence,
        )
    ]


def _elsewhere_ok(elsewhere: list[lookup.OtherOrgBadges], evidence: dict[str, Any]) -> CheckResult:
    where = "; ".join(
        f"instance '{o.instance}' ({o.org_id}): "
        + ", ".join(f"'{b.template_name}'" for b in o.badges)
        for o in elsewhere
    )
    return ok(
        f"This instance's organization holds no badge for the person; their badges are in "
        f"other organizations and synced by the instances reading them: {where}.",
        evidence=evidence,
    )


# -- connection seen from the person's side ------------------------------------------------


@register(
    CONNECTION,
    "Connection ready and profile source first",
    scope="user",
    table_rows=(ROW_INITIAL,),
    cause="The connection does not exist or is not ready, or it is not a profile source ahead "
    "of the Entra ID source.",
    fix="Run `credlyctl setup`.",
)
def check_connection(ctx: DiagnosticContext) -> list[CheckResult]:
    """The person's side of the connection checks, with their very results and cause ids.

    explain-user runs the user checks only, so it asks the same questions as
    graph.connection_state, graph.profile_source and graph.profile_priority (answered from the
    context's shared lookups: no extra request when diagnose runs both).
    """
    from credly_connector.diagnostics.checks import graph_checks

    found: list[CheckResult] = []
    for question in (
        graph_checks.connection_state,
        graph_checks.profile_source,
        graph_checks.profile_priority,
    ):
        outcome = question(ctx)
        failing = [
            replace(r, check_id="", title="")
            for r in (outcome if isinstance(outcome, list) else [outcome])
            if r.status not in PASSING
        ]
        found += failing
        if failing and question is graph_checks.connection_state:
            break  # without a ready connection the profile source questions are moot
    if found:
        return found
    connection_id = ctx.require_settings().graph.connection_id
    return [
        ok(
            f"The connection {connection_id} is ready and registered as a profile source ahead "
            "of Microsoft Entra ID.",
            evidence={"connection_id": connection_id},
        )
    ]


# -- sync -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrawlFacts:
    last_completed_start: datetime | None  # start of the latest completed crawl (any kind)
    last_full_completed: bool
    next_due: datetime | None
    item_last_write: datetime | None
    item_last_error: str | None
    state_found: bool


def crawl_facts(ctx: DiagnosticContext, user_id: str) -> CrawlFacts:
    return ctx.memo(f"user:crawl:{user_id}", lambda: _read_crawl_facts(ctx, user_id))


def _read_crawl_facts(ctx: DiagnosticContext, user_id: str) -> CrawlFacts:
    # A fresh read-only connection in this thread: sqlite connections are bound to a thread.
    from credly_connector.sync.schedule import schedule_for
    from credly_connector.sync.state import open_readonly, state_path

    settings = ctx.require_settings()
    state = open_readonly(state_path(settings.sync.state_dir, settings.name))
    if state is None:
        return CrawlFacts(None, False, None, None, None, False)
    try:
        schedule = schedule_for(state, settings.sync)
        crawls = [c for c in (schedule.last_full, schedule.last_incremental) if c is not None]
        latest = max((c.started_at for c in crawls), default=None)
        item = state.item_for_user(user_id)
        return CrawlFacts(
            last_completed_start=latest,
            last_full_completed=schedule.last_full is not None,
            next_due=schedule.next_due,
            item_last_write=item.last_write if item else None,
            item_last_error=item.last_error if item else None,
            state_found=True,
        )
    finally:
        state.close()


def _item_entries(item: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not isinstance(item, dict):
        return []
    properties = item.get("properties")
    if not isinstance(properties, dict):
        return []
    entries: list[dict[str, Any]] = []
    for name in (AWARDS_PROPERTY, CERTIFICATIONS_PROPERTY):
        values = properties.get(name)
        for value in values if isinstance(values, list) else []:
            try:
                parsed = json.loads(value) if isinstance(value, str) else value
            except ValueError:
                continue
            if isinstance(parsed, dict):
                entries.append(parsed)
    return entries


def _in_item(finding: lookup.BadgeFinding, entries: list[dict[str, Any]]) -> bool:
    badge = finding.badge
    for entry in entries:
        if badge.badge_url and entry.get("webUrl") == badge.badge_url:
            return True
        if entry.get("certificationId") == badge.id:
            return True
        if not badge.badge_url and entry.get("displayName") == badge.template_name:
            return True
    return False


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "never"


@register(
    SYNCED,
    "Badges written to the profile by a crawl",
    scope="user",
    requires=(IDENTITY, ACCOUNT),
    table_rows=("initial-sync-incomplete", "not-synced-yet"),
    cause="No crawl has completed, or none since the badge was accepted or changed, or the "
    "user's item lacks the badge.",
    fix="Run `credlyctl sync --user EMAIL` (or wait for the next scheduled crawl).",
)
def check_synced(ctx: DiagnosticContext) -> list[CheckResult]:
    ident = lookup.identity(ctx)
    user = ident.user
    assert user is not None
    expected = [f for f in lookup.badges(ctx) if f.indexable]
    if not expected:
        return [
            skipped(
                "No badge of this person should be on the profile, so there is nothing to look "
                "for in the connection."
            )
        ]
    facts = crawl_facts(ctx, user.id)
    email = ident.email
    evidence: dict[str, Any] = {
        "state_found": facts.state_found,
        "last_completed_crawl_started": _when(facts.last_completed_start),
        "next_crawl_due": _when(facts.next_due) if facts.last_full_completed else "now",
        "item_id": item_id(user.id),
        "item_last_write": _when(facts.item_last_write),
        "expected_badges": [f.badge.id for f in expected],
    }
    if not facts.last_full_completed or facts.last_completed_start is None:
        return [
            fail(
                "No full crawl of this instance has completed yet, so nothing has been "
                "written to profiles.",
                "Check `credlyctl status`; run `credlyctl sync --full` (the first crawl can "
                "take a while on large organizations).",
                evidence=evidence,
                table_row=ROW_INITIAL,
                cause="no_completed_crawl",
            )
        ]
    since = facts.last_completed_start
    item = lookup.user_item(ctx, user.id)
    entries = _item_entries(item)
    # A badge in the item is synced, whichever run wrote it (a `sync --user` run included).
    absent = [f for f in expected if not _in_item(f, entries)]
    newer = [f for f in absent if f.changed_at is not None and f.changed_at > since]
    missing = [f for f in absent if f not in newer]
    evidence["item_found"] = item is not None
    evidence["item_badge_count"] = len(entries)
    evidence["badges_changed_after_last_crawl"] = [f.badge.id for f in newer]
    evidence["badges_missing_from_item"] = [f.badge.id for f in missing]
    results: list[CheckResult] = []
    due = _when(facts.next_due)
    if newer:
        results.append(
            fail(
                f"{_names(newer)} changed after the last completed crawl "
                f"({_when(since)}); the next crawl is due {due}.",
                f"Wait for the next crawl, or {_sync_now(email)}.",
                evidence=evidence,
                table_row=ROW_NOT_SYNCED,
                cause="not_synced_yet",
            )
        )
    if missing:
        if facts.item_last_error:
            why = f"writing the item failed ({facts.item_last_error})"
        else:
            why = "the person's account or badge changed since, or the crawl skipped them"
        where = "has no item for" if item is None else "has an item without"
        results.append(
            fail(
                f"The connection {where} {_names(missing)} after the crawl of {_when(since)}: "
                f"{why}; the next crawl is due {due}.",
                f"Wait for the next crawl, or {_sync_now(email)}; `credlyctl status` lists "
                "item errors.",
                evidence=evidence,
                table_row=ROW_NOT_SYNCED,
                cause="not_synced_yet",
            )
        )
    if results:
        return results
    extra = len(entries) - len(expected)
    if extra > 0:
        return [
            warn(
                f"The item holds {len(entries)} badge(s) but only {len(expected)} should be "
                "there; the next crawl removes the others.",
                f"Wait for the next crawl, or {_sync_now(email)}.",
                evidence=evidence,
                table_row=ROW_NOT_SYNCED,
                cause="item_has_stale_badges",
            )
        ]
    return [
        ok(
            f"The item {item_id(user.id)} holds all {len(expected)} badge(s), written by the "
            f"crawl of {_when(facts.item_last_write or since)}.",
            evidence=evidence,
        )
    ]


# -- expected behaviour ----------------------------------------------------------------------


@register(
    NOTES,
    "Expected behaviour",
    scope="user",
    requires=(IDENTITY, ACCOUNT),
    table_rows=("copilot-cites-office",),
    cause="Not a fault: how Microsoft 365 shows and attributes people data.",
    fix="Nothing to fix.",
)
def check_notes(ctx: DiagnosticContext) -> list[CheckResult]:
    ident = lookup.identity(ctx)
    indexable = [f for f in lookup.badges(ctx) if f.indexable]
    if not indexable:
        return [skipped("No badge of this person should be on the profile; nothing to note.")]
    awards = sum(1 for f in indexable if f.category is BadgeCategory.AWARD)
    certifications = len(indexable) - awards
    results = [
        note(
            "When Copilot answers with this person's badges it cites office.com, not Credly: "
            "Microsoft 365 attributes all profile data to the unified profile. This is expected.",
            table_row="copilot-cites-office",
            cause="copilot_cites_office_com",
        ),
        note(
            f"Once synced, {awards} award(s) and {certifications} certification(s) show in the "
            "Awards and Certifications sections of the profile card (Outlook profile card and "
            "Org Explorer; not in the Teams card as of May 2026, per a third-party report).",
            evidence={"awards": awards, "certifications": certifications},
        ),
    ]
    user = ident.user
    if user is not None:
        facts = crawl_facts(ctx, user.id)
        written = facts.item_last_write
        if written is not None and ctx.now - written < PROPAGATION:
            results.append(
                note(
                    f"The item was written at {_when(written)}; Microsoft says data can take up "
                    "to 6 hours to appear in profiles and Copilot after a connection is created.",
                    "Wait a few hours before looking again.",
                    evidence={"item_last_write": _when(written)},
                )
            )
    return results
