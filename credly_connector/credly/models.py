"""Credly objects as credlyctl uses them, parsed tolerantly.

Credly may add fields at any time (credly-api.md §1): unknown fields are ignored, missing ones
become None, and an unknown badge state is kept as-is (never indexed, counted apart).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

KNOWN_BADGE_STATES = frozenset({"pending", "accepted", "rejected", "revoked", "replaced"})


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 date or date-time from Credly; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text[:10]), datetime.min.time())
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)  # 80,000 of them in a crawl: no __dict__ each
class Badge:
    id: str
    state: str  # lower-cased; may be a state credlyctl does not know
    public: bool
    recipient_email: str | None
    issued_to: str | None  # the earner's name as written on the badge
    issued_to_first_name: str | None
    issued_to_last_name: str | None
    issued_at: datetime | None
    accepted_at: datetime | None
    updated_at: datetime | None
    expires_at: datetime | None
    badge_url: str | None
    template_id: str | None
    template_name: str
    type_category: str | None
    image_url: str | None
    issuer_name: str | None
    user_email: str | None  # the Credly account's own email: never used for matching

    @property
    def state_known(self) -> bool:
        return self.state in KNOWN_BADGE_STATES

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Badge:
        template = _dict(data.get("badge_template"))
        image = _dict(data.get("image"))
        template_image = _dict(template.get("image"))
        user = _dict(data.get("user"))
        state = _str(data.get("state"))
        return cls(
            id=str(data.get("id") or ""),
            state=(state or "unknown").lower(),
            public=data.get("public") is True,
            recipient_email=_str(data.get("recipient_email")),
            issued_to=_str(data.get("issued_to")),
            issued_to_first_name=_str(data.get("issued_to_first_name")),
            issued_to_last_name=_str(data.get("issued_to_last_name")),
            issued_at=parse_datetime(data.get("issued_at") or data.get("issued_at_date")),
            accepted_at=parse_datetime(data.get("accepted_at")),
            updated_at=parse_datetime(data.get("updated_at") or data.get("state_updated_at")),
            expires_at=parse_datetime(data.get("expires_at") or data.get("expires_at_date")),
            badge_url=_str(data.get("badge_url")),
            # Texts shared by every badge of a template are kept once (sys.intern), not once
            # per badge: most of a crawl's memory otherwise (issue 12, goal 4).
            template_id=_shared(_str(template.get("id"))),
            template_name=sys.intern(_str(template.get("name")) or "Unnamed badge"),
            type_category=_shared(_str(template.get("type_category"))),
            image_url=_shared(
                _str(data.get("image_url"))
                or _str(image.get("url"))
                or _str(template.get("image_url"))
                or _str(template_image.get("url"))
            ),
            issuer_name=_shared(_issuer_name(data)),
            user_email=_str(user.get("email")),
        )


def _shared(value: str | None) -> str | None:
    return sys.intern(value) if value is not None else None


def _issuer_name(data: dict[str, Any]) -> str | None:
    issuer = data.get("issuer")
    if isinstance(issuer, dict):
        entities = issuer.get("entities")
        if isinstance(entities, list):
            for item in entities:
                entity = item.get("entity") if isinstance(item, dict) else None
                primary = isinstance(item, dict) and (item.get("primary") or len(entities) == 1)
                if isinstance(entity, dict) and _str(entity.get("name")) and primary:
                    return _str(entity.get("name"))
            for item in entities:
                entity = item.get("entity") if isinstance(item, dict) else None
                if isinstance(entity, dict) and _str(entity.get("name")):
                    return _str(entity.get("name"))
        summary = _str(issuer.get("summary"))
        if summary:
            return summary
    created_by = data.get("created_by")
    if isinstance(created_by, dict):
        return _str(created_by.get("name"))
    return None


@dataclass(frozen=True)
class Organization:
    id: str
    name: str | None
    vanity_url: str | None
    vanity_slug: str | None = None  # the organization page is <web host>/org/<vanity_slug>

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Organization:
        return cls(
            id=str(data.get("id") or ""),
            name=_str(data.get("name")),
            vanity_url=_str(data.get("vanity_url")) or _str(data.get("url")),
            vanity_slug=_str(data.get("vanity_slug")),
        )
