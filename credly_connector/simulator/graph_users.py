"""`/users`, `/users/{id or UPN}` and `/users/delta` (microsoft-graph.md §5).

Paging is keyed on the object id (users sorted by id), so a user added or removed between two
pages never makes another user skip a page. Delta tokens are opaque to clients but carry the
directory's change sequence, the `$select`, the `$filter` on ids, when they were issued and an
epoch that `expire_delta_tokens()` bumps.
"""

from __future__ import annotations

import base64
import json
import threading
from bisect import bisect_right
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from credly_connector.simulator.core import SimRequest, SimResponse
from credly_connector.simulator.graph_common import GraphError
from credly_connector.simulator.graph_filter import ParsedFilter, parse_user_filter, unsupported

# Every name here exists on microsoft.graph.user in the v1.0 CSDL (checked by a test).
USER_PROPERTIES = frozenset(
    {
        "id",
        "accountEnabled",
        "assignedLicenses",
        "assignedPlans",
        "businessPhones",
        "city",
        "companyName",
        "country",
        "createdDateTime",
        "deletedDateTime",
        "department",
        "displayName",
        "employeeId",
        "employeeType",
        "givenName",
        "jobTitle",
        "mail",
        "mailNickname",
        "mobilePhone",
        "officeLocation",
        "otherMails",
        "preferredLanguage",
        "proxyAddresses",
        "surname",
        "usageLocation",
        "userPrincipalName",
        "userType",
    }
)
# What Graph returns for a user when no $select is given.
DEFAULT_USER_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
_ALL = tuple(sorted(USER_PROPERTIES))
DEFAULT_PAGE_SIZE = 100
DELTA_PAGE_SIZE = 100
MAX_DELTA_ID_FILTER = 50
DELTA_TOKEN_MAX_AGE_SECONDS = 7 * 24 * 3600


class DirectoryLike(Protocol):
    tenant_id: str

    def all_users(self) -> list[dict[str, Any]]: ...

    def get(self, id_or_upn: str) -> dict[str, Any] | None: ...

    def changes_since(self, seq: int) -> tuple[list[str], list[str], int]: ...

    @property
    def sequence(self) -> int: ...

    def app(self, app_id: str) -> dict[str, Any] | None: ...


def _encode(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any]:
    try:
        document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise GraphError(400, "Request_BadRequest", "Badly formed token.") from exc
    if not isinstance(document, dict):
        raise GraphError(400, "Request_BadRequest", "Badly formed token.")
    return document


def _well_formed(state: dict[str, Any]) -> bool:
    """A decoded delta token has the fields this module writes, with their types."""
    select = state.get("select")
    checks = (
        isinstance(state.get("issued", 0), int | float),
        isinstance(state.get("epoch"), int),
        isinstance(state.get("seq"), int) or state.get("mode") in ("full", "latest"),
        isinstance(state.get("to"), int) or "mode" not in state,
        isinstance(state.get("after", ""), str),
        state.get("mode", "changes") in ("full", "changes", "latest"),
        state.get("filter") is None or isinstance(state.get("filter"), str),
        select is None
        or (
            isinstance(select, list)
            and all(isinstance(n, str) and n in USER_PROPERTIES for n in select)
        ),
    )
    return all(checks)


def parse_select(request: SimRequest) -> tuple[str, ...] | None:
    raw = request.first("$select")
    if raw is None:
        return None
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    for name in names:
        if name not in USER_PROPERTIES:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
            )
    return names


