"""What a user's external item says: the badge entities, the item id, body and content hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

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


def _sorted_badges(badges: Iterable[Badge]) -> list[Badge]:
    # A stable order keeps the content hash stable when Credly pages come back in another order.
    return sorted(badges, key=lambda b: (b.issued_at.isoformat() if b.issued_at else "", b.id))


def item_body(user: DirectoryUser, badges: Iterable[Badge], tenant_id: str) -> dict[str, Any]:
    """The PUT body of a user's item: account, awards, certifications, ACL everyone."""
    awards: list[str] = []
    certifications: list[str] = []
    for badge in _sorted_badges(badges):
        serialized = _entity_text(badge_entity(badge))
        if badge_category(badge) is BadgeCategory.CERTIFICATION:
            certifications.append(serialized)
        else:
            awards.append(serialized)
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


# Bump when item_body's output changes for the same inputs: every stored digest then differs
# and the next crawl rewrites each item once.
ITEM_FORMAT = "item-1"


def _badge_inputs(badge: Badge) -> str:
    # Every Badge field badge_entity and badge_category read, and nothing else: keep in step.
    # Strings quoted (!r) so no two inputs run together; dates as ISO text (repr is slower).
    b = badge
    return (
        f"{b.id!r}|{b.template_name!r}|{b.issuer_name!r}|{b.issued_at}|{b.badge_url!r}|"
        f"{b.image_url!r}|{b.type_category!r}|{b.expires_at}"
    )


def input_digest(user: DirectoryUser, badges: Iterable[Badge], tenant_id: str) -> str:
    """A digest of everything item_body reads, without building the body.

    It stands for the item's content in the state: equal digests mean an equal body, so an
    incremental crawl skips the body of every unchanged user (issue 12, goal 3). Computing it
    costs a fraction of building and serialising the body.
    """
    inputs = sorted(_badge_inputs(b) for b in badges)  # page order must not matter
    text = repr((ITEM_FORMAT, tenant_id, user.id, user.user_principal_name, *inputs))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
