"""Directory users as credlyctl sees them (the fields `USER_SELECT` asks Graph for)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

USER_SELECT = (
    "id,displayName,userPrincipalName,mail,proxyAddresses,accountEnabled,assignedLicenses,userType"
)
# Diagnosing one person also reads the fields that tell which other addresses are theirs.
PERSON_SELECT = USER_SELECT + ",givenName,surname,otherMails"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


@dataclass(frozen=True, slots=True)  # 100,000 of them in a large tenant: no __dict__ each
class DirectoryUser:
    id: str  # Entra object id (GUID with hyphens)
    user_principal_name: str
    display_name: str | None = None
    mail: str | None = None
    proxy_addresses: tuple[str, ...] = ()
    account_enabled: bool = True
    license_count: int = 0
    user_type: str | None = None
    given_name: str | None = None
    surname: str | None = None
    other_mails: tuple[str, ...] = ()
    raw_keys: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_graph(cls, data: dict[str, Any]) -> DirectoryUser:
        proxies = data.get("proxyAddresses")
        licenses = data.get("assignedLicenses")
        return cls(
            id=str(data.get("id") or ""),
            user_principal_name=str(data.get("userPrincipalName") or ""),
            display_name=_text(data.get("displayName")),
            mail=_text(data.get("mail")),
            proxy_addresses=_strings(proxies),
            account_enabled=data.get("accountEnabled") is not False,
            license_count=len(licenses) if isinstance(licenses, list) else 0,
            user_type=_text(data.get("userType")),
            given_name=_text(data.get("givenName")),
            surname=_text(data.get("surname")),
            other_mails=_strings(data.get("otherMails")),
            raw_keys=_key_set(data),
        )


# Every user of a listing has the same few key sets: one shared frozenset each instead of one
# per user (a 12-key frozenset costs about 700 bytes; issue 12, goal 4).
_KEY_SETS: dict[frozenset[str], frozenset[str]] = {}


def _key_set(data: dict[str, Any]) -> frozenset[str]:
    keys = frozenset(data)
    return _KEY_SETS.setdefault(keys, keys) if len(_KEY_SETS) < 1024 else keys
