"""Every path, property and enum value the simulated Graph serves exists in Graph's v1.0 CSDL.

The CSDL is ../shared/reference/graph-metadata/v1.0-Prod.csdl (Microsoft's own metadata);
`shared_path` skips these tests on a fresh clone without ../shared/, but not under CI=true.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

from credly_connector.simulator import graph_external as ext
from credly_connector.simulator import graph_filter
from credly_connector.simulator.graph_users import DEFAULT_USER_PROPERTIES, USER_PROPERTIES
from tests.conftest import shared_path
from tests.simulator.graph_support import (
    PEOPLE_SCHEMA,
    PREFER_UNKNOWN,
    GraphHarness,
    harness,
    item_body,
)

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@dataclass
class TypeInfo:
    name: str
    base: str | None
    properties: dict[str, str] = field(default_factory=dict)
    navigation: dict[str, str] = field(default_factory=dict)


@dataclass
class Csdl:
    types: dict[str, TypeInfo]
    enums: dict[str, set[str]]
    container: dict[str, str]  # entity set or singleton -> type (Collection(...) for sets)
    bound_functions: dict[tuple[str, str], str]  # (binding type, name) -> return type

    def lookup(self, name: str) -> TypeInfo:
        return self.types[_full(name)]

    def members(self, name: str) -> tuple[dict[str, str], dict[str, str]]:
        """Properties and navigation properties, inherited ones included."""
        properties: dict[str, str] = {}
        navigation: dict[str, str] = {}
        current: str | None = _full(name)
        while current:
            info = self.types[current]
            properties = {**info.properties, **properties}
            navigation = {**info.navigation, **navigation}
            current = _full(info.base) if info.base else None
        return properties, navigation


def _full(name: str) -> str:
    collection = name.startswith("Collection(")
    inner = name[len("Collection(") : -1] if collection else name
    if inner.startswith("graph."):
        inner = "microsoft.graph." + inner[len("graph.") :]
    return f"Collection({inner})" if collection else inner


def _element(name: str) -> str:
    return name[len("Collection(") : -1] if name.startswith("Collection(") else name


@cache
def _load() -> Csdl:
    root = ET.parse(shared_path("reference", "graph-metadata", "v1.0-Prod.csdl")).getroot()
    types: dict[str, TypeInfo] = {}
    enums: dict[str, set[str]] = {}
    container: dict[str, str] = {}
    bound: dict[tuple[str, str], str] = {}
    for schema in root.iter(f"{EDM}Schema"):
        namespace = schema.get("Namespace", "")
        for node in schema:
            tag = node.tag.removeprefix(EDM)
            name = f"{namespace}.{node.get('Name')}"
            if tag in ("EntityType", "ComplexType"):
                info = TypeInfo(name, node.get("BaseType"))
                for child in node:
                    if child.tag == f"{EDM}Property":
                        info.properties[child.get("Name", "")] = _full(child.get("Type", ""))
                    elif child.tag == f"{EDM}NavigationProperty":
                        info.navigation[child.get("Name", "")] = _full(child.get("Type", ""))
                types[name] = info
            elif tag == "EnumType":
                enums[name] = {m.get("Name", "") for m in node.findall(f"{EDM}Member")}
            elif tag == "Function" and node.get("IsBound") == "true":
                binding = node.find(f"{EDM}Parameter")
                returned = node.find(f"{EDM}ReturnType")
                if binding is not None and returned is not None:
                    key = (_full(binding.get("Type", "")), node.get("Name", ""))
                    bound[key] = _full(returned.get("Type", ""))
            elif tag == "EntityContainer":
                for child in node:
                    if child.tag == f"{EDM}EntitySet":
                        container[child.get("Name", "")] = (
                            f"Collection({_full(child.get('EntityType', ''))})"
                        )
                    elif child.tag == f"{EDM}Singleton":
                        container[child.get("Name", "")] = _full(child.get("Type", ""))
    return Csdl(types, enums, container, bound)


# Each route of the service, as the CSDL segments it walks; "{key}" is a key segment,
# "{alt:x}" an alternate key on property x, "name()" a bound function.
_CONN = r"/external/connections/(?P<conn>[^/]+)"
ROUTES: dict[str, tuple[str, ...]] = {
    "/users": ("users",),
    r"/users/delta(?:\(\))?": ("users", "delta()"),
    r"/users/(?P<user>[^/]+)": ("users", "{key}"),
    "/external/connections": ("external", "connections"),
    _CONN: ("external", "connections", "{key}"),
    _CONN + "/schema": ("external", "connections", "{key}", "schema"),
    _CONN + "/operations/(?P<op>[^/]+)": (
        "external",
        "connections",
        "{key}",
        "operations",
        "{key}",
    ),
    _CONN + "/items": ("external", "connections", "{key}", "items"),
    _CONN + "/items/(?P<item>[^/]+)": ("external", "connections", "{key}", "items", "{key}"),
    "/admin/people/profileSources": ("admin", "people", "profileSources"),
    r"/admin/people/profileSources\(sourceId='(?P<key>(?:[^']|'')*)'\)": (
        "admin",
        "people",
        "profileSources",
        "{alt:sourceId}",
    ),
    r"/admin/people/profileSources/(?P<id>[^/]+)": ("admin", "people", "profileSources", "{key}"),
    "/admin/people/profilePropertySettings": ("admin", "people", "profilePropertySettings"),
    r"/admin/people/profilePropertySettings/(?P<id>[^/]+)": (
        "admin",
        "people",
        "profilePropertySettings",
        "{key}",
    ),
    r"/applications\(appId='(?P<app>(?:[^']|'')*)'\)": ("applications", "{alt:appId}"),
}


def _walk(csdl: Csdl, segments: tuple[str, ...]) -> str:
    current = csdl.container[segments[0]]
    for segment in segments[1:]:
        if segment.startswith("{"):
            assert current.startswith("Collection("), f"{segment} on a single {current}"
            current = _element(current)
            if segment.startswith("{alt:"):
                properties, _ = csdl.members(current)
                assert segment[5:-1] in properties
        elif segment.endswith("()"):
            current = csdl.bound_functions[(current, segment[:-2])]
        else:
            assert not current.startswith("Collection("), f"{segment} on {current}"
            _, navigation = csdl.members(current)
            assert segment in navigation, f"{segment} is not a navigation of {current}"
            current = navigation[segment]
    return current


def test_every_route_is_covered_here() -> None:
    assert set(harness().service.served_routes()) == set(ROUTES)


@pytest.mark.parametrize("pattern", sorted(ROUTES))
def test_route_exists_in_csdl(pattern: str) -> None:
    _walk(_load(), ROUTES[pattern])


def _check(csdl: Csdl, document: Any, type_name: str, where: str) -> None:
    if isinstance(document, list):
        for entry in document:
            _check(csdl, entry, _element(type_name), where)
        return
    if not isinstance(document, dict) or _full(type_name) not in csdl.types:
        return  # primitives and enums
    info = csdl.lookup(type_name)
    properties, navigation = csdl.members(type_name)
    for key, value in document.items():
        if key.startswith("@") or "@odata." in key:
            continue
        if info.name == "microsoft.graph.externalConnectors.properties":
            continue  # the open bag of an external item: names come from the schema
        assert key in properties or key in navigation, f"{where}: {type_name} has no '{key}'"
        if key in properties:
            _check(csdl, value, properties[key], f"{where}.{key}")


def _served_documents(h: GraphHarness) -> list[tuple[str, Any, str]]:
    every = ",".join(sorted(USER_PROPERTIES))
    h.call("POST", "/admin/people/profileSources", {"sourceId": "credlybadges",
           "displayName": "Credly", "webUrl": "https://www.credly.com",
           "localizations": [{"displayName": "Credly", "languageTag": "fr-FR",
                              "webUrl": "https://www.credly.com"}]})  # fmt: skip
    h.ready_connection()
    body = item_body()
    body["content"] = {"type": "text", "value": "badges"}
    h.call("PUT", "/external/connections/credlybadges/items/u1", body)
    bad = json.loads(json.dumps(PEOPLE_SCHEMA))
    bad["properties"][0]["name"] = "bad-name"
    schema_url = "/external/connections/credlybadges/schema"
    failed = h.call("PATCH", schema_url, bad, headers=PREFER_UNKNOWN).headers["Location"]
    app = "/applications(appId='bbbbbbbb-0000-0000-0000-000000000002')"
    calls = [
        ("/users?$select=" + every, "value", "microsoft.graph.user"),
        ("/users", "value", "microsoft.graph.user"),
        ("/users/user1@contoso.com", None, "microsoft.graph.user"),
        ("/users/delta?$select=" + every, "value", "microsoft.graph.user"),
        ("/external/connections", "value", "microsoft.graph.externalConnectors.externalConnection"),
        (
            "/external/connections/credlybadges",
            None,
            "microsoft.graph.externalConnectors.externalConnection",
        ),
        (
            "/external/connections/credlybadges/schema",
            None,
            "microsoft.graph.externalConnectors.schema",
        ),
        (failed, None, "microsoft.graph.externalConnectors.connectionOperation"),
        (
            "/external/connections/credlybadges/items/u1",
            None,
            "microsoft.graph.externalConnectors.externalItem",
        ),
        ("/admin/people/profileSources", "value", "microsoft.graph.profileSource"),
        (
            "/admin/people/profilePropertySettings",
            "value",
            "microsoft.graph.profilePropertySetting",
        ),
        (app, None, "microsoft.graph.application"),
    ]
    served = []
    for url, key, type_name in calls:
        reply = h.call("GET", url, headers=PREFER_UNKNOWN)
        assert reply.status == 200, (url, reply.body)
        document = reply.json[key] if key else reply.json
        assert document, url
        served.append((url, document, type_name))
    return served


def test_every_served_property_exists_in_csdl() -> None:
    csdl = _load()
    apps = [
        {
            "app_id": "bbbbbbbb-0000-0000-0000-000000000002",
            "display_name": "credlyctl",
            "secrets": [{"key_id": "k", "display_name": "d", "end_date": "2027-01-01T00:00:00Z"}],
        }
    ]
    h = harness(apps=apps)
    for url, document, type_name in _served_documents(h):
        _check(csdl, document, type_name, url)


def test_user_property_lists_exist_on_user() -> None:
    properties, _ = _load().members("microsoft.graph.user")
    assert set(USER_PROPERTIES) <= set(properties)
    assert set(DEFAULT_USER_PROPERTIES) <= set(properties)
    for names in (
        graph_filter.EQ_PROPERTIES,
        graph_filter.STARTSWITH_PROPERTIES,
        graph_filter.ENDSWITH_PROPERTIES,
        graph_filter.COLLECTION_PROPERTIES,
    ):
        assert set(names) <= set(properties)


@pytest.mark.parametrize(
    ("served", "enum"),
    [
        (ext.CONTENT_CATEGORIES, "contentCategory"),
        (ext.CONNECTION_STATES, "connectionState"),
        (ext.PROPERTY_TYPES, "propertyType"),
        (ext.LABELS, "label"),
        (ext.ACL_TYPES, "aclType"),
        (ext.ACCESS_TYPES, "accessType"),
    ],
)
def test_enums_match_csdl(served: frozenset[str], enum: str) -> None:
    members = _load().enums[f"microsoft.graph.externalConnectors.{enum}"] - {"unknownFutureValue"}
    assert set(served) == members


def test_operation_statuses_exist_in_csdl() -> None:
    members = _load().enums["microsoft.graph.externalConnectors.connectionOperationStatus"]
    assert {"inprogress", "completed", "failed"} <= members