def project(user: dict[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
    names = select if select else DEFAULT_USER_PROPERTIES
    shaped = {"id": user["id"]}
    for name in names:
        if name == "id":
            continue
        value = user.get(name)
        if value is None and name in ("businessPhones", "otherMails", "proxyAddresses"):
            value = []
        if value is None and name == "assignedLicenses":
            value = []
        if value is None and name == "assignedPlans":
            value = _assigned_plans(user)
        shaped[name] = value
    return shaped


# The service plan id of Exchange Online (Plan 2) in real tenants; any plan of service
# "exchange" means the same here.
_EXCHANGE_PLAN_ID = "efb87545-963c-4e0d-99df-69c6916d9eb0"


def _assigned_plans(user: dict[str, Any]) -> list[dict[str, Any]]:
    """The simulator-only `hasMailbox` as Graph shows it: an enabled Exchange Online plan.

    [INFERRED] Graph has no "has mailbox" property; an `assignedPlans` entry of service
    `exchange` with capabilityStatus `Enabled` is how a licensed mailbox shows up.
    """
    if not user.get("assignedLicenses") or user.get("hasMailbox") is False:
        return []
    return [
        {
            "assignedDateTime": "2026-01-05T09:00:00Z",
            "capabilityStatus": "Enabled",
            "service": "exchange",
            "servicePlanId": _EXCHANGE_PLAN_ID,
        }
    ]


def _is_advanced(request: SimRequest) -> bool:
    consistency = (request.header("consistencylevel") or "").strip().lower()
    return consistency == "eventual" and (request.first("$count") or "").lower() == "true"


class _Snapshot:
    """The directory at one change sequence: users by id, sorted ids, and a lazy lookup index."""

    def __init__(self, seq: int, ids: list[str], by_id: dict[str, dict[str, Any]]) -> None:
        self.seq = seq
        self.ids = ids
        self.by_id = by_id
        self._index: dict[tuple[str, str], list[str]] | None = None
        self._lock = threading.Lock()

    def index(self) -> dict[tuple[str, str], list[str]]:
        with self._lock:
            if self._index is None:
                index: dict[tuple[str, str], list[str]] = {}
                for uid, user in self.by_id.items():
                    index.setdefault(("id", uid.casefold()), []).append(uid)
                    for prop in ("userPrincipalName", "mail"):
                        if isinstance(user.get(prop), str):
                            index.setdefault((prop, user[prop].casefold()), []).append(uid)
                    for address in user.get("proxyAddresses") or []:
                        if isinstance(address, str):
                            key = ("proxyAddresses", address.casefold())
                            index.setdefault(key, []).append(uid)
                self._index = index
            return self._index


class UsersApi:
    def __init__(
        self, directory: DirectoryLike, clock: Callable[[], float], options: dict[str, Any]
    ):
        self.directory = directory
        self.clock = clock
        self.max_age = float(
            options.get("delta_token_max_age_seconds", DELTA_TOKEN_MAX_AGE_SECONDS)
        )
        # Directory resources answer an expired token with 400 syncStateNotFound (Microsoft 365
        # Dev blog, "Duration of change tracking tokens for identity and education resources");
        # 410 + Location is the generic delta pattern. [INFERRED] which mix a tenant sends:
        # both the status and the code are switches.
        self.expired_status = int(options.get("delta_expired_status", 400))
        if self.expired_status not in (400, 410):
            raise ValueError("delta_expired_status must be 400 or 410")
        self.expired_code = str(options.get("delta_expired_code", "syncStateNotFound"))
        self._epoch = 0
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._cached: _Snapshot | None = None
        # Which properties of which user changed at which sequence, seen by diffing snapshots;
        # complete for every change after `_tracked_since` (a full reload restarts it).
        self._prop_seq: dict[str, dict[str, int]] = {}
        self._tracked_since: int | None = None

    def _seq(self) -> int:
        return int(self.directory.sequence)

    def expire_delta_tokens(self) -> None:
        with self._lock:
            self._epoch += 1

    # -- snapshot ------------------------------------------------------------------------
    def _current(self) -> _Snapshot:
        seq = self._seq()
        with self._lock:
            cached = self._cached
        if cached is not None and cached.seq == seq:
            return cached
        with self._refresh_lock:
            with self._lock:
                cached = self._cached
            if cached is not None and cached.seq == self._seq():
                return cached
            snapshot = self._refreshed(cached) if cached is not None else None
            if snapshot is None:
                seq = self._seq()
                by_id = {str(user["id"]): user for user in self.directory.all_users()}
                snapshot = _Snapshot(seq, sorted(by_id), by_id)
                self._tracked_since = seq
            with self._lock:
                self._cached = snapshot
            return snapshot

    def _refreshed(self, old: _Snapshot) -> _Snapshot | None:
        """Apply the few changes since `old` instead of copying a large directory again."""
        changed, deleted, seq = self.directory.changes_since(old.seq)
        if len(changed) + len(deleted) > max(100, len(old.by_id) // 10):
            return None
        by_id = dict(old.by_id)
        for uid in deleted:
            by_id.pop(str(uid), None)
        for uid in map(str, changed):
            user = self.directory.get(uid)
            if user is None:
                by_id.pop(uid, None)
                continue
            before = old.by_id.get(uid)
            marks = self._prop_seq.setdefault(uid, {})
            if before is None:
                marks["*"] = seq  # new to the snapshot: every property counts as changed
            else:
                # Compare what Graph would show, so derived properties (assignedPlans) count.
                shown_before, shown_now = project(before, _ALL), project(user, _ALL)
                for prop in _ALL:
                    if shown_before.get(prop) != shown_now.get(prop):
                        marks[prop] = seq
            by_id[uid] = user
        same_members = len(by_id) == len(old.by_id) and all(uid in old.by_id for uid in by_id)
        return _Snapshot(seq, old.ids if same_members else sorted(by_id), by_id)

    def _selected_change(self, uid: str, select: tuple[str, ...] | None, since: int) -> bool:
        marks = self._prop_seq.get(uid, {})
        names = ("*", *(select or ()))
        return any(marks.get(name, -1) > since for name in names)

    @staticmethod
    def _candidates(snapshot: _Snapshot, parsed: ParsedFilter | None) -> list[str]:
        """Ids worth testing against the filter, in id order (an index lookup when possible)."""
        if parsed is None or parsed.keys is None:
            return snapshot.ids
        index = snapshot.index()
        found: set[str] = set()
        for key in parsed.keys:
            found.update(index.get(key, ()))
        return sorted(found)

    # -- /users --------------------------------------------------------------------------
    def list_users(self, request: SimRequest) -> SimResponse:
        for option in request.query:
            if option.startswith("$") and option not in (
                "$select",
                "$top",
                "$filter",
                "$count",
                "$skiptoken",
            ):
                raise unsupported(f"The query option '{option}' is not supported here.")
        select = parse_select(request)
        top = self._page_size(request)
        advanced = _is_advanced(request)
        parsed = self._filter(request, advanced)
        snapshot = self._current()
        ids, by_id = self._candidates(snapshot, parsed), snapshot.by_id
        after = request.first("$skiptoken")
        start = bisect_right(ids, str(_decode(after).get("after", ""))) if after else 0
        matching: list[dict[str, Any]] = []
        next_after: str | None = None
        for index in range(start, len(ids)):
            user = by_id[ids[index]]
            if parsed is not None and not parsed.predicate(user):
                continue
            if len(matching) == top:
                next_after = matching[-1]["id"]
                break
            matching.append(user)
        document: dict[str, Any] = {
            "@odata.context": f"{request.base_url}/v1.0/$metadata#users",
        }
        if advanced:
            document["@odata.count"] = sum(
                1 for uid in ids if parsed is None or parsed.predicate(by_id[uid])
            )
        if next_after is not None:
            query = {k: v[0] for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = _encode({"after": next_after})
            document["@odata.nextLink"] = (
                f"{request.base_url}/v1.0/users?{urlencode(query, quote_via=quote, safe='$,()')}"
            )
        document["value"] = [project(user, select) for user in matching]
        return SimResponse.json(200, document)

    def _page_size(self, request: SimRequest) -> int:
        raw = request.first("$top")
        if raw is None:
            return DEFAULT_PAGE_SIZE
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= 999:
            raise unsupported(
                f"Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive."
            )
        return size

    def _filter(self, request: SimRequest, advanced: bool) -> ParsedFilter | None:
        raw = request.first("$filter")
        if raw is None:
            return None
        parsed = parse_user_filter(raw, USER_PROPERTIES)
        if parsed.advanced and not advanced:
            raise unsupported(
                "Unsupported or invalid query filter clause: this filter needs advanced query "
                "parameters (ConsistencyLevel: eventual and $count=true)."
            )
        return parsed

    # -- /users/{id} ---------------------------------------------------------------------
    def get(self, request: SimRequest, key: str) -> SimResponse:
        select = parse_select(request)
        user = self.directory.get(key)
        if user is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property "
                "objects are not present.",
            )
        document = {"@odata.context": f"{request.base_url}/v1.0/$metadata#users/$entity"}
        document.update(project(user, select))
        return SimResponse.json(200, document)

    # -- /users/delta --------------------------------------------------------------------
    def delta(self, request: SimRequest) -> SimResponse:
        if request.first("$top") is not None:
            raise unsupported("The query option '$top' is not supported with delta queries.")
        for option in ("$expand", "$orderby", "$search"):
            if request.first(option) is not None:
                raise unsupported(f"The query option '{option}' is not supported with delta.")
        skip = request.first("$skiptoken")
        delta = request.first("$deltatoken") or request.first("$deltaToken")
        if skip:
            state = self._valid_state(request, skip)
        elif delta and delta.lower() == "latest":
            state = self._new_state(request)
            state.update(mode="latest")
        elif delta:
            state = self._valid_state(request, delta)
            state.update(mode="changes", to=self._seq(), after="")
        else:
            state = self._new_state(request)
        select = tuple(state["select"]) if state.get("select") is not None else None
        parsed = parse_user_filter(state["filter"], USER_PROPERTIES) if state["filter"] else None
        if state["mode"] == "latest":
            entries: list[dict[str, Any]] = []
            more = False
        elif state["mode"] == "full":
            entries, more = self._full_page(state, select, parsed)
        else:
            entries, more = self._changes_page(state, select, parsed)
        document: dict[str, Any] = {
            "@odata.context": f"{request.base_url}/v1.0/$metadata#users",
            "value": entries,
        }
        if more:
            state["after"] = entries[-1]["id"]
            document["@odata.nextLink"] = self._link(request, "$skiptoken", state)
        else:
            final = {
                "seq": state["to"],
                "select": state["select"],
                "filter": state["filter"],
                "issued": self.clock(),
                "epoch": self._epoch,
            }
            document["@odata.deltaLink"] = self._link(request, "$deltatoken", final)
        return SimResponse.json(200, document)

    def _new_state(self, request: SimRequest) -> dict[str, Any]:
        select = parse_select(request)
        raw_filter = request.first("$filter")
        if raw_filter:
            parsed = parse_user_filter(raw_filter, USER_PROPERTIES)
            ids_only = parsed.properties <= {"id"} and not parsed.advanced
            if not ids_only:
                raise unsupported("Delta queries on users can only be filtered by id.")
            if raw_filter.lower().count("'") // 2 > MAX_DELTA_ID_FILTER:
                raise unsupported(f"At most {MAX_DELTA_ID_FILTER} ids can be filtered in delta.")
        return {
            "mode": "full",
            "select": list(select) if select is not None else None,
            "filter": raw_filter,
            "to": self._seq(),
            "after": "",
            "issued": self.clock(),
            "epoch": self._epoch,
        }

    def _valid_state(self, request: SimRequest, token: str) -> dict[str, Any]:
        state = _decode(token)
        if not _well_formed(state):
            raise GraphError(400, "Request_BadRequest", "Badly formed token.")
        fresh = state.get("epoch") == self._epoch and (
            self.clock() - float(state.get("issued", 0)) <= self.max_age
        )
        if not fresh:
            restart = {
                k: v[0]
                for k, v in request.query.items()
                if k not in ("$skiptoken", "$deltatoken", "$deltaToken")
            }
            if state.get("select"):
                restart["$select"] = ",".join(state["select"])
            location = f"{request.base_url}/v1.0/users/delta"
            if restart:
                location += "?" + urlencode(restart, quote_via=quote, safe="$,()")
            raise GraphError(
                self.expired_status,
                self.expired_code,
                "The delta token has expired or is no longer valid; restart with a full sync.",
                {"Location": location} if self.expired_status == 410 else {},
            )
        state.setdefault("mode", "changes")
        state.setdefault("filter", None)
        state.setdefault("select", None)
        state.setdefault("after", "")
        return state

    def _link(self, request: SimRequest, option: str, state: dict[str, Any]) -> str:
        return f"{request.base_url}/v1.0/users/delta?{option}={_encode(state)}"

    def _full_page(
        self, state: dict[str, Any], select: tuple[str, ...] | None, parsed: ParsedFilter | None
    ) -> tuple[list[dict[str, Any]], bool]:
        snapshot = self._current()
        ids, by_id = self._candidates(snapshot, parsed), snapshot.by_id
        start = bisect_right(ids, state["after"])
        page: list[dict[str, Any]] = []
        for index in range(start, len(ids)):
            user = by_id[ids[index]]
            if parsed is not None and not parsed.predicate(user):
                continue
            if len(page) == DELTA_PAGE_SIZE:
                return page, True
            page.append(project(user, select))
        return page, False

    def _changes_page(
        self, state: dict[str, Any], select: tuple[str, ...] | None, parsed: ParsedFilter | None
    ) -> tuple[list[dict[str, Any]], bool]:
        since = int(state["seq"])
        self._current()  # diff every change up to now, so property changes are known
        # With $select, Graph reports a user only when a selected property changed.
        tracked = (
            select is not None and self._tracked_since is not None and since >= self._tracked_since
        )
        changed, deleted, _ = self.directory.changes_since(since)
        removed = {str(uid) for uid in deleted}
        touched = sorted(removed | {str(uid) for uid in changed})
        start = bisect_right(touched, state["after"])
        page: list[dict[str, Any]] = []
        for index in range(start, len(touched)):
            uid = touched[index]
            user = None if uid in removed else self.directory.get(uid)
            if user is not None and parsed is not None and not parsed.predicate(user):
                continue
            if user is None and parsed is not None and not parsed.predicate({"id": uid}):
                continue
            if user is not None and tracked and not self._selected_change(uid, select, since):
                continue
            if len(page) == DELTA_PAGE_SIZE:
                return page, True
            if user is None:
                page.append({"id": uid, "@removed": {"reason": "deleted"}})
            elif user.get("deletedDateTime"):
                # A soft-deleted user can still be restored: Graph says "changed".
                page.append({"id": uid, "@removed": {"reason": "changed"}})
            else:
                page.append(project(user, select))
        return page, False
