"""What becomes of one badge: the rules coverage, diagnose and explain-user share.

Every badge goes down the same stages (issued, accepted, public, not expired, matched to a
user, user active and licensed, user has a mailbox, synced) until the first one it fails; the
cause ids are the ones explain-user reports. Whether a user has a mailbox is read from their
`assignedPlans` (Graph has no "has a mailbox" property); when they could not be read the answer
is "could not tell", never "has a mailbox".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from credly_connector.credly.models import Badge
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.addresses import primary_smtp
from credly_connector.identity.eligibility import BadgeSkip, badge_skip_reasons, user_skip_reasons
from credly_connector.identity.matching import MatchResult, MatchStatus

STAGES: tuple[str, ...] = (
    "issued",
    "accepted",
    "public",
    "not_expired",
    "matched_to_user",
    "user_active_and_licensed",
    "user_has_mailbox",
    "synced",
)

# The last stage a badge passed when Credly's side stops it.
_BADGE_STAGE = {
    BadgeSkip.PRIVATE: "accepted",
    BadgeSkip.EXPIRED: "public",
    BadgeSkip.NO_RECIPIENT_EMAIL: "not_expired",
}

MAILBOX_UNKNOWN = "user_mailbox_unknown"
_EXCHANGE = "exchange"


@dataclass(frozen=True)
class Mailbox:
    """Whether a user has an Exchange Online mailbox: True, False or None (could not tell)."""

    present: bool | None
    how: str


def mailbox_from_plans(
    user: DirectoryUser, plans: Iterable[dict[str, Any]] | None, *, error: str | None = None
) -> Mailbox:
    """The mailbox rule: an enabled Exchange Online plan in `assignedPlans` (inferred).

    `plans` None: the user was not found when reading them; `error`: they could not be read.
    """
    if primary_smtp(user) is None:
        return Mailbox(False, "the account has no mail or primary SMTP address")
    if error is not None:
        return Mailbox(None, f"assignedPlans could not be read ({error})")
    if plans is None:
        return Mailbox(None, "the user was not found when reading assignedPlans")
    enabled = any(
        str(p.get("service", "")).lower() == _EXCHANGE
        and str(p.get("capabilityStatus", "")).lower() == "enabled"
        for p in plans
    )
    if enabled:
        return Mailbox(True, "assignedPlans holds an enabled Exchange Online plan (inferred)")
    return Mailbox(False, "assignedPlans holds no enabled Exchange Online plan (inferred)")


@dataclass(frozen=True)
class Outcome:
    reached: str  # the last stage passed
    cause: str | None  # why the badge stopped there; None when it is on the profile


def credly_outcome(badge: Badge, now: datetime) -> Outcome | None:
    """The Credly-side stop of a badge (state, public, expiry, recipient), None if it passes."""
    reasons = badge_skip_reasons(badge, now)
    if not reasons:
        return None
    first = reasons[0]
    return Outcome(_BADGE_STAGE.get(first, "issued"), str(first))


def badge_outcome(
    badge: Badge,
    now: datetime,
    match: MatchResult,
    *,
    opt_out: Collection[str],
    mailbox: Mailbox | None,
    synced: bool,
    is_alias: bool = False,
) -> Outcome:
    """How far one badge gets and why it stops (the first failing stage).

    `mailbox`: the matched user's mailbox (None: not looked up, which counts as could not
    tell); `synced`: the sync wrote the badge in the user's item as it is now; `is_alias`: the
    recipient address is a secondary address of some user.
    """
    stop = credly_outcome(badge, now)
    if stop is not None:
        return stop
    if match.status is MatchStatus.SEVERAL_USERS:
        return Outcome("not_expired", "email_several_users")
    if match.status is not MatchStatus.MATCHED or match.user is None:
        return Outcome("not_expired", "email_secondary_alias" if is_alias else "email_no_user")
    user = match.user
    reasons = user_skip_reasons(user, opt_out)
    if reasons:
        return Outcome("matched_to_user", str(reasons[0]))
    if mailbox is None or mailbox.present is None:
        return Outcome("user_active_and_licensed", MAILBOX_UNKNOWN)
    if mailbox.present is False:
        return Outcome("user_active_and_licensed", "user_no_mailbox")
    if not synced:
        return Outcome("user_has_mailbox", "not_synced_yet")
    return Outcome("synced", None)
