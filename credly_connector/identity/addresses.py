"""A directory user's addresses and the index that finds users by email."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from credly_connector.graph.models import DirectoryUser

_PRIMARY_PREFIX = "SMTP:"  # upper case marks the primary address; `smtp:` marks aliases


def normalize_email(value: str) -> str:
    return value.strip().lower()


class MatchKey(StrEnum):
    """Which of a user's addresses a badge's recipient email equalled."""

    UPN = "userPrincipalName"
    PRIMARY_SMTP = "primarySmtp"


def primary_smtp(user: DirectoryUser) -> str | None:
    """The `SMTP:` proxy address; `mail` only when proxyAddresses holds no such entry.

    The prefix is compared case-sensitively: `smtp:` entries are secondary aliases.
    """
    for entry in user.proxy_addresses:
        if entry.startswith(_PRIMARY_PREFIX):
            address = entry[len(_PRIMARY_PREFIX) :].strip()
            if address:
                return address
    return user.mail.strip() if user.mail and user.mail.strip() else None


def secondary_smtp(user: DirectoryUser) -> tuple[str, ...]:
    """The `smtp:` aliases: they identify the person but never match a badge."""
    return tuple(
        entry[5:].strip()
        for entry in user.proxy_addresses
        if entry[:5] == "smtp:" and entry[5:].strip()
    )


def match_keys(user: DirectoryUser) -> dict[str, MatchKey]:
    """Lower-cased address -> key, for the addresses a badge may be issued to (UPN wins a tie)."""
    keys: dict[str, MatchKey] = {}
    smtp = primary_smtp(user)
    if smtp:
        keys[normalize_email(smtp)] = MatchKey.PRIMARY_SMTP
    if user.user_principal_name:
        keys[normalize_email(user.user_principal_name)] = MatchKey.UPN
    return keys


def all_addresses(user: DirectoryUser) -> frozenset[str]:
    """Every lower-cased address the directory holds for the user (for opt-out and hints)."""
    found = set(match_keys(user))
    found.update(normalize_email(a) for a in secondary_smtp(user))
    if user.mail:
        found.add(normalize_email(user.mail))
    return frozenset(found)


@dataclass(frozen=True, slots=True)  # two per user in a large directory
class IndexEntry:
    user: DirectoryUser
    key: MatchKey


@dataclass
class UserIndex:
    """Lower-cased email -> the users it identifies by UPN or primary SMTP."""

    by_email: dict[str, list[IndexEntry]] = field(default_factory=dict)
    by_id: dict[str, DirectoryUser] = field(default_factory=dict)

    def lookup(self, email: str) -> list[IndexEntry]:
        return list(self.by_email.get(normalize_email(email), ()))


def build_index(users: Iterable[DirectoryUser]) -> UserIndex:
    index = UserIndex()
    for user in users:
        index.by_id[user.id] = user
        for email, key in match_keys(user).items():
            index.by_email.setdefault(email, []).append(IndexEntry(user, key))
    return index
