"""`setup` and `teardown`: the connection, its schema, the profile source and its priority.

Everything here is idempotent: each step reads what exists first and only changes what is
missing, so a second `setup` changes nothing. An existing connection with another schema is
reported and left alone (changing labels would force re-ingesting everything).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from credly_connector.config.resolved import InstanceSettings
from credly_connector.errors import CredlyctlError, RemoteError, UsageError
from credly_connector.sync.connection import connection_state, require_people_data_cloud
from credly_connector.sync.schema import (
    SCHEMA_PROPERTIES,
    schema_differences,
    unreadable_note,
    unreadable_properties,
)

# Our marker on profile sources, so several credlyctl instances recognise each other
# (our decision; `kind` is a free string in Graph).
SOURCE_KIND = "credlyctl"
_SOURCE_ID = re.compile(r"profileSources\(sourceId='((?:[^']|'')*)'\)", re.IGNORECASE)


class SetupGraph(Protocol):
    def get_connection(self, connection_id: str) -> dict[str, Any] | None: ...

    def create_connection(
        self, connection_id: str, name: str, description: str, content_category: str = ...
    ) -> dict[str, Any]: ...

    def delete_connection(self, connection_id: str) -> bool: ...

    def get_schema(self, connection_id: str) -> dict[str, Any] | None: ...

    def register_schema(self, connection_id: str, properties: list[dict[str, Any]]) -> str: ...

    def get_operation(self, url: str) -> dict[str, Any]: ...

    def list_profile_sources(self) -> list[dict[str, Any]]: ...

    def get_profile_source(self, source_id: str) -> dict[str, Any] | None: ...

    def create_profile_source(
        self, source_id: str, display_name: str, web_url: str, kind: str | None = None
    ) -> dict[str, Any]: ...

    def delete_profile_source(self, source_id: str) -> bool: ...

    def get_profile_property_settings(self) -> list[dict[str, Any]]: ...

    def update_prioritized_sources(self, setting_id: str, urls: list[str]) -> None: ...

    def create_profile_property_setting(self, urls: list[str]) -> dict[str, Any]: ...

    def profile_source_url(self, source_id: str) -> str: ...


@dataclass
class Step:
    name: str
    status: str  # created | updated | unchanged | deleted | absent | skipped
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"step": self.name, "status": self.status, "detail": self.detail}


@dataclass
class SetupReport:
    instance: str
    connection_id: str
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    connection_state: str | None = None
    prioritized_source_urls: list[str] = field(default_factory=list)
    created_connection: bool = False

    @property
    def changed(self) -> bool:
        return any(s.status not in ("unchanged", "absent", "skipped") for s in self.steps)


def source_id_of(url: str) -> str | None:
    match = _SOURCE_ID.search(url)
    return match.group(1).replace("''", "'") if match else None


def insert_source(urls: list[str], ours: str, our_id: str, credlyctl_ids: set[str]) -> list[str]:
    """Our URL ahead of the first source credlyctl did not create; nothing else moves.

    Among several credlyctl instances the existing order is kept, so a new instance goes after
    those already at the front and instances never fight over first place. An entry naming
    our source in another form (e.g. the beta URL) counts as ours.
    """
    lowered_ids = {i.lower() for i in credlyctl_ids} | {our_id.lower()}

    def is_ours(url: str) -> bool:
        sid = source_id_of(url)
        return sid is not None and sid.lower() == our_id.lower()

    def is_credlyctl(url: str) -> bool:
        sid = source_id_of(url)
        return sid is not None and sid.lower() in lowered_ids

    first_foreign = next((i for i, u in enumerate(urls) if not is_credlyctl(u)), len(urls))
    mine = [i for i, u in enumerate(urls) if is_ours(u)]
    if mine and mine[0] < first_foreign:
        return list(urls)
    rest = [u for u in urls if not is_ours(u)]
    position = next((i for i, u in enumerate(rest) if not is_credlyctl(u)), len(rest))
    return [*rest[:position], ours, *rest[position:]]


def _default_setting(settings: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((s for s in settings if not s.get("name")), None)


class Setup:
    def __init__(
        self,
        settings: InstanceSettings,
        graph: SetupGraph,
        *,
        org_vanity: Callable[[], str] | None = None,
        on_connection_created: Callable[[], None] = lambda: None,
        progress: Callable[[str], None] = lambda message: None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        schema_timeout: float = 1200.0,
    ) -> None:
        self.settings = settings
        self.graph = graph
        self.connection_id = settings.graph.connection_id
        self._org_vanity = org_vanity
        self._on_connection_created = on_connection_created
        self.progress = progress
        self._sleep = sleep
        self._clock = clock
        self.schema_timeout = schema_timeout

    # ---- setup -----------------------------------------------------------------------------

    def setup(self) -> SetupReport:
        require_people_data_cloud(self.settings)
        report = SetupReport(self.settings.name, self.connection_id)
        connection = self._connection(report)
        self._schema(report, connection)
        self._profile_source(report)
        self._priority(report)
        return report

    def _connection(self, report: SetupReport) -> dict[str, Any]:
        existing = self.graph.get_connection(self.connection_id)
        if existing is None:
            created = self.graph.create_connection(
                self.connection_id,
                self.settings.graph.connection_name,
                self.settings.graph.connection_description,
                "people",
            )
            report.created_connection = True
            # Recorded now, not at the end: a setup failing later (e.g. on the schema) must
            # still leave the fact that this connection was created empty.
            self._on_connection_created()
            report.steps.append(Step("connection", "created", "contentCategory people"))
            existing = self.graph.get_connection(self.connection_id) or created
        else:
            report.steps.append(Step("connection", "unchanged", "exists"))
            if self._never_held_items(existing):
                # A connection left in draft by an earlier setup that stopped before its
                # schema applied: Graph takes no item before that, so it is still empty.
                report.created_connection = True
                self._on_connection_created()
        category = existing.get("contentCategory")
        if category not in (None, "people"):
            raise UsageError(
                f"The connection '{self.connection_id}' exists with contentCategory "
                f"'{category}', not 'people', so Microsoft 365 will not use it for profiles.",
                "Choose another graph.connection_id, or delete this connection "
                "(`credlyctl teardown`) if it is yours.",
                error_id="connection_wrong_category",
            )
        return existing

    def _never_held_items(self, connection: dict[str, Any]) -> bool:
        if connection_state(connection) != "draft":
            return False
        schema = self.graph.get_schema(self.connection_id)
        return not (isinstance(schema, dict) and schema.get("properties"))

    def _schema(self, report: SetupReport, connection: dict[str, Any]) -> None:
        schema = self.graph.get_schema(self.connection_id)
        props = schema.get("properties") if isinstance(schema, dict) else None
        if schema is not None and isinstance(props, list) and props:
            differences = schema_differences(schema)
            if differences:
                raise UsageError(
                    f"The connection '{self.connection_id}' already has a different schema: "
                    + "; ".join(differences)
                    + ".",
                    "credlyctl never changes an existing schema. Use another "
                    "graph.connection_id, or remove this connection with `credlyctl teardown` "
                    "first if it is yours.",
                    error_id="schema_differs",
                )
            unreadable = unreadable_properties(schema)
            if unreadable:
                report.warnings.append(
                    unreadable_note(unreadable) + ". Setup keeps the registered schema."
                )
            state = connection_state(self.graph.get_connection(self.connection_id))
            if state == "ready":
                report.steps.append(Step("schema", "unchanged", "registered"))
                report.connection_state = state
                return
        operation = self.graph.register_schema(
            self.connection_id, [dict(p) for p in SCHEMA_PROPERTIES]
        )
        self.progress("Registering the schema (Graph takes minutes to apply it)...")
        self._wait_operation(operation)
        current = self.graph.get_connection(self.connection_id)
        report.connection_state = connection_state(current)
        report.steps.append(Step("schema", "created", f"state {report.connection_state}"))

    def _wait_operation(self, url: str) -> None:
        deadline = self._clock() + self.schema_timeout
        delay = 1.0
        while True:
            operation = self.graph.get_operation(url)
            status = str(operation.get("status") or "").lower()
            if status == "completed":
                return
            if status == "failed":
                error = operation.get("error") if isinstance(operation.get("error"), dict) else {}
                assert isinstance(error, dict)
                raise RemoteError(
                    "Graph failed to register the schema: "
                    f"{error.get('code') or 'no code'}: {error.get('message') or 'no message'}",
                    "Run `credlyctl setup` again; if it fails again, keep the message for "
                    "Microsoft support.",
                    error_id="schema_failed",
                )
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise RemoteError(
                    f"The schema registration did not finish within {self.schema_timeout:.0f} "
                    "seconds.",
                    "Graph can take 15 minutes or more; run `credlyctl setup` again later, it "
                    "continues where it stopped.",
                    error_id="schema_timeout",
                )
            self.progress(f"Schema registration {status or 'pending'}; checking again...")
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, 15.0)

    def _web_url(self, report: SetupReport) -> str:
        """The organization's public Credly page, else the Credly home page.

        Credly's organization pages are `<web>/org/<vanity slug>` (as seen in recorded Credly
        answers); the organization id alone names no public page.
        """
        home = self.settings.credly.web_base + "/"
        if self._org_vanity is None:
            return home
        try:
            vanity = self._org_vanity()
        except CredlyctlError as exc:
            report.warnings.append(
                f"Could not read the Credly organization ({exc.message}); the profile source "
                f"links to {home}."
            )
            return home
        return org_page_url(self.settings.credly.web_base, vanity) or home

    def _profile_source(self, report: SetupReport) -> None:
        existing = self.graph.get_profile_source(self.connection_id)
        if existing is not None:
            kind = existing.get("kind")
            if kind != SOURCE_KIND:
                report.warnings.append(
                    f"The profile source '{self.connection_id}' exists with kind '{kind}', "
                    "not created by credlyctl; it is kept as it is."
                )
            report.steps.append(Step("profile_source", "unchanged", "registered"))
            return
        web_url = self._web_url(report)
        self.graph.create_profile_source(
            self.connection_id, self.settings.graph.connection_name, web_url, SOURCE_KIND
        )
        report.steps.append(Step("profile_source", "created", web_url))

    def _credlyctl_source_ids(self) -> set[str]:
        return {
            str(s.get("sourceId"))
            for s in self.graph.list_profile_sources()
            if s.get("kind") == SOURCE_KIND and s.get("sourceId")
        }

    def _priority(self, report: SetupReport) -> None:
        setting = _default_setting(self.graph.get_profile_property_settings())
        ours = self.graph.profile_source_url(self.connection_id)
        if setting is None:
            # New tenants can have none; Graph documents creating it (precedence guide).
            self.progress("The tenant has no default profile property setting: creating it.")
            self.graph.create_profile_property_setting([ours])
            report.prioritized_source_urls = [ours]
            report.steps.append(
                Step(
                    "priority",
                    "created",
                    "the tenant had no default profile property setting: created it with "
                    "this source first",
                )
            )
            return
        if not setting.get("id"):
            raise RemoteError(
                "The tenant has no default (nameless) profile property setting to add the "
                "source to.",
                "Check the profile property settings in the Microsoft 365 admin center "
                "(People settings), then run `credlyctl setup` again.",
                error_id="no_default_profile_setting",
            )
        urls = [str(u) for u in setting.get("prioritizedSourceUrls") or []]
        wanted = insert_source(urls, ours, self.connection_id, self._credlyctl_source_ids())
        report.prioritized_source_urls = wanted
        if wanted == urls:
            position = _position(wanted, self.connection_id)
            report.steps.append(Step("priority", "unchanged", f"position {position}"))
            return
        self.graph.update_prioritized_sources(str(setting["id"]), wanted)
        report.steps.append(
            Step("priority", "updated", f"position {_position(wanted, self.connection_id)}")
        )

    # ---- teardown --------------------------------------------------------------------------

    def teardown(self) -> SetupReport:
        report = SetupReport(self.settings.name, self.connection_id)
        setting = _default_setting(self.graph.get_profile_property_settings())
        if setting is not None and setting.get("id"):
            urls = [str(u) for u in setting.get("prioritizedSourceUrls") or []]
            kept = [
                u for u in urls if (source_id_of(u) or "").lower() != self.connection_id.lower()
            ]
            report.prioritized_source_urls = kept
            if kept != urls:
                self.graph.update_prioritized_sources(str(setting["id"]), kept)
                report.steps.append(Step("priority", "deleted", "removed from the list"))
            else:
                report.steps.append(Step("priority", "absent", "not in the list"))
        source = self.graph.get_profile_source(self.connection_id)
        if source is not None:
            self.graph.delete_profile_source(self.connection_id)
            report.steps.append(Step("profile_source", "deleted"))
        else:
            report.steps.append(Step("profile_source", "absent"))
        if self.graph.delete_connection(self.connection_id):
            report.steps.append(
                Step("connection", "deleted", "Microsoft 365 can take about a day to forget it")
            )
        else:
            report.steps.append(Step("connection", "absent"))
        return report


_VANITY_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def org_page_url(web_base: str, vanity: str) -> str | None:
    """`<web_base>/org/<slug>` from Credly's `vanity_slug` (or the last part of `vanity_url`).

    Built on the configured web host, so a sandbox organization links to the sandbox site.
    """
    text = vanity.strip()
    if "://" in text:
        parts = urlsplit(text).path.strip("/").split("/")
        text = parts[1] if len(parts) == 2 and parts[0] == "org" else ""
    return f"{web_base}/org/{text}" if _VANITY_SLUG.match(text) else None


def _position(urls: list[str], source_id: str) -> int:
    for index, url in enumerate(urls, start=1):
        if (source_id_of(url) or "").lower() == source_id.lower():
            return index
    return 0


def run_setup(
    settings: InstanceSettings,
    *,
    progress: Callable[[str], None] = lambda message: None,
    schema_timeout: float = 1200.0,
    sleep: Callable[[float], None] = time.sleep,
) -> SetupReport:
    """Setup with real clients, recording in the state when it created the connection."""
    from credly_connector.sync.clients import build_clients
    from credly_connector.sync.state import open_state, state_path

    require_people_data_cloud(settings)
    clients = build_clients(settings)

    def org_vanity() -> str:
        organization = clients.credly.get_organization()
        return organization.vanity_slug or organization.vanity_url or ""

    def created_empty() -> None:
        # A connection created just now holds no item: the first crawl needs no clean-up.
        state = open_state(state_path(settings.sync.state_dir, settings.name), settings.name)
        try:
            state.connection_created()
        finally:
            state.close()

    try:
        return Setup(
            settings,
            clients.graph,
            org_vanity=org_vanity,
            on_connection_created=created_empty,
            progress=progress,
            schema_timeout=schema_timeout,
            sleep=sleep,
        ).setup()
    finally:
        clients.close()


def run_teardown(settings: InstanceSettings) -> SetupReport:
    """Teardown with real clients; the state forgets the items of the deleted connection."""
    from credly_connector.sync.clients import build_clients
    from credly_connector.sync.state import open_readonly, open_state, state_path

    clients = build_clients(settings)
    try:
        report = Setup(settings, clients.graph).teardown()
    finally:
        clients.close()
    path = state_path(settings.sync.state_dir, settings.name)
    existing = open_readonly(path)
    if existing is not None:
        existing.close()
        state = open_state(path, settings.name)
        try:
            state.forget_connection()
        finally:
            state.close()
    return report
