"""The connection must be `ready` before items are written; otherwise say why and what to do."""

from __future__ import annotations

from typing import Any

from credly_connector.errors import UsageError

_STATE_ADVICE = {
    "draft": (
        "its schema is not registered yet (or still being registered)",
        "Run `credlyctl setup` and wait for it to finish; schema registration takes minutes.",
    ),
    "obsolete": (
        "it is obsolete: Graph only allows deleting it",
        "Run `credlyctl teardown` and then `credlyctl setup` to create it again.",
    ),
    "limitexceeded": (
        "it hit its item or size limit, so Graph accepts no new items",
        "Remove items or connections in the tenant, then run the sync again.",
    ),
}


def connection_state(connection: Any) -> str | None:
    if isinstance(connection, dict):
        state = connection.get("state")
    else:
        state = getattr(connection, "state", None)
    return str(state) if state is not None else None


def _is_not_found(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 404


def require_ready(graph: Any, connection_id: str) -> Any:
    """Return the connection when its state is `ready`; raise a UsageError explaining it if not."""
    try:
        connection = graph.get_connection(connection_id)
    except Exception as exc:
        if not _is_not_found(exc):
            raise
        connection = None
    if connection is None:
        raise UsageError(
            f"The Graph connection '{connection_id}' does not exist.",
            "Run `credlyctl setup` first; it creates the connection and registers the schema.",
            error_id="connection_missing",
        )
    state = connection_state(connection) or "unknown"
    if state == "ready":
        return connection
    what, fix = _STATE_ADVICE.get(
        state.lower(),
        (f"its state is '{state}'", "Check the connection in the Microsoft 365 admin center."),
    )
    raise UsageError(
        f"The Graph connection '{connection_id}' is in state '{state}': {what}.",
        fix,
        error_id="connection_not_ready",
    )


def require_people_data_cloud(settings: Any) -> None:
    """Refuse clouds whose Graph has no people-data connections (setup and sync need one)."""
    from credly_connector.endpoints import people_data_unavailable

    why = people_data_unavailable(settings.entra.cloud)
    if why is None:
        return
    raise UsageError(
        f"credlyctl cannot set up or sync in the {settings.entra.cloud} cloud: {why}.",
        "Use a tenant in the global Microsoft 365 cloud. The offline checks and the identity "
        "checks of `credlyctl diagnose` still work here.",
        error_id="cloud_without_people_data",
    )
