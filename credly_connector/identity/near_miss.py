"""Badges issued to an address that is probably a person's, though it is none of their
directory addresses: pure rules, no I/O, shared by diagnose, explain-user and coverage.

A candidate needs evidence that points at this person and not merely at someone like them:

* the address is one of the person's Entra `otherMails` (strong on its own);
* the same local part at another domain (a personal mailbox, another organization);
* a small misspelling of one of the person's addresses (digits must agree: numbers are how
  directories tell namesakes apart);
* the same first and last name on the badge, only when the name belongs to no one else in the
  directory (the caller says whether it knows that).

A badge whose name clearly belongs to someone else (another last name) is never a candidate,
whatever its address looks like, and a first name alone is never evidence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from credly_connector.identity.addresses import normalize_email

# Free mail services people use for personal addresses (their own sign-up pages name them);
# an address there is "personal", an address at one of the tenant's domains is a misspelled
# work address, any other domain another organization's.
PERSONAL_MAIL_DOMAINS = frozenset(
    {
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "web.de",
        "mail.com",
        "zoho.com",
        "yandex.com",
        "qq.com",
        "163.com",
    }
)
# The same services under country domains (gmail.co.uk, yahoo.fr, hotmail.de) and the
# reserved test TLD `.example` (RFC 2606) the simulator uses: provider label + short suffix.
PERSONAL_MAIL_PROVIDERS = frozenset(
    {"gmail", "googlemail", "outlook", "hotmail", "live", "yahoo", "icloud", "aol", "gmx"}
    | {"proton", "protonmail", "yandex"}
)
# Local parts shared by many people (role mailboxes): the same one elsewhere proves nothing.
GENERIC_LOCAL_PARTS = frozenset(
    {"admin", "info", "contact", "hello", "office", "mail", "team", "support", "sales", "hr"}
)
MIN_LOCAL_PART = 4  # shorter local parts ("jo", "lee") are shared by too many people
MAX_EDITS = 2


class Evidence(StrEnum):
    OTHER_MAIL = "other_mail"  # in the person's Entra otherMails
    SAME_LOCAL_PART = "same_local_part"  # same local part, another domain
    CLOSE_SPELLING = "close_spelling"  # a small edit away from one of their addresses
    SAME_NAME = "same_name"  # the same first and last name on the badge


class AddressKind(StrEnum):
    PERSONAL = "personal"  # a free mail service
    WORK = "work"  # one of the tenant's own domains (typically a misspelling)
    OTHER_ORGANIZATION = "other_organization"


@dataclass(frozen=True)
class PersonName:
    first: str
    last: str

    @classmethod
    def parse(
        cls, first: str | None, last: str | None, full: str | None = None
    ) -> PersonName | None:
        """From given name and surname, else the first and last word of the full name."""
        given, family = _fold(first or ""), _fold(last or "")
        if not (given and family) and full:
            words = _fold(full).split()
            if len(words) >= 2:
                given, family = words[0], words[-1]
        if given and family:
            return cls(given.split()[0], family.split()[-1])
        return None


@dataclass(frozen=True)
class Person:
    """What the rules know about the person the admin asked about."""

    addresses: frozenset[str]  # UPN, primary SMTP, aliases, mail; lower-cased
    other_mails: frozenset[str] = frozenset()
    name: PersonName | None = None
    tenant_domains: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UnmatchedBadge:
    """What a crawl keeps of a badge that reached no user: id, address and name."""

    badge_id: str
    address: str
    name: PersonName | None


@dataclass(frozen=True)
class NearMiss:
    address: str
    kind: AddressKind
    evidence: tuple[Evidence, ...]
    related_to: str | None  # the person's address it resembles, when it resembles one
    badge_ids: tuple[str, ...] = field(default_factory=tuple)

    def reason(self) -> str:
        """Why this address is probably the person's, in one clause."""
        parts: list[str] = []
        for item in self.evidence:
            if item is Evidence.OTHER_MAIL:
                parts.append("listed in the user's otherMails in Entra ID")
            elif item is Evidence.SAME_LOCAL_PART:
                parts.append(f"same name before the @ as {self.related_to}")
            elif item is Evidence.CLOSE_SPELLING:
                parts.append(f"a misspelling of {self.related_to}")
            elif item is Evidence.SAME_NAME:
                parts.append("the same first and last name on the badge")
        return "; ".join(parts)


def _fold(text: str) -> str:
    """Lower case without accents, so Müller equals Muller."""
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local, domain


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Levenshtein distance, giving up (returning limit + 1) once it must exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def is_personal_domain(domain: str) -> bool:
    if domain in PERSONAL_MAIL_DOMAINS:
        return True
    label, _, suffix = domain.partition(".")
    return label in PERSONAL_MAIL_PROVIDERS and all(
        len(part) <= 3 or part == "example" for part in suffix.split(".")
    )


