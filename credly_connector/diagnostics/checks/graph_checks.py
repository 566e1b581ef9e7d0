"""Microsoft Graph checks: permissions, credlyctl's connection, schema, profile source, priority,
and other people-data sources in the tenant."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from credly_connector.config.resolved import InstanceSettings
from credly_connector.diagnostics.checks._common import settings_or_skip
from credly_connector.diagnostics.context import DiagnosticContext
from credly_connector.diagnostics.model import (
    CheckResult,
    error_from,
    fail,
    ok,
    skipped,
    warn,
)
from credly_connector.diagnostics.registry import register
from credly_connector.endpoints import people_data_unavailable
from credly_connector.errors import CredlyctlError, Retryable

CONSENT = (
    "In the Entra admin center > App registrations > the app > API permissions, add the "
    "Microsoft Graph application permission {perm} and grant admin consent."
)
# Permission the sync needs -> roles that also satisfy it (a broader grant works too).
NEEDED_PERMISSIONS: dict[str, frozenset[str]] = {
    "User.Read.All": frozenset(
        {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
    ),
    "ExternalConnection.ReadWrite.OwnedBy": frozenset(
        {"ExternalConnection.ReadWrite.OwnedBy", "ExternalConnection.ReadWrite.All"}
    ),
    "ExternalItem.ReadWrite.OwnedBy": frozenset(
        {"ExternalItem.ReadWrite.OwnedBy", "ExternalItem.ReadWrite.All"}
    ),
    "PeopleSettings.ReadWrite.All": frozenset({"PeopleSettings.ReadWrite.All"}),
}
READ_ALL_CONNECTIONS = frozenset(
    {"ExternalConnection.Read.All", "ExternalConnection.ReadWrite.All"}
)
PERMISSION_PROBE_ID = "00000000-0000-0000-0000-000000000000"  # a user id that cannot exist
PROBE_ITEM_ID = "credlyctlpermissionprobe"
PEOPLE_LABELS = frozenset({"personAwards", "personCertifications"})


def _permission_error() -> type[Exception]:
    from credly_connector.graph.errors import GraphPermissionError

    return GraphPermissionError


def _roles(ctx: DiagnosticContext) -> frozenset[str] | None:
    try:
        return ctx.token_roles()
    except CredlyctlError:
        return None


def _confirmations(
    ctx: DiagnosticContext, settings: InstanceSettings
) -> dict[str, Callable[[], Any] | None]:
    """A read-only Graph call per permission, or None when no such call can be made."""

    def items() -> Any:
        if _connection_or_none(ctx) is None:
            raise LookupError("no connection to read an item from")
        return ctx.connection_item(PROBE_ITEM_ID)

    return {
        "User.Read.All": lambda: ctx.memo(
            "graph:user-probe", lambda: ctx.graph().get_user(PERMISSION_PROBE_ID)
        ),
        # Listing shows only the connections the app may reach; reading ours by id tells
        # "not created by this app" (refused) from "not there yet" (404).
        "ExternalConnection.ReadWrite.OwnedBy": lambda: (ctx.connections(), ctx.connection()),
        "ExternalItem.ReadWrite.OwnedBy": lambda: ctx.memo("graph:item-probe", items),
        "PeopleSettings.ReadWrite.All": ctx.profile_sources,
    }


def _connection_or_none(ctx: DiagnosticContext) -> dict[str, Any] | None:
    try:
        connection = ctx.connection()
    except CredlyctlError:
        return None
    return connection if isinstance(connection, dict) else None


@register(
    "graph.permissions",
    "Microsoft Graph application permissions",
    scope="connection",
    requires=("entra.token",),
    cause="An application permission the sync needs (User.Read.All, "
    "ExternalConnection.ReadWrite.OwnedBy, ExternalItem.ReadWrite.OwnedBy, "
    "PeopleSettings.ReadWrite.All) is not granted, or admin consent is missing.",
    fix="Add the permission as an Application permission of Microsoft Graph on the app "
    "registration, then grant admin consent.",
)
def graph_permissions(ctx: DiagnosticContext) -> list[CheckResult]:
    settings = ctx.require_settings()
    roles = _roles(ctx)
    probes = _confirmations(ctx, settings)
    denied_type = _permission_error()
    results: list[CheckResult] = []
    missing_cause = (
        "graph_no_permissions" if roles is not None and not roles else ("graph_permission_missing")
    )
    for permission, satisfying in NEEDED_PERMISSIONS.items():
        in_claim = None if roles is None else bool(roles & satisfying)
        evidence: dict[str, Any] = {
            "permission": permission,
            "in_token_roles": in_claim,
            "confirmed_by_call": None,
        }
        fix = CONSENT.format(perm=permission)
        probe = probes.get(permission)
        outcome = "not-tried"
        if probe is not None:
            try:
                probe()
                outcome = "allowed"
            except denied_type:
                outcome = "denied"
            except LookupError:
                outcome = "not-tried"
            except Retryable as exc:
                results.append(
                    error_from(
                        exc, f"Could not confirm {permission}: {exc.message}", evidence=evidence
                    )
                )
                continue
            except CredlyctlError:
                outcome = "not-tried"
        evidence["confirmed_by_call"] = {"allowed": True, "denied": False}.get(outcome)
        if outcome == "denied":
            if in_claim:
                owned = permission.endswith(".OwnedBy")
                results.append(
                    fail(
                        f"The token lists {permission}, but Graph refused a read that needs it: "
                        + (
                            "the connection was probably created by another app (OwnedBy "
                            "permissions only reach connections the app created), or admin "
                            "consent is still propagating."
                            if owned
                            else "admin consent may be missing or still propagating."
                        ),
                        (
                            "Use the app that created the connection (the one `credlyctl setup` "
                            "ran with), or recreate the connection with this app (teardown, "
                            "setup)."
                            if owned
                            else f"{fix} Wait a few minutes after consenting, then run "
                            "diagnose again."
                        ),
                        evidence=evidence,
                        cause="graph_connection_not_owned" if owned else missing_cause,
                    )
                )
            else:
                results.append(
                    fail(
                        f"The app lacks the application permission {permission}.",
                        fix,
                        evidence=evidence,
                        cause=missing_cause,
                    )
                )
        elif outcome == "allowed":
            results.append(
                ok(
                    f"{permission} is granted (a read-only Graph call that needs it worked).",
                    evidence=evidence,
                )
            )
        elif in_claim is None:
            results.append(
                warn(
                    f"Could not check {permission}: the token's roles cannot be read and no "
                    "read-only call confirms it.",
                    fix,
                    evidence=evidence,
                )
            )
        elif in_claim:
            results.append(
                ok(
                    f"{permission} is in the token's roles; only the claim could be checked "
                    "(no read-only call confirms it before the connection exists).",
                    evidence=evidence,
                )
            )
        else:
            results.append(
                fail(
                    f"The app lacks the application permission {permission} (not in the "
                    "token's roles).",
                    fix,
                    evidence=evidence,
                    cause=missing_cause,
                )
            )
    return results


def _graph_failure(exc: CredlyctlError, what: str) -> CheckResult:
    if isinstance(exc, _permission_error()):
        return skipped(
            f"Could not read {what}: {getattr(exc, 'permission', 'a permission')} is missing "
            "(graph.permissions names it).",
            evidence={"permission": getattr(exc, "permission", None)},
        )
    return error_from(exc, f"Could not read {what}: {exc.message}")


_STATE_ADVICE = {
    "draft": (
        "The connection is still a draft: its schema registration has not completed.",
        "Run `credlyctl setup` again and let it wait for the schema operation (it can take "
        "5 to 15 minutes).",
    ),
    "limitExceeded": (
        "The connection has reached its item limit (limitExceeded): new items are refused.",
        "Remove connections or items the tenant no longer needs, or raise the tenant's "
        "Copilot connectors quota, then run `credlyctl sync`.",
    ),
    "obsolete": (
        "The connection is obsolete: Microsoft no longer serves it.",
        "Recreate it: `credlyctl teardown` then `credlyctl setup` and a full `credlyctl sync`.",
    ),
}


@register(
    "graph.cloud",
    "Microsoft cloud offers people-data connections",
    scope="connection",
    cause="The tenant is in a US Government cloud (usgov, usgovdod), whose Microsoft Graph has "
    "no people-data connections: no contentCategory, no person labels, no profile sources.",
    fix="Use a tenant in the global Microsoft 365 cloud; the identity checks still work here.",
)
def people_data_cloud(ctx: DiagnosticContext) -> CheckResult:
    settings = settings_or_skip(ctx)
    if not isinstance(settings, InstanceSettings):
        return settings
    cloud = str(settings.entra.cloud)
    why = people_data_unavailable(cloud)
    if why is None:
        return ok(f"The {cloud} cloud offers people-data connections.", evidence={"cloud": cloud})
    return fail(
        f"credlyctl cannot set up or sync in the {cloud} cloud: {why}.",
        "Use a tenant in the global Microsoft 365 cloud. The Entra ID checks and the Credly "
        "checks still work here.",
        evidence={"cloud": cloud},
        cause="cloud_without_people_data",
    )


@register(
    "graph.connection_state",
    "Graph connection exists and is ready",
    scope="connection",
    requires=("entra.token", "graph.cloud"),
    cause="The external connection does not exist, is not a people-data connection, or is in "
    "state draft, limitExceeded or obsolete.",
    fix="Run `credlyctl setup`; for obsolete connections, teardown and setup again.",
)
def connection_state(ctx: DiagnosticContext) -> CheckResult:
    settings = settings_or_skip(ctx)
    if not isinstance(settings, InstanceSettings):
        return settings
    connection_id = settings.graph.connection_id
    try:
        connection = ctx.connection()
    except CredlyctlError as exc:
        return _graph_failure(exc, f"connection {connection_id}")
    if not isinstance(connection, dict):
        return fail(
            f"The Graph connection {connection_id!r} does not exist.",
            "Run `credlyctl setup` to create it, then `credlyctl sync`.",
            evidence={"connection_id": connection_id},
            table_row="initial-sync-incomplete",
            cause="connection_missing",
        )
    category = connection.get("contentCategory")
    state = connection.get("state")
    evidence = {"connection_id": connection_id, "contentCategory": category, "state": state}
    if category != "people":
        return fail(
            f"The connection {connection_id!r} has contentCategory {category!r}, not 'people': "
            "Microsoft 365 does not treat its items as profile data.",
            "The category cannot be changed: `credlyctl teardown` then `credlyctl setup` "
            "recreates it as a people-data connection.",
            evidence=evidence,
            cause="connection_not_people",
        )
    if state == "ready":
        return ok(
            f"The connection {connection_id!r} is a people-data connection and ready.",
            evidence=evidence,
        )
    if isinstance(state, str) and state in _STATE_ADVICE:
        explanation, fix = _STATE_ADVICE[state]
        row = "initial-sync-incomplete" if state == "draft" else None
        return fail(explanation, fix, evidence=evidence, table_row=row, cause=f"connection_{state}")
    return warn(
        f"The connection is in a state credlyctl does not know ({state!r}).",
        "Check the connection in the Microsoft 365 admin center (Settings > Copilot > Connectors).",
        evidence=evidence,
    )


@register(
    "graph.schema",
    "Connection schema is credlyctl's fixed schema",
    scope="connection",
    requires=("graph.connection_state",),
    table_rows=("fixed-schema",),
    cause="The connection's schema differs from the fixed schema (someone changed it, or the "
    "connection was created by another tool).",
    fix="The schema cannot be customized: recreate the connection with `credlyctl teardown` "
    "and `credlyctl setup`, then run a full sync.",
)
def connection_schema(ctx: DiagnosticContext) -> CheckResult:
    from credly_connector.sync.schema import (
        SCHEMA_PROPERTIES,
        schema_differences,
        unreadable_note,
        unreadable_properties,
    )

    settings = ctx.require_settings()
    try:
        schema = ctx.schema()
    except CredlyctlError as exc:
        return _graph_failure(exc, "the connection's schema")
    expected = [f"{p['name']}:{p['type']}:{','.join(p['labels'])}" for p in SCHEMA_PROPERTIES]
    if not isinstance(schema, dict):
        return fail(
            f"The connection {settings.graph.connection_id!r} has no schema.",
            "Run `credlyctl setup` to register the fixed schema.",
            evidence={"expected": expected},
            cause="schema_missing",
        )
    differences = schema_differences(schema)
    if differences:
        return fail(
            "The connection's schema is not credlyctl's fixed schema: "
            + "; ".join(differences)
            + ".",
            "The schema cannot be customized (Microsoft's connector does not allow it either): "
            "`credlyctl teardown` then `credlyctl setup` recreates the connection with the "
            "fixed schema; a full sync then re-ingests every item.",
            evidence={"differences": differences, "expected": expected},
            table_row="fixed-schema",
            cause="schema_changed",
        )
    unreadable = unreadable_properties(schema)
    if unreadable:
        return warn(
            unreadable_note(unreadable) + ". The names and types match the fixed schema.",
            "Nothing to change on the connection. If it persists, keep the output of "
            "`credlyctl support-bundle` for Microsoft support: Graph should honour the header.",
            evidence={"unreadable": unreadable, "expected": expected},
            cause="schema_labels_unreadable",
        )
    return ok(
        "The connection carries the fixed schema (account, awards, certifications).",
        evidence={"expected": expected},
    )


def _our_source(sources: list[dict[str, Any]], connection_id: str) -> dict[str, Any] | None:
    for source in sources:
        if str(source.get("sourceId", "")).lower() == connection_id.lower():
            return source
    return None


def _is_entra(source: dict[str, Any]) -> bool:
    return str(source.get("kind") or "").lower() == "msentra"


@register(
    "graph.profile_source",
    "Connection registered as a profile source",
    scope="connection",
    requires=("entra.token", "graph.cloud"),
    cause="The connection is not registered as a profile source, so its data never reaches "
    "profiles.",
    fix="Run `credlyctl setup` (it registers the profile source and its priority).",
)
def profile_source(ctx: DiagnosticContext) -> CheckResult:
    settings = settings_or_skip(ctx)
    if not isinstance(settings, InstanceSettings):
        return settings
    connection_id = settings.graph.connection_id
    try:
        sources = ctx.profile_sources()
    except CredlyctlError as exc:
        return _graph_failure(exc, "the profile sources")
    ours = _our_source(sources, connection_id)
    if ours is None:
        return fail(
            f"The connection {connection_id!r} is not registered as a profile source.",
            "Run `credlyctl setup`; it registers the source and puts it ahead of Entra ID.",
            evidence={"sources": [s.get("sourceId") for s in sources]},
            cause="profile_source_missing",
        )
    return ok(
        f"The connection is registered as profile source {ours.get('displayName')!r}.",
        evidence={k: ours.get(k) for k in ("sourceId", "displayName", "kind", "webUrl")},
    )


def _url_names(url: str, source_id: str) -> bool:
    pattern = (
        rf"profileSources\(sourceId='{re.escape(source_id)}'\)$|/external/connections/"
        rf"{re.escape(source_id)}$"
    )
    return re.search(pattern, url.strip().rstrip("/"), re.IGNORECASE) is not None


@register(
    "graph.profile_priority",
    "Profile source priority",
    scope="connection",
    requires=("graph.profile_source",),
    cause="The connection is missing from the prioritized profile sources, or comes after the "
    "Microsoft Entra ID source.",
    fix="Run `credlyctl setup` again: it puts the connection ahead of Entra ID and keeps every "
    "other entry.",
)
def profile_priority(ctx: DiagnosticContext) -> CheckResult:
    settings = ctx.require_settings()
    connection_id = settings.graph.connection_id
    try:
        property_settings = ctx.profile_settings()
        sources = ctx.profile_sources()
    except CredlyctlError as exc:
        return _graph_failure(exc, "the profile property settings")
    nameless = [s for s in property_settings if isinstance(s, dict) and not s.get("name")]
    urls: list[str] = []
    if nameless:
        urls = [str(u) for u in nameless[0].get("prioritizedSourceUrls") or []]
    ours = next((i for i, u in enumerate(urls) if _url_names(u, connection_id)), None)
    entra_ids = [str(s.get("sourceId")) for s in sources if _is_entra(s)]
    entra = next(
        (
            i
            for i, u in enumerate(urls)
            if any(_url_names(u, e) for e in entra_ids) or "login.microsoftonline" in u.lower()
        ),
        None,
    )
    evidence = {"prioritized": urls, "our_position": ours, "entra_position": entra}
    if ours is None:
        return fail(
            "The connection is not in the prioritized list of profile sources.",
            "Run `credlyctl setup` to add it ahead of Microsoft Entra ID.",
            evidence=evidence,
            cause="profile_source_not_prioritized",
        )
    if entra is not None and entra < ours:
        return fail(
            f"The connection is at position {ours + 1} of the prioritized profile sources, "
            f"after the Microsoft Entra ID source (position {entra + 1}).",
            "Run `credlyctl setup` again: it moves the connection ahead of Entra ID.",
            evidence=evidence,
            cause="profile_source_behind_entra",
        )
    return ok(
        f"The connection is at position {ours + 1} of the prioritized profile sources, ahead "
        "of Microsoft Entra ID.",
        evidence=evidence,
    )


def _schema_of(ctx: DiagnosticContext, connection_id: str) -> Any:
    def read() -> Any:
        return ctx.graph().get_schema(connection_id)

    return ctx.memo(f"graph:schema:{connection_id}", read)


@register(
    "graph.other_sources",
    "Other sources of awards and certifications",
    scope="connection",
    requires=("entra.token", "graph.cloud"),
    cause="Another people-data connection or profile source (for example Microsoft's own "
    "Credly connector) also puts awards or certifications on profiles.",
    fix="Keep one source of Credly badges: remove Microsoft's Credly connector or this "
    "instance, or make sure they serve different Credly organizations.",
)
def other_sources(ctx: DiagnosticContext) -> CheckResult:
    from credly_connector.sync.schema import UNKNOWN_ENUM_MEMBER

    settings = ctx.require_settings()
    ours = settings.graph.connection_id.lower()
    roles = _roles(ctx) or frozenset()
    overlapping: list[str] = []
    unknown: list[str] = []
    try:
        connections = [c for c in ctx.connections() if isinstance(c, dict)]
    except CredlyctlError as exc:
        return _graph_failure(exc, "the tenant's connections")
    seen_ids = {str(c.get("id", "")).lower() for c in connections}
    for connection in connections:
        cid = str(connection.get("id", ""))
        if cid.lower() == ours or connection.get("contentCategory") != "people":
            continue
        try:
            schema = _schema_of(ctx, cid)
        except CredlyctlError:
            unknown.append(f"connection {cid}")
            continue
        labels = {
            str(label)
            for prop in (schema or {}).get("properties") or []
            if isinstance(prop, dict)
            for label in prop.get("labels") or []
        }
        if labels & PEOPLE_LABELS:
            overlapping.append(f"connection {cid} ({connection.get('name')})")
        elif UNKNOWN_ENUM_MEMBER in labels:
            unknown.append(f"connection {cid} (Graph did not show its labels)")
    try:
        sources = ctx.profile_sources()
    except CredlyctlError:
        sources = []
    for source in sources:
        sid = str(source.get("sourceId", ""))
        if sid.lower() == ours or _is_entra(source) or sid.lower() in seen_ids:
            continue
        unknown.append(f"profile source {source.get('displayName') or sid} ({source.get('kind')})")
    evidence: dict[str, Any] = {"overlapping": overlapping, "not_inspectable": unknown}
    if overlapping:
        return warn(
            "Other people-data sources also put awards or certifications on profiles: "
            + ", ".join(overlapping)
            + ".",
            "Badges may show twice or conflict: keep one source of Credly badges (remove "
            "Microsoft's Credly connector or this instance), or make them serve different "
            "organizations.",
            evidence=evidence,
            cause="other_credly_source",
        )
    can_read_all = bool(roles & READ_ALL_CONNECTIONS)
    unseen = (
        ""
        if can_read_all
        else (
            "the app holds only ExternalConnection.ReadWrite.OwnedBy, so Graph shows it only "
            "the connections it is authorized to, not those of other apps"
        )
    )
    evidence["connections_of_other_apps_visible"] = can_read_all
    if unknown:
        why = f" ({unseen}; ExternalConnection.Read.All would let credlyctl read theirs)"
        why = why if unseen else ""
        credly_like = [u for u in unknown if "credly" in u.lower()]
        text = (
            f"credlyctl could not check what these sources provide{why}: "
            + ", ".join(unknown)
            + "."
        )
        if credly_like:
            return warn(
                text + " One looks like another Credly source, which would also put badges on "
                "profiles.",
                "If it is Microsoft's Credly connector, keep only one of the two for this "
                "organization.",
                evidence=evidence,
                cause="other_credly_source",
            )
        return ok(text, evidence=evidence)
    if unseen:
        return ok(
            "No other profile source is registered, so nothing else puts awards or "
            f"certifications on profiles. Note: {unseen}; the profile sources list shows "
            "them all.",
            evidence=evidence,
        )
    return ok("No other source puts awards or certifications on profiles.", evidence=evidence)
