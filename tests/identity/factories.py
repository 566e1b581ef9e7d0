"""Small builders for badges and users, shared by the identity and sync unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from credly_connector.credly.models import Badge
from credly_connector.graph.models import DirectoryUser

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def user(
    uid: str,
    upn: str,
    *,
    smtp: str | None = None,
    aliases: tuple[str, ...] = (),
    mail: str | None = None,
    enabled: bool = True,
    licenses: int = 1,
) -> DirectoryUser:
    proxies = ([f"SMTP:{smtp}"] if smtp else []) + [f"smtp:{a}" for a in aliases]
    return DirectoryUser(
        id=uid,
        user_principal_name=upn,
        display_name=upn.split("@")[0],
        mail=mail,
        proxy_addresses=tuple(proxies),
        account_enabled=enabled,
        license_count=licenses,
    )


def badge(bid: str, email: str | None, **overrides: Any) -> Badge:
    data: dict[str, Any] = {
        "id": bid,
        "state": "accepted",
        "public": True,
        "recipient_email": email,
        "issued_at": "2026-01-15T10:00:00Z",
        "badge_url": f"https://www.credly.com/badges/{bid}",
        "image_url": f"https://images.credly.com/{bid}.png",
        "badge_template": {"id": "t1", "name": f"Badge {bid}", "type_category": "Learning"},
        "issuer": {"entities": [{"primary": True, "entity": {"name": "Contoso Academy"}}]},
    }
    template_overrides = overrides.pop("template", None)
    data.update(overrides)
    if template_overrides:
        data["badge_template"] = {**data["badge_template"], **template_overrides}
    return Badge.from_api(data)