def address_kind(address: str, tenant_domains: Iterable[str]) -> AddressKind:
    domain = _split(normalize_email(address))[1]
    if is_personal_domain(domain):
        return AddressKind.PERSONAL
    if domain in {d.lower() for d in tenant_domains}:
        return AddressKind.WORK
    return AddressKind.OTHER_ORGANIZATION


def name_conflicts(person: PersonName | None, badge: PersonName | None) -> bool:
    """True when the badge's name is clearly someone else's (another last name)."""
    if person is None or badge is None:
        return False
    return person.last != badge.last


def _distinctive(local: str) -> bool:
    return len(local) >= MIN_LOCAL_PART and local not in GENERIC_LOCAL_PARTS


_NOT_DIGITS = re.compile(r"\D")


@dataclass(frozen=True)
class _Own:
    address: str
    local: str
    domain: str
    digits: str


@lru_cache(maxsize=64)
def _own_addresses(addresses: frozenset[str]) -> tuple[_Own, ...]:
    """The person's addresses split once (the rules compare them with every unmatched badge)."""
    found = []
    for address in sorted(addresses):
        local, domain = _split(address)
        found.append(_Own(address, local, domain, _NOT_DIGITS.sub("", local)))
    return tuple(found)


def _same_local_part(local: str, domain: str, own: tuple[_Own, ...]) -> str | None:
    for mine in own:
        if mine.local == local and mine.domain != domain:
            return mine.address
    return None


def _close_spelling(address: str, local: str, own: tuple[_Own, ...]) -> str | None:
    limit = MAX_EDITS if len(address) >= 12 else 1
    digits: str | None = None
    for mine in own:
        if abs(len(mine.address) - len(address)) > limit:
            continue
        if digits is None:
            digits = _NOT_DIGITS.sub("", local)
        if mine.digits == digits and 0 < edit_distance(address, mine.address, limit) <= limit:
            return mine.address
    return None


def near_miss(
    person: Person, badge_address: str, badge_name: PersonName | None, *, name_is_unique: bool
) -> NearMiss | None:
    """Whether a badge at `badge_address` (matching no user) is probably this person's.

    `name_is_unique`: no other directory user has the badge's first and last name; without
    it, the name alone is not evidence (two people can share one).
    """
    address = normalize_email(badge_address)
    if not address or "@" not in address or address in person.addresses:
        return None
    if address in person.other_mails:
        kind = address_kind(address, person.tenant_domains)
        return NearMiss(address, kind, (Evidence.OTHER_MAIL,), None)
    if name_conflicts(person.name, badge_name):
        return None
    local, domain = _split(address)
    evidence: list[Evidence] = []
    related = None
    if _distinctive(local):
        own = _own_addresses(person.addresses)
        related = _same_local_part(local, domain, own)
        if related:
            evidence.append(Evidence.SAME_LOCAL_PART)
        else:
            related = _close_spelling(address, local, own)
            if related:
                evidence.append(Evidence.CLOSE_SPELLING)
    same_name = person.name is not None and badge_name == person.name
    if same_name:
        evidence.append(Evidence.SAME_NAME)
    if not related and not (same_name and name_is_unique):
        return None
    return NearMiss(address, address_kind(address, person.tenant_domains), tuple(evidence), related)


def find_near_misses(
    person: Person,
    badges: Iterable[UnmatchedBadge],
    *,
    name_counts: dict[PersonName, int] | None = None,
) -> list[NearMiss]:
    """Every address among `badges` that is probably the person's, with its badge ids.

    `name_counts`: how many directory users carry each name; None when unknown, and then a
    name alone never makes a candidate.
    """
    found: dict[str, NearMiss] = {}
    ids: dict[str, list[str]] = {}
    for badge in badges:
        address = badge.address.strip().lower()
        if address not in found:
            unique = (
                name_counts is not None
                and badge.name is not None
                and badge.name == person.name
                and name_counts.get(badge.name, 0) <= 1
            )
            hit = near_miss(person, address, badge.name, name_is_unique=unique)
            if hit is None:
                continue
            found[address] = hit
        ids.setdefault(address, []).append(badge.badge_id)
    order = {e: i for i, e in enumerate(Evidence)}
    ranked = sorted(found.values(), key=lambda m: (min(order[e] for e in m.evidence), m.address))
    return [
        NearMiss(m.address, m.kind, m.evidence, m.related_to, tuple(sorted(ids[m.address])))
        for m in ranked
    ]
