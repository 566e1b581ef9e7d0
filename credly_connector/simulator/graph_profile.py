"""What a user's Microsoft 365 profile would show from people connectors: a test oracle.

Graph offers no call for this (profile data from connectors surfaces in Outlook and Copilot
hours later), so it is a control method only. The rules come from microsoft-graph.md §1:
the item sits in a `people` connection that is `ready`, registered as a profile source that
is listed in the nameless setting's `prioritizedSourceUrls`; its `personAccount` names the
user by userPrincipalName or externalDirectoryObjectId; the user is enabled, licensed and
has a mailbox; only valid JSON entities count. [INFERRED] how these combine, and that a
source outside the prioritized list shows nothing.
"""

from __future__ import annotations

import json
from typing import Any

from credly_connector.simulator.graph_external import Connection, ExternalApi
from credly_connector.simulator.graph_people import PeopleApi
from credly_connector.simulator.graph_users import DirectoryLike

_LABELS = {"personAwards": "awards", "personCertifications": "certifications"}


def _entity(text: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _account_matches(value: Any, user: dict[str, Any]) -> bool:
    account = _entity(value)
    if account is None:
        return False
    upn = account.get("userPrincipalName")
    object_id = account.get("externalDirectoryObjectId")
    return (
        isinstance(upn, str) and upn.casefold() == str(user.get("userPrincipalName")).casefold()
    ) or (isinstance(object_id, str) and object_id.casefold() == str(user["id"]).casefold())


def _user_problems(user: dict[str, Any]) -> list[str]:
    problems = []
    if user.get("accountEnabled") is False:
        problems.append("the account is disabled")
    if not user.get("assignedLicenses"):
        problems.append("the user has no license")
    if user.get("hasMailbox") is False:
        problems.append("the user has no Exchange Online mailbox")
    return problems


def profile_view(
    directory: DirectoryLike, external: ExternalApi, people: PeopleApi, id_or_upn: str
) -> dict[str, Any]:
    """`{"awards": [...], "certifications": [...], "sources": [...], "problems": [...]}`.

    Awards and certifications are the entities (parsed JSON) that would show; `problems`
    says why an item that names the user shows nothing.
    """
    view: dict[str, Any] = {"awards": [], "certifications": [], "sources": [], "problems": []}
    user = directory.get(id_or_upn)
    if user is None:
        view["problems"].append(f"no directory user {id_or_upn}")
        return view
    user_problems = _user_problems(user)
    prioritized = people.prioritized_source_ids()
    external.settle()
    with external.lock:
        connections = list(external.connections.values())
        for connection in connections:
            items = [
                item for item in connection.items.values() if _names_user(connection, item, user)
            ]
            if not items:
                continue
            blockers = _connection_problems(connection, prioritized) + user_problems
            if blockers:
                view["problems"] += [f"{connection.id}: {problem}" for problem in blockers]
                continue
            view["sources"].append(connection.id)
            for item in items:
                _collect(connection, item, view)
    return view


def _names_user(connection: Connection, item: dict[str, Any], user: dict[str, Any]) -> bool:
    for prop in connection.property_types().values():
        if "personAccount" in prop.get("labels", []):
            return _account_matches(item.get("properties", {}).get(prop["name"]), user)
    return False


def _connection_problems(connection: Connection, prioritized: set[str]) -> list[str]:
    problems = []
    if connection.content_category != "people":
        problems.append(f"contentCategory is {connection.content_category}, not people")
    if connection.state != "ready":
        problems.append(f"the connection is {connection.state}")
    if connection.id.casefold() not in prioritized:
        problems.append("the connection is not a prioritized profile source")
    return problems


def _collect(connection: Connection, item: dict[str, Any], view: dict[str, Any]) -> None:
    for prop in connection.property_types().values():
        for label in prop.get("labels", []):
            target = _LABELS.get(label)
            if target is None:
                continue
            values = item.get("properties", {}).get(prop["name"]) or []
            for text in values if isinstance(values, list) else [values]:
                entity = _entity(text)
                if entity is not None and isinstance(entity.get("displayName"), str):
                    view[target].append(entity)
