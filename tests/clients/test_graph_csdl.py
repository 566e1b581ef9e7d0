"""Every Graph path and property the client sends exists in Graph's own v1.0 metadata."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache

import pytest

from credly_connector.graph.client import PATH_TEMPLATES, SENT_PROPERTIES
from tests.conftest import shared_path

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@dataclass
class StructType:
    name: str
    base: str | None
    properties: set[str] = field(default_factory=set)
    navigation: dict[str, str] = field(default_factory=dict)  # name -> type reference


@dataclass
class Model:
    types: dict[str, StructType]
    roots: dict[str, str]  # entity set / singleton name -> type reference
    bound_functions: dict[str, set[str]]  # function name -> binding parameter types

    def type(self, reference: str) -> StructType:
        return self.types[_element(reference)]

    def members(self, reference: str) -> tuple[set[str], dict[str, str]]:
        props: set[str] = set()
        navs: dict[str, str] = {}
        name: str | None = _element(reference)
        while name:
            struct = self.types[name]
            props |= struct.properties
            navs |= struct.navigation
            name = struct.base
        return props, navs


def _element(reference: str) -> str:
    match = re.fullmatch(r"Collection\((.+)\)", reference)
    return match.group(1) if match else reference


@cache
def load_model() -> Model:
    root = ET.parse(shared_path("reference", "graph-metadata", "v1.0-Prod.csdl")).getroot()
    schemas = list(root.iter(f"{EDM}Schema"))
    aliases = {s.get("Alias"): s.get("Namespace") for s in schemas if s.get("Alias")}

    def full(reference: str | None) -> str | None:
        if reference is None:
            return None
        inner = _element(reference)
        head, _, rest = inner.partition(".")
        if head in aliases:
            inner = f"{aliases[head]}.{rest}"
        return f"Collection({inner})" if reference.startswith("Collection(") else inner

    types: dict[str, StructType] = {}
    functions: dict[str, set[str]] = {}
    roots: dict[str, str] = {}
    for schema in schemas:
        namespace = schema.get("Namespace")
        for kind in ("EntityType", "ComplexType"):
            for node in schema.findall(f"{EDM}{kind}"):
                struct = StructType(f"{namespace}.{node.get('Name')}", full(node.get("BaseType")))
                for prop in node.findall(f"{EDM}Property"):
                    struct.properties.add(str(prop.get("Name")))
                for nav in node.findall(f"{EDM}NavigationProperty"):
                    struct.navigation[str(nav.get("Name"))] = str(full(nav.get("Type")))
                types[struct.name] = struct
        for function in schema.findall(f"{EDM}Function"):
            if function.get("IsBound") == "true":
                binding = function.find(f"{EDM}Parameter")
                if binding is not None:
                    functions.setdefault(str(function.get("Name")), set()).add(
                        str(full(binding.get("Type")))
                    )
        for container in schema.findall(f"{EDM}EntityContainer"):
            for node in container.findall(f"{EDM}EntitySet"):
                roots[str(node.get("Name"))] = f"Collection({full(node.get('EntityType'))})"
            for node in container.findall(f"{EDM}Singleton"):
                roots[str(node.get("Name"))] = str(full(node.get("Type")))
    return Model(types, roots, functions)


def resolve(model: Model, template: str) -> str:
    """The type a path template addresses; AssertionError naming the first unknown segment."""
    segments = template.strip("/").split("/")
    current: str | None = None
    for segment in segments:
        name, _, key = segment.partition("(")
        if current is None:
            assert name in model.roots, f"{template}: no entity set or singleton {name!r}"
            current = model.roots[name]
        elif name == "{id}":
            assert current.startswith("Collection("), f"{template}: key on a single entity"
            current = _element(current)
        elif current.startswith("Collection(") and current in model.bound_functions.get(
            name, set()
        ):
            return current  # a bound function such as users/delta
        else:
            _, navs = model.members(current)
            assert name in navs, f"{template}: {current} has no navigation {name!r}"
            current = navs[name]
        if key:
            prop = key.split("=", 1)[0]
            assert current.startswith("Collection("), f"{template}: key on a single entity"
            current = _element(current)
            props, _ = model.members(current)
            assert prop in props, f"{template}: {current} has no key property {prop!r}"
    assert current is not None
    return current


@pytest.mark.parametrize("template", PATH_TEMPLATES)
def test_every_path_the_client_calls_exists(template: str) -> None:
    resolve(load_model(), template)


@pytest.mark.parametrize("type_name", sorted(SENT_PROPERTIES))
def test_every_property_the_client_sends_exists(type_name: str) -> None:
    model = load_model()
    props, navs = model.members(f"microsoft.graph.{type_name}")
    missing = [p for p in SENT_PROPERTIES[type_name] if p not in props and p not in navs]
    assert missing == []


def test_the_checker_rejects_what_graph_does_not_have() -> None:
    model = load_model()
    with pytest.raises(AssertionError):
        resolve(model, "/external/connections/{id}/things")
    with pytest.raises(AssertionError):
        resolve(model, "/admin/people/profileSources(nosuchKey='x')")
    with pytest.raises(AssertionError):
        resolve(model, "/nosuchset")
    props, _ = model.members("microsoft.graph.user")
    assert "proxyAddresses" in props and "favouriteColour" not in props
