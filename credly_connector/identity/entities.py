"""What a user's external item says: the badge entities, the item id, body and content hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from credly_connector.credly.models import Badge
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.item_schema import (
    ACCOUNT_PROPERTY,
    AWARDS_PROPERTY,
    CERTIFICATIONS_PROPERTY,
)


class BadgeCategory(StrEnum):
    AWARD = "award"
    CERTIFICATION = "certification"


def badge_category(badge: Badge) -> BadgeCategory:
    """Our decision: template type `Certification` (any case) is a certification, all else an
    award; Microsoft does not publish how its own connector splits them."""
    kind = (badge.type_category or "").strip().lower()
    return BadgeCategory.CERTIFICATION if kind == "certification" else BadgeCategory.AWARD


def _day(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


def badge_entity(badge: Badge) -> dict[str, Any]:
    """The personAward / personCertification fields credlyctl fills (absent ones left out)."""
    entity: dict[str, Any] = {
        "displayName": badge.template_name,
        "issuingAuthority": badge.issuer_name,
        "issuedDate": _day(badge.issued_at),
        "webUrl": badge.badge_url,
        "thumbnailUrl": badge.image_url,
    }
    if badge_category(badge) is BadgeCategory.CERTIFICATION:
        entity["certificationId"] = badge.id
        entity["issuingCompany"] = badge.issuer_name
        entity["startDate"] = _day(badge.issued_at)
        entity["endDate"] = _day(badge.expires_at)
    return {key: value for key, value in entity.items() if value is not None}


def item_id(user_id: str) -> str:
    """Entra object id without hyphens: alphanumeric, deterministic, one item per user."""
    return user_id.replace("-", "").lower()


def _entity_text(entity: dict[str, Any]) -> str:
    """A people entity as the JSON string Graph stores, in ASCII only.

    Graph's PUT-item page asks for `"@odata.type": "String"` on string values holding
    non-ASCII text; escaping (`\u00fc`) keeps every value ASCII instead, so no hint is
    needed and the entity Graph parses is the same text.
    """
    return json.dumps(entity, ensure_ascii=True, separators=(",", ":"))


def account_value(user: DirectoryUser) -> str:
    return _entity_text(
        {"userPrincipalName": user.user_principal_name, "externalDirectoryObjectId": user.id}
    )


class BadgeEntry(NamedTuple):
    """What one indexed badge adds to its owner's item, computed once when the badge is read.

    A crawl keeps these (or spools them to disk) instead of whole `Badge` objects: the item
    body and its digest need nothing else. Tuples sort by (sort key, badge id): the stable
    order that keeps the body the same when Credly pages come back in another order.
    """

    sort_key: str  # issued_at as ISO text ("" when unknown)
    badge_id: str
    certification: bool
    text: str  # the entity as the JSON string Graph stores


def badge_entry(badge: Badge) -> BadgeEntry:
    return BadgeEntry(
        badge.issued_at.isoformat() if badge.issued_at else "",
        badge.id,
        badge_category(badge) is BadgeCategory.CERTIFICATION,
        _entity_text(badge_entity(badge)),
    )


def item_body_from_entries(
    user: DirectoryUser, entries: Iterable[BadgeEntry], tenant_id: str
) -> dict[str, Any]:
    """The PUT body of a user's item: account, awards, certifications, ACL everyone."""
    awards: list[str] = []
    certifications: list[str] = []
    for entry in sorted(entries):
        (certifications if entry.certification else awards).append(entry.text)
    return {
        "acl": [{"type": "everyone", "value": tenant_id, "accessType": "grant"}],
        "properties": {
            ACCOUNT_PROPERTY: account_value(user),
            f"{AWARDS_PROPERTY}@odata.type": "Collection(String)",
            AWARDS_PROPERTY: awards,
            f"{CERTIFICATIONS_PROPERTY}@odata.type": "Collection(String)",
            CERTIFICATIONS_PROPERTY: certifications,
        },
    }


def item_body(user: DirectoryUser, badges: Iterable[Badge], tenant_id: str) -> dict[str, Any]:
    return item_body_from_entries(user, (badge_entry(b) for b in badges), tenant_id)


# Bump when item_body's output or the digest's recipe changes for the same inputs: every
# stored digest then differs and the next crawl rewrites each item once.
# item-2: the digest is taken over the badge entries (the entity texts) themselves.
ITEM_FORMAT = "item-2"


class DigestBuilder:
    """The digest of an item's inputs, fed entry by entry in sorted order (see entries_digest).

    Equal digests mean equal bodies: the state keeps the digest in place of the body's hash,
    so an incremental crawl builds no body for an unchanged user (issue 12, goal 3).
    """

    def __init__(self, user: DirectoryUser, tenant_id: str) -> None:
        self._hash = hashlib.sha256(
            repr((ITEM_FORMAT, tenant_id, user.id, user.user_principal_name)).encode("utf-8")
        )

    def add(self, entry: BadgeEntry) -> None:
        # The text holds every field the entity shows; the id and category decide order and
        # list. Lengths first, so no two entries can run together into the same bytes.
        data = f"{len(entry.sort_key)}:{entry.sort_key}|{len(entry.badge_id)}:{entry.badge_id}|"
        data += f"{int(entry.certification)}|{len(entry.text)}:{entry.text};"
        self._hash.update(data.encode("utf-8"))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def entries_digest(user: DirectoryUser, entries: Iterable[BadgeEntry], tenant_id: str) -> str:
    builder = DigestBuilder(user, tenant_id)
    for entry in sorted(entries):
        builder.add(entry)
    return builder.hexdigest()


def input_digest(user: DirectoryUser, badges: Iterable[Badge], tenant_id: str) -> str:
    """A digest of everything item_body reads, without keeping the body."""
    return entries_digest(user, (badge_entry(b) for b in badges), tenant_id)


def content_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
