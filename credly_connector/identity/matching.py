"""Which directory user a badge reaches."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from credly_connector.credly.models import Badge
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.addresses import MatchKey, UserIndex, normalize_email


class MatchStatus(StrEnum):
    MATCHED = "matched"
    NO_RECIPIENT_EMAIL = "no_recipient_email"
    NO_USER = "no_matching_user"
    SEVERAL_USERS = "several_users"


@dataclass(frozen=True)
class MatchResult:
    status: MatchStatus
    email: str | None  # the lower-cased recipient email compared
    user: DirectoryUser | None = None
    key: MatchKey | None = None
    candidates: tuple[DirectoryUser, ...] = ()  # with SEVERAL_USERS

    @property
    def matched(self) -> bool:
        return self.status is MatchStatus.MATCHED


def match_email(email: str | None, index: UserIndex) -> MatchResult:
    """Match one address against UPNs and primary SMTP addresses, ignoring case.

    Our decision: an address that is the UPN or primary SMTP of two different users matches
    neither, since a badge must never land on the wrong profile.
    """
    if not email or not email.strip():
        return MatchResult(MatchStatus.NO_RECIPIENT_EMAIL, None)
    normalized = normalize_email(email)
    entries = index.lookup(normalized)
    users: dict[str, tuple[DirectoryUser, MatchKey]] = {}
    for entry in entries:
        known = users.get(entry.user.id)
        if known is None or entry.key is MatchKey.UPN:
            users[entry.user.id] = (entry.user, entry.key)
    if not users:
        return MatchResult(MatchStatus.NO_USER, normalized)
    if len(users) > 1:
        ordered = tuple(sorted((u for u, _ in users.values()), key=lambda u: u.id))
        return MatchResult(MatchStatus.SEVERAL_USERS, normalized, candidates=ordered)
    user, key = next(iter(users.values()))
    return MatchResult(MatchStatus.MATCHED, normalized, user, key)


def match_badge(badge: Badge, index: UserIndex) -> MatchResult:
    """Only `recipient_email` counts; the Credly account's own email never matches."""
    return match_email(badge.recipient_email, index)
