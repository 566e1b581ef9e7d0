"""Which users get an item and which badges may be indexed, each refusal with its reason."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from enum import StrEnum

from credly_connector.credly.models import Badge
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.addresses import all_addresses, normalize_email


class UserSkip(StrEnum):
    DISABLED = "user_disabled"
    UNLICENSED = "user_unlicensed"
    OPTED_OUT = "user_opted_out"


class BadgeSkip(StrEnum):
    PENDING = "badge_pending"
    REJECTED = "badge_rejected"
    REVOKED = "badge_revoked"
    REPLACED = "badge_replaced"
    UNKNOWN_STATE = "badge_unknown_state"
    PRIVATE = "badge_private"
    EXPIRED = "badge_expired"
    NO_RECIPIENT_EMAIL = "badge_no_recipient_email"


_STATE_SKIPS = {
    "pending": BadgeSkip.PENDING,
    "rejected": BadgeSkip.REJECTED,
    "revoked": BadgeSkip.REVOKED,
    "replaced": BadgeSkip.REPLACED,
}


def normalize_opt_out(emails: Collection[str]) -> frozenset[str]:
    return frozenset(normalize_email(e) for e in emails if e and e.strip())


def user_skip_reasons(user: DirectoryUser, opt_out: Collection[str] = ()) -> list[UserSkip]:
    """Empty when the user is indexed: enabled, at least one license, not opted out.

    Our decision: opting out by any address the directory holds for the person (UPN, primary
    SMTP, aliases, mail) opts the whole person out.
    """
    reasons: list[UserSkip] = []
    if not user.account_enabled:
        reasons.append(UserSkip.DISABLED)
    if user.license_count < 1:
        reasons.append(UserSkip.UNLICENSED)
    if opt_out and not all_addresses(user).isdisjoint(normalize_opt_out(opt_out)):
        reasons.append(UserSkip.OPTED_OUT)
    return reasons


def badge_skip_reasons(badge: Badge, now: datetime) -> list[BadgeSkip]:
    """Empty when the badge may be indexed: accepted, public, not expired, has a recipient.

    Our decisions: a badge whose expiry is at or before `now` is expired; a state credlyctl
    does not know is never indexed.
    """
    reasons: list[BadgeSkip] = []
    if badge.state != "accepted":
        reasons.append(_STATE_SKIPS.get(badge.state, BadgeSkip.UNKNOWN_STATE))
    if not badge.public:
        reasons.append(BadgeSkip.PRIVATE)
    if badge.expires_at is not None and badge.expires_at <= now:
        reasons.append(BadgeSkip.EXPIRED)
    if not badge.recipient_email or not badge.recipient_email.strip():
        reasons.append(BadgeSkip.NO_RECIPIENT_EMAIL)
    return reasons


def is_indexable(badge: Badge, now: datetime) -> bool:
    return not badge_skip_reasons(badge, now)
