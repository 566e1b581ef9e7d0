"""The simulated tenant's directory: users (Graph shape) and app registrations.

One store shared by the Entra token endpoint and the Graph service, so a test that disables a
user or removes an app's permission sees the change on both sides at once.
"""

from __future__ import annotations

import copy
import threading
import uuid
from typing import Any

# Fields only the simulator knows about; the Graph service must never return them.
SIM_ONLY_USER_FIELDS = frozenset({"hasMailbox"})


class Directory:
    """Thread-safe user and app store with a change sequence for `/users/delta`.

    Every mutation bumps a tenant-wide sequence number and stamps the affected user with it,
    so `changes_since(seq)` can answer "what changed after the delta token was issued".
    Returned dicts are deep copies: callers may not mutate the store behind its lock.
    """

    def __init__(
        self,
        tenant_id: str,
        users: list[dict[str, Any]] | None = None,
        apps: list[dict[str, Any]] | None = None,
        domains: list[str] | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.domains = list(domains or [])
        self._lock = threading.RLock()
        self._users: dict[str, dict[str, Any]] = {}
        self._by_key: dict[str, str] = {}  # lower-cased id or UPN -> id (large generated tenants)
        self._user_seq: dict[str, int] = {}
        self._deleted: dict[str, int] = {}
        self._seq = 0
        self._apps: dict[str, dict[str, Any]] = {}
        for user in users or []:
            self.add(user)
        for app in apps or []:
            self._apps[str(app["app_id"]).lower()] = copy.deepcopy(app)

    # -- users -------------------------------------------------------------------------------

    def _bump(self) -> int:
        self._seq += 1
        return self._seq

    def _find_id(self, id_or_upn: str) -> str | None:
        if id_or_upn in self._users:
            return id_or_upn
        return self._by_key.get(id_or_upn.lower())

    def _index(self, user_id: str, user: dict[str, Any]) -> None:
        self._by_key[user_id.lower()] = user_id
        upn = str(user.get("userPrincipalName") or "").lower()
        if upn:
            self._by_key[upn] = user_id

    def _unindex(self, user_id: str) -> None:
        upn = str(self._users[user_id].get("userPrincipalName") or "").lower()
        for key in (user_id.lower(), upn):
            if self._by_key.get(key) == user_id:
                del self._by_key[key]

    def all_users(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(user) for user in self._users.values()]

    def get(self, id_or_upn: str) -> dict[str, Any] | None:
        with self._lock:
            user_id = self._find_id(id_or_upn)
            return copy.deepcopy(self._users[user_id]) if user_id else None

    def add(self, user: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            record = copy.deepcopy(user)
            record.setdefault("id", str(uuid.uuid4()))
            record.setdefault("accountEnabled", True)
            record.setdefault("proxyAddresses", [])
            record.setdefault("assignedLicenses", [])
            record.setdefault("userType", "Member")
            user_id = str(record["id"])
            if user_id in self._users:
                raise ValueError(f"user {user_id} already exists")
            upn = str(record.get("userPrincipalName", "")).lower()
            if upn and self._find_id(upn) is not None:
                raise ValueError(f"userPrincipalName {upn} already exists")
            self._users[user_id] = record
            self._index(user_id, record)
            self._user_seq[user_id] = self._bump()
            self._deleted.pop(user_id, None)
            return copy.deepcopy(record)

    def update(self, id_or_upn: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            user_id = self._find_id(id_or_upn)
            if user_id is None:
                raise KeyError(id_or_upn)
            if "id" in fields and fields["id"] != user_id:
                raise ValueError("a user's id cannot change")
            if "userPrincipalName" in fields:
                other = self._find_id(str(fields["userPrincipalName"]))
                if other not in (None, user_id):
                    raise ValueError(f"userPrincipalName {fields['userPrincipalName']} is taken")
                self._unindex(user_id)
            self._users[user_id].update(copy.deepcopy(fields))
            self._index(user_id, self._users[user_id])
            self._user_seq[user_id] = self._bump()
            return copy.deepcopy(self._users[user_id])

    def delete(self, id_or_upn: str) -> None:
        with self._lock:
            user_id = self._find_id(id_or_upn)
            if user_id is None:
                raise KeyError(id_or_upn)
            self._unindex(user_id)
            del self._users[user_id]
            del self._user_seq[user_id]
            self._deleted[user_id] = self._bump()

    @property
    def sequence(self) -> int:
        with self._lock:
            return self._seq

    def changes_since(self, seq: int) -> tuple[list[str], list[str], int]:
        """Ids changed or added after `seq`, ids deleted after `seq`, and the current sequence."""
        with self._lock:
            changed = [uid for uid, stamp in self._user_seq.items() if stamp > seq]
            deleted = [uid for uid, stamp in self._deleted.items() if stamp > seq]
            return changed, deleted, self._seq

    # -- apps --------------------------------------------------------------------------------

    def app(self, app_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._apps.get(app_id.lower())
            return copy.deepcopy(found) if found else None

    def all_apps(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(app) for app in self._apps.values()]

    def update_app(self, app_id: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            key = app_id.lower()
            if key not in self._apps:
                raise KeyError(app_id)
            self._apps[key].update(copy.deepcopy(fields))
            return copy.deepcopy(self._apps[key])
