"""The simulator's enums follow Graph's metadata order, so its evolvable members are Graph's.

Members declared after `unknownFutureValue` need `Prefer: include-unknown-enum-members`
(microsoft/api-guidelines graph/patterns/evolvable-enums.md). The simulator derives that list
from its ordered copies of the enums; here they are compared with the CSDL files themselves
(../shared/reference/graph-metadata/, read through `shared_path`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache

import pytest

from credly_connector.simulator import graph_enums
from tests.conftest import shared_path

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
NAMESPACE = "microsoft.graph.externalConnectors"


@cache
def ordered_enums(csdl: str) -> dict[str, tuple[str, ...]]:
    """Every enum of the externalConnectors namespace with its members in declared order."""
    root = ET.parse(shared_path("reference", "graph-metadata", csdl)).getroot()
    found: dict[str, tuple[str, ...]] = {}
    for schema in root.iter(f"{EDM}Schema"):
        if schema.get("Namespace") != NAMESPACE:
            continue
        for node in schema.findall(f"{EDM}EnumType"):
            members = tuple(m.get("Name", "") for m in node.findall(f"{EDM}Member"))
            found[node.get("Name", "")] = members
    return found


@pytest.mark.parametrize("enum", sorted(graph_enums.ORDERED_ENUMS))
def test_simulator_enums_keep_the_metadata_order(enum: str) -> None:
    assert graph_enums.ORDERED_ENUMS[enum] == ordered_enums("v1.0-Prod.csdl")[enum]


def test_fairfax_labels_follow_the_us_government_metadata() -> None:
    assert ordered_enums("v1.0-Fairfax.csdl")["label"] == graph_enums.FAIRFAX_LABEL_MEMBERS


def test_the_person_labels_credlyctl_uses_are_evolvable() -> None:
    wanted = {"personAccount", "personAwards", "personCertifications"}
    assert wanted <= graph_enums.EVOLVABLE_LABELS
    assert "title" not in graph_enums.EVOLVABLE_LABELS
    assert {"principal", "principalCollection"} == graph_enums.EVOLVABLE_TYPES
    assert "people" not in graph_enums.EVOLVABLE_CATEGORIES
