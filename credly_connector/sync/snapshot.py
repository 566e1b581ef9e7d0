"""The directory as the last crawl saw it, so an incremental crawl can apply /users/delta."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from credly_connector.graph.models import DirectoryUser


def to_snapshot(user: DirectoryUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "upn": user.user_principal_name,
        "name": user.display_name,
        "mail": user.mail,
        "proxies": list(user.proxy_addresses),
        "enabled": user.account_enabled,
        "licenses": user.license_count,
        "type": user.user_type,
    }


def from_snapshot(data: dict[str, Any]) -> DirectoryUser:
    return DirectoryUser(
        id=str(data["id"]),
        user_principal_name=str(data.get("upn") or ""),
        display_name=data.get("name"),
        mail=data.get("mail"),
        proxy_addresses=tuple(data.get("proxies") or ()),
        account_enabled=bool(data.get("enabled", True)),
        license_count=int(data.get("licenses") or 0),
        user_type=data.get("type"),
    )


def apply_delta(
    users: Iterable[DirectoryUser], changed: Iterable[DirectoryUser], removed: Iterable[Any]
) -> list[DirectoryUser]:
    """The snapshot with changed users replaced and removed ones dropped.

    `removed` holds ids, users or (id, reason) pairs as /users/delta reports them; a user
    soft-deleted ("changed") is gone from the directory for our purposes until restored.
    """
    by_id = {u.id: u for u in users}
    for user in changed:
        by_id[user.id] = user
    for gone in removed:
        by_id.pop(removed_id(gone), None)
    return list(by_id.values())


def removed_id(gone: Any) -> str:
    """The user id of one /users/delta removal: an id, a user or an (id, reason) pair."""
    if isinstance(gone, DirectoryUser):
        return gone.id
    if isinstance(gone, tuple | list):
        return str(gone[0])
    return str(gone)
